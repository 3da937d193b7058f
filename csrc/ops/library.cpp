// Declares the `torch_ext` op namespace. Each op's schema sits in its own file,
// ops/<op>.cpp, as a TORCH_LIBRARY_FRAGMENT.

#include <torch/library.h>

#include <string>

#include "ops/loops.h"

TORCH_LIBRARY(torch_ext, m) {
  // Which copy of the CPU loops runs on this CPU: "DEFAULT", "AVX2", "AVX512" or
  // "AVX512_BF16".
  m.def("_cpu_isa() -> str", [] { return std::string(torch_ext::cpu::loops_isa()); });
}
