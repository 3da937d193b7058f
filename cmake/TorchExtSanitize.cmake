# TORCH_EXT_SANITIZE=ON: torch_ext and the GoogleTest suite compiled and linked with
# AddressSanitizer and UndefinedBehaviorSanitizer (scripts/sanitize.sh builds and runs it,
# in build/sanitize). libtorch itself is not instrumented: the test executable is, so the
# ASan runtime comes first in the process, as it must.
#
# UBSan does not recover (-fno-sanitize-recover): the first report aborts the test, so
# ctest fails on it. Runtime options: tests/cpp/sanitizer_options.cpp. Only the C++
# sources are instrumented; nvcc's are not, so build it with TORCH_EXT_CUDA=0.
if(NOT TORCH_EXT_SANITIZE)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  message(FATAL_ERROR "TORCH_EXT_SANITIZE needs GCC or Clang, not ${CMAKE_CXX_COMPILER_ID}")
endif()
if(TORCH_EXT_WITH_CUDA)
  message(WARNING "TORCH_EXT_SANITIZE: the CUDA sources are not instrumented "
                  "(configure with -DTORCH_EXT_CUDA=0 for a CPU-only sanitizer build)")
endif()

set(TORCH_EXT_SANITIZE_FLAGS
  -fsanitize=address,undefined
  -fno-sanitize-recover=undefined
  -fno-omit-frame-pointer)
add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${TORCH_EXT_SANITIZE_FLAGS}>")
add_link_options(${TORCH_EXT_SANITIZE_FLAGS})
# Instrumented, GCC 12 also warns (-Wuninitialized) inside its own avx512fintrin.h, the
# same false warning as the -Wmaybe-uninitialized one CMakeLists.txt silences.
list(APPEND TORCH_EXT_ISA_FLAGS_AVX512 -Wno-uninitialized)
message(STATUS "torch_ext: sanitizers on (${TORCH_EXT_SANITIZE_FLAGS})")
