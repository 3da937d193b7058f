// CPU implementation of torch_ext::prelu and prelu_backward.

#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "ops/cpu/iterator.h"
#include "ops/cpu/loops.h"
#include "ops/outputs.h"
#include "ops/prelu_weight.h"

namespace torch_ext::cpu {
namespace {

at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight) {
  at::Tensor out = outputs::prelu(self, weight);
  auto iter = elementwise(out, self, prelu_weight::broadcast(weight, self));
  loops().prelu(iter);
  return out;
}

std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output,
                                                  const at::Tensor& self,
                                                  const at::Tensor& weight) {
  auto [grad_input, grad_weight] = outputs::prelu_backward(grad_output, self, weight);
  auto input_iter =
      elementwise(grad_input, grad_output, self, prelu_weight::broadcast(weight, self));
  loops().prelu_backward_input(input_iter);

  at::Tensor per_element = at::empty_like(self);
  auto weight_iter = elementwise(per_element, grad_output, self);
  loops().prelu_backward_weight(weight_iter);
  grad_weight.copy_(prelu_weight::reduce(per_element, weight));
  return {grad_input, grad_weight};
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) {
  m.impl("prelu", prelu);
  m.impl("prelu_backward", prelu_backward);
}

}  // namespace torch_ext::cpu
