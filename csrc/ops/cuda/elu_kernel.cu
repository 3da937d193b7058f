// CUDA implementation of torch_ext::elu, elu_, elu_backward (which SELU shares) and
// elu_counted.

#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "activations/elu.h"
#include "ops/counted.h"
#include "ops/cuda/counting.cuh"
#include "ops/cuda/elementwise.cuh"
#include "ops/cuda/elu_kernel.h"
#include "ops/cuda/functors.cuh"
#include "ops/iterator.h"
#include "ops/outputs.h"

namespace torch_ext::cuda {
namespace {

// make(OpMath<T>{}) -> act::Elu<T> (parameters rounded once to T).
auto elu_of(double alpha, double scale) {
  return [alpha, scale](auto tag) {
    return act::make_elu<typename decltype(tag)::type>(alpha, scale);
  };
}

}  // namespace

at::Tensor elu_forward(const char* op, const at::Tensor& self, double alpha, double scale) {
  at::Tensor out = outputs::activation(op, self);
  const c10::cuda::CUDAGuard guard(self.device());
  auto iter = elementwise(out, self);
  for_each_element<1>(iter, functor_of<Forward>(elu_of(alpha, scale)));
  return out;
}

at::Tensor& elu_forward_(const char* op, at::Tensor& self, double alpha, double scale) {
  outputs::activation_in_place(op, self);
  const c10::cuda::CUDAGuard guard(self.device());
  auto iter = elementwise(self, self);
  for_each_element<1>(iter, functor_of<Forward>(elu_of(alpha, scale)));
  return self;
}

namespace {

at::Tensor elu_backward(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                        double alpha, double scale, bool is_result) {
  at::Tensor grad_input = outputs::activation_backward("torch_ext::elu_backward", grad_output,
                                                       self_or_result, "alpha", alpha, is_result);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  auto iter = elementwise(grad_input, grad_output, self_or_result);
  if (is_result) {
    for_each_element<2>(iter, functor_of<BackwardFromResult>(elu_of(alpha, scale)));
  } else {
    for_each_element<2>(iter, functor_of<Backward>(elu_of(alpha, scale)));
  }
  return grad_input;
}

at::Tensor elu_counted(const at::Tensor& self, double alpha, double scale, at::Tensor& counts,
                       int64_t unit_dim, const at::Tensor& alive_threshold, bool /*save_output*/) {
  const c10::cuda::CUDAGuard guard(self.device());
  return counted_forward("torch_ext::elu_counted", self, counts, unit_dim, alive_threshold,
                         fused_counting(functor_of<ForwardOfUnit>(elu_of(alpha, scale))),
                         [&](at::Tensor& out) {
                           auto iter = elementwise(out, self);
                           for_each_element<1>(iter, functor_of<Forward>(elu_of(alpha, scale)));
                         });
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) {
  m.impl("elu", [](const at::Tensor& self, double alpha, bool /*save_output*/) {
    return elu_forward("torch_ext::elu", self, alpha, 1.0);
  });
  m.impl("elu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return elu_forward_("torch_ext::elu_", self, alpha, 1.0);
  });
  m.impl("elu_backward", elu_backward);
  m.impl("elu_counted", elu_counted);
}

}  // namespace torch_ext::cuda
