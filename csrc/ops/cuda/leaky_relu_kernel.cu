// CUDA implementation of torch_ext::leaky_relu, leaky_relu_, leaky_relu_backward, the
// sign-mask pair and leaky_relu_counted.

#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "activations/leaky_relu.h"
#include "ops/counted.h"
#include "ops/cuda/counting.cuh"
#include "ops/cuda/elementwise.cuh"
#include "ops/cuda/functors.cuh"
#include "ops/cuda/sign_mask.cuh"
#include "ops/iterator.h"
#include "ops/outputs.h"

namespace torch_ext::cuda {
namespace {

// make(OpMath<T>{}) -> act::LeakyRelu<T> with the slope rounded once to T.
auto leaky_of(double negative_slope) {
  return [negative_slope](auto tag) {
    using T = typename decltype(tag)::type;
    return act::LeakyRelu<T>{static_cast<T>(negative_slope)};
  };
}

at::Tensor leaky_relu(const at::Tensor& self, double negative_slope) {
  at::Tensor out = outputs::activation("torch_ext::leaky_relu", self);
  const c10::cuda::CUDAGuard guard(self.device());
  auto iter = elementwise(out, self);
  for_each_element<1>(iter, functor_of<Forward>(leaky_of(negative_slope)));
  return out;
}

at::Tensor& leaky_relu_(at::Tensor& self, double negative_slope) {
  outputs::activation_in_place("torch_ext::leaky_relu_", self);
  const c10::cuda::CUDAGuard guard(self.device());
  auto iter = elementwise(self, self);
  for_each_element<1>(iter, functor_of<Forward>(leaky_of(negative_slope)));
  return self;
}

at::Tensor leaky_relu_backward(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                               double negative_slope, bool is_result) {
  at::Tensor grad_input =
      outputs::activation_backward("torch_ext::leaky_relu_backward", grad_output, self_or_result,
                                   "negative_slope", negative_slope, is_result);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  // With slope >= 0 the result has the input's sign, so one loop serves both paths.
  auto iter = elementwise(grad_input, grad_output, self_or_result);
  for_each_element<2>(iter, functor_of<Backward>(leaky_of(negative_slope)));
  return grad_input;
}

std::tuple<at::Tensor, at::Tensor> leaky_relu_masked(const at::Tensor& self,
                                                     double negative_slope) {
  auto [result, mask] = outputs::masked_activation("torch_ext::leaky_relu_masked", self);
  if (self.numel() == 0) return {result, mask};
  const c10::cuda::CUDAGuard guard(self.device());
  const at::Tensor source = outputs::laid_out_like(self, result);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, self.scalar_type(), "leaky_relu_masked_cuda", [&] {
        launch_leaky_relu_masked(source.const_data_ptr<scalar_t>(),
                                 result.mutable_data_ptr<scalar_t>(),
                                 mask.mutable_data_ptr<uint8_t>(), self.numel(), negative_slope);
      });
  return {result, mask};
}

at::Tensor leaky_relu_backward_masked(const at::Tensor& grad_output, const at::Tensor& sign_mask,
                                      double negative_slope, c10::SymIntArrayRef result_strides) {
  at::Tensor grad_input = outputs::masked_backward("torch_ext::leaky_relu_backward_masked",
                                                   grad_output, sign_mask, result_strides);
  if (grad_output.numel() == 0) return grad_input;
  const c10::cuda::CUDAGuard guard(grad_output.device());
  const at::Tensor source = outputs::laid_out_like(grad_output, grad_input);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, grad_output.scalar_type(), "leaky_relu_backward_masked_cuda", [&] {
        launch_leaky_relu_backward_masked(
            source.const_data_ptr<scalar_t>(), sign_mask.const_data_ptr<uint8_t>(),
            grad_input.mutable_data_ptr<scalar_t>(), grad_output.numel(), negative_slope);
      });
  return grad_input;
}

at::Tensor leaky_relu_counted(const at::Tensor& self, double negative_slope, at::Tensor& counts,
                              int64_t unit_dim, const at::Tensor& alive_threshold) {
  const c10::cuda::CUDAGuard guard(self.device());
  return counted_forward("torch_ext::leaky_relu_counted", self, counts, unit_dim, alive_threshold,
                         fused_counting(functor_of<ForwardOfUnit>(leaky_of(negative_slope))),
                         [&](at::Tensor& out) {
                           auto iter = elementwise(out, self);
                           for_each_element<1>(iter, functor_of<Forward>(leaky_of(negative_slope)));
                         });
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) {
  m.impl("leaky_relu", leaky_relu);
  m.impl("leaky_relu_", leaky_relu_);
  m.impl("leaky_relu_backward", leaky_relu_backward);
  m.impl("leaky_relu_counted", leaky_relu_counted);
  m.impl("leaky_relu_masked", leaky_relu_masked);
  m.impl("leaky_relu_backward_masked", leaky_relu_backward_masked);
}

}  // namespace torch_ext::cuda
