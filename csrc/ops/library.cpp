// Declares the `torch_ext` op namespace. Each op's schema sits in its own file,
// ops/<op>.cpp, as a TORCH_LIBRARY_FRAGMENT.

#include <torch/library.h>

TORCH_LIBRARY(torch_ext, /*m*/) {}
