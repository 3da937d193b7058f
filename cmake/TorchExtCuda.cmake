# Resolves TORCH_EXT_CUDA (auto|0|1) into TORCH_EXT_WITH_CUDA and enables the CUDA
# language when it is on. "auto" compiles CUDA sources when the torch found has CUDA and
# an nvcc is available; "1" insists and fails if either is missing.
include(CheckLanguage)

string(TOLOWER "${TORCH_EXT_CUDA}" _torch_ext_cuda)
set(TORCH_EXT_WITH_CUDA OFF)
set(TORCH_EXT_CUDA_ARCH_LIST "")
set(TORCH_EXT_CUDA_VERSION "")

if(NOT _torch_ext_cuda MATCHES "^(auto|0|1|on|off|true|false)$")
  message(FATAL_ERROR "TORCH_EXT_CUDA must be auto, 0 or 1, not '${TORCH_EXT_CUDA}'")
endif()

if(NOT _torch_ext_cuda MATCHES "^(0|off|false)$")
  check_language(CUDA)
  if(CAFFE2_USE_CUDA AND CMAKE_CUDA_COMPILER)
    set(TORCH_EXT_WITH_CUDA ON)
  elseif(NOT _torch_ext_cuda STREQUAL "auto")
    message(FATAL_ERROR "TORCH_EXT_CUDA=1, but torch has CUDA: '${CAFFE2_USE_CUDA}', "
                        "nvcc: '${CMAKE_CUDA_COMPILER}'")
  endif()
endif()

if(TORCH_EXT_WITH_CUDA)
  enable_language(CUDA)
  set(TORCH_EXT_CUDA_VERSION "${CMAKE_CUDA_COMPILER_VERSION}")
  if(DEFINED ENV{TORCH_CUDA_ARCH_LIST})
    set(TORCH_EXT_CUDA_ARCH_LIST "$ENV{TORCH_CUDA_ARCH_LIST}")
  elseif(DEFINED TORCH_CUDA_ARCH_LIST)
    set(TORCH_EXT_CUDA_ARCH_LIST "${TORCH_CUDA_ARCH_LIST}")
  endif()
endif()
message(STATUS "torch_ext: CUDA sources ${TORCH_EXT_WITH_CUDA} "
               "(TORCH_EXT_CUDA=${TORCH_EXT_CUDA}, arch list '${TORCH_EXT_CUDA_ARCH_LIST}')")
