#pragma once
// What an in-place autograd forward must do by hand. The kernel runs below the
// ADInplaceOrView key (custom ops get no kernel there), so the version counter that lets
// autograd detect a later modification of saved tensors is bumped here.

#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/variable.h>

namespace torch_ext::autograd {

// Marks `self`, just written in place, as modified; saves it (now the result) for backward.
inline void record_in_place(torch::autograd::AutogradContext* ctx, const at::Tensor& self) {
  torch::autograd::impl::bump_version(self);
  ctx->mark_dirty({self});
  ctx->save_for_backward({self});
}

}  // namespace torch_ext::autograd
