#pragma once
// The autograd rule of scale * elu(x, alpha), shared by torch_ext::elu (scale 1) and
// torch_ext::selu (SELU's constants). Defined in elu_autograd.cpp.

#include <ATen/core/Tensor.h>

#include "ops/autograd/common.h"

namespace torch_ext::autograd {

struct EluSpec {
  double alpha;
  double scale;
  bool is_selu;                      // runs torch_ext::selu rather than torch_ext::elu
  const Counter* counter = nullptr;  // runs torch_ext::elu_counted (out of place only)
  bool save_output = false;          // out of place: keep the output, not the input (opt-in)
};

at::Tensor elu_family(const at::Tensor& self, const EluSpec& spec);
at::Tensor& elu_family_(at::Tensor& self, const EluSpec& spec);

}  // namespace torch_ext::autograd
