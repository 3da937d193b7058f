#pragma once
// Forward-mode AD (torch.autograd.forward_ad, torch.func.jvp/jacfwd/hessian). A C++
// autograd::Function has no jvp, and an output without a tangent reads as a zero tangent:
// a silently wrong derivative. So each Autograd kernel computes its outputs' tangents
// itself, from the same backward ops (every rule here is linear in the tangent), at level
// 0, the one level PyTorch's own kernels use (torch.func's transforms run above it).

#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros_like.h>

namespace torch_ext::autograd {

// The tangent of `t`, or an undefined tensor when forward AD does not track `t`.
inline at::Tensor tangent_of(const at::Tensor& t) {
  return t.defined() ? t._fw_grad(/*level=*/0) : at::Tensor();
}

// `t` for an autograd::Function's apply: its jvp is not implemented and raises on an input
// with a tangent, so such an input is passed as its primal (a view that keeps the backward
// graph and drops the tangent), and the kernel sets the output's tangent itself.
inline at::Tensor primal_of(const at::Tensor& t) {
  return tangent_of(t).defined() ? t._fw_primal(/*level=*/0) : t;
}

// Whether any of the tensors carries a tangent.
template <typename... Tensors>
bool any_tangent(const Tensors&... tensors) {
  return (tangent_of(tensors).defined() || ...);
}

// Tangents of absent inputs are zero: a rule may take them as undefined or as zeros.
inline at::Tensor tangent_or_zeros(const at::Tensor& t) {
  at::Tensor tangent = tangent_of(t);
  return tangent.defined() ? tangent : at::zeros_like(t);
}

// Gives `out` (an output of an out-of-place op) the tangent `rule()` when `input` has one.
template <typename Rule>
void push_tangent(const at::Tensor& out, const at::Tensor& input, const Rule& rule) {
  const at::Tensor tangent = tangent_of(input);
  if (tangent.defined()) {
    out._set_fw_grad(rule(tangent), /*level=*/0, /*is_inplace_op=*/false);
  }
}

// An in-place op on `self` with a tangent, as `out_of_place(self.clone())` copied into
// `self`: copy_ carries the tangent (views of `self` see it) and the history, and the
// backward keeps the input, so forward AD over the backward sees its tangent too (a result
// saved by an in-place Function would be saved before its tangent exists).
template <typename OutOfPlace>
at::Tensor& in_place_with_tangent(at::Tensor& self, const OutOfPlace& out_of_place) {
  return self.copy_(out_of_place(self.clone()));
}

}  // namespace torch_ext::autograd
