#pragma once
// Helpers of the Autograd kernels. An in-place kernel runs below the ADInplaceOrView key
// (custom ops get no kernel there), so the version counter that lets autograd detect a
// later modification of saved tensors is bumped here by hand.

#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/variable.h>

#include <optional>

namespace torch_ext::autograd {

// Marks `self`, just written in place, as modified (apply bumps its version, once, as a
// native in-place op does); saves it (now the result) for backward.
inline void record_in_place(torch::autograd::AutogradContext* ctx, const at::Tensor& self) {
  ctx->mark_dirty({self});
  ctx->save_for_backward({self});
}

}  // namespace torch_ext::autograd

namespace torch_ext::autograd {

// Whether autograd must record a call on `t`. When it need not, the Autograd kernels skip
// the autograd::Function machinery (context, saved values) and call the kernel directly.
inline bool records_grad(const at::Tensor& t) {
  return at::GradMode::is_enabled() && t.requires_grad();
}

// PyTorch's own refusals of an in-place op on `self` whose gradient autograd records (a leaf
// that requires grad, a view of one, a view autograd cannot rebase: an output of unbind, a
// view created under no_grad), with PyTorch's messages. Called before the kernel, so a
// refused call leaves the data and the version counter untouched.
inline void check_in_place(const at::Tensor& self) {
  torch::autograd::check_inplace(self, records_grad(self));
}

// The statistics arguments of a counted forward (leaky_relu_counted, ...); the plain
// forward has none. Not differentiable: passed beside the inputs, never saved.
struct Counter {
  at::Tensor& counts;
  int64_t unit_dim;
  const at::Tensor& alive_threshold;
  const std::optional<at::Tensor>& abs_sum;  // sums of |output| per unit, when asked
};

// Marks what a counted forward wrote (counts, abs_sum) as modified, as the ADInplaceOrView
// kernel custom ops lack would.
inline void bump_statistics(const Counter& counter) {
  torch::autograd::impl::bump_version(counter.counts);
  if (counter.abs_sum) torch::autograd::impl::bump_version(*counter.abs_sum);
}

// Runs `kernel` below the Autograd and ADInplaceOrView keys.
template <typename Kernel>
decltype(auto) below_autograd(const Kernel& kernel) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return kernel();
}

}  // namespace torch_ext::autograd
