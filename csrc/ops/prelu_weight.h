#pragma once
// How PReLU's weight meets the input: broadcast along dim 1 (the channel dim), and the
// weight gradient reduced back over every other dim. Shared by all backends and autograd.

#include <ATen/core/Tensor.h>

#include <vector>

namespace torch_ext::prelu_weight {

// `weight` viewed so that it broadcasts against `self`: [1, C, 1, ...] or a 0-D scalar.
// Shapes are SymInts: autograd's double backward also runs while torch.compile traces.
inline at::Tensor broadcast(const at::Tensor& weight, const at::Tensor& self) {
  if (weight.sym_numel() == 1 || self.dim() < 2) {
    return weight.reshape({});
  }
  std::vector<c10::SymInt> shape(self.dim(), 1);
  shape[1] = weight.sym_numel();
  return weight.reshape_symint(shape);
}

// Sums a per-element weight gradient (shaped like self) to the shape of `weight`.
inline at::Tensor reduce(const at::Tensor& per_element, const at::Tensor& weight) {
  if (weight.sym_numel() == 1 || per_element.dim() < 2) {
    return per_element.sum().reshape_symint(weight.sym_sizes());
  }
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < per_element.dim(); ++d) {
    if (d != 1) dims.push_back(d);
  }
  return per_element.sum(dims).reshape_symint(weight.sym_sizes());
}

}  // namespace torch_ext::prelu_weight
