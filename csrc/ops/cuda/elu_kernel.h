#pragma once
// The CUDA ELU forward, shared by ELU and SELU (scale * elu(x, alpha)).

#include <ATen/core/Tensor.h>

namespace torch_ext::cuda {

at::Tensor elu_forward(const char* op, const at::Tensor& self, double alpha, double scale);
at::Tensor& elu_forward_(const char* op, at::Tensor& self, double alpha, double scale);

}  // namespace torch_ext::cuda
