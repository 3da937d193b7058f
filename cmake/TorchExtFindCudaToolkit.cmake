# Included by TorchExtConfig.cmake before it finds Torch. A CUDA build of torch (what pip
# installs on Linux) has a CMake config that needs the CUDA toolkit: without one it stops with
# "Your installed Caffe2 version uses CUDA but I cannot find the CUDA libraries". It looks
# only through CUDA_TOOLKIT_ROOT_DIR or nvcc on PATH, and an nvcc wrapper script on PATH
# (/usr/local/bin/nvcc) misleads it. So, unless the project says where the toolkit is, look
# where toolkits are installed ($CUDA_HOME, $CUDA_PATH, /usr/local/cuda, nvcc's real path),
# as `python -m torch_ext.cmake` does (TORCH_EXT_CUDA_ROOTS replaces the first three); when
# there is none, say what to do.
function(torch_ext_find_cuda_toolkit)
  set(cuda_torch "")
  foreach(dir IN LISTS ARGN)
    if(EXISTS "${dir}/../../../lib/libtorch_cuda.so")
      get_filename_component(cuda_torch "${dir}/../../.." REALPATH)
      break()
    endif()
  endforeach()
  if(NOT cuda_torch OR DEFINED CUDA_TOOLKIT_ROOT_DIR OR DEFINED CMAKE_CUDA_COMPILER)
    return()
  endif()
  find_program(torch_ext_nvcc_on_path nvcc)
  set(roots "$ENV{CUDA_HOME}" "$ENV{CUDA_PATH}" /usr/local/cuda)
  if(DEFINED TORCH_EXT_CUDA_ROOTS)
    set(roots ${TORCH_EXT_CUDA_ROOTS})
  endif()
  if(torch_ext_nvcc_on_path)
    get_filename_component(real_nvcc "${torch_ext_nvcc_on_path}" REALPATH)
    get_filename_component(nvcc_root "${real_nvcc}/../.." REALPATH)
    list(APPEND roots "${nvcc_root}")
  endif()
  foreach(root IN LISTS roots)
    if(root AND EXISTS "${root}/bin/nvcc" AND EXISTS "${root}/include/cuda_runtime.h")
      set(CUDA_TOOLKIT_ROOT_DIR "${root}" CACHE PATH "The CUDA toolkit torch's CMake config uses")
      set(CMAKE_CUDA_COMPILER "${root}/bin/nvcc" CACHE FILEPATH "The CUDA toolkit's nvcc")
      return()
    endif()
  endforeach()
  message(FATAL_ERROR
    "TorchExt: the torch in ${cuda_torch} is a CUDA build, and its CMake config (which "
    "find_package(TorchExt) runs) needs the CUDA toolkit; none was found at $CUDA_HOME, "
    "$CUDA_PATH, /usr/local/cuda or nvcc on PATH. Install the toolkit of torch's CUDA "
    "version, or pass -DCUDA_TOOLKIT_ROOT_DIR=<its root> (`python -m torch_ext.cmake` prints "
    "the arguments this machine needs), or build against a CPU build of torch.")
endfunction()
