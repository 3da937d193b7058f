// torch_ext::prelu: schema, C++ entry points, the Meta (shape-only) kernels and the device
// kernels, written once for CPU and CUDA over their loops (ops/loops.h).
// Autograd: ops/autograd/prelu_autograd.cpp.

#include <ATen/DeviceGuard.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "ops/counted.h"
#include "ops/iterator.h"
#include "ops/loops.h"
#include "ops/op_handle.h"
#include "ops/outputs.h"
#include "ops/prelu_weight.h"
#include "torch_ext/ops.h"

namespace torch_ext {

at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&)>("torch_ext::prelu");
  return op.call(self, weight);
}

std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output,
                                                  const at::Tensor& self,
                                                  const at::Tensor& weight) {
  static const auto op = detail::op_handle<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&)>("torch_ext::prelu_backward");
  return op.call(grad_output, self, weight);
}

at::Tensor prelu_counted(const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts,
                         int64_t unit_dim, const at::Tensor& alive_threshold,
                         const std::optional<at::Tensor>& abs_sum) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, at::Tensor&, int64_t,
                                   const at::Tensor&, const std::optional<at::Tensor>&)>(
          "torch_ext::prelu_counted");
  return op.call(self, weight, counts, unit_dim, alive_threshold, abs_sum);
}

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  m.def("prelu(Tensor self, Tensor weight) -> Tensor");
  m.def(
      "prelu_backward(Tensor grad_output, Tensor self, Tensor weight) "
      "-> (Tensor grad_input, Tensor grad_weight)");
  // count_active_(input, ...) and, with abs_sum, abs_sum_(result, abs_sum, unit_dim).
  m.def(
      "prelu_counted(Tensor input, Tensor weight, Tensor(a!) counts, int unit_dim, "
      "Tensor alive_threshold, Tensor(b!)? abs_sum=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(torch_ext, Meta, m) {
  m.impl("prelu", outputs::prelu);
  m.impl("prelu_backward", outputs::prelu_backward);
  m.impl("prelu_counted", [](const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts,
                             int64_t unit_dim, const at::Tensor& alive_threshold,
                             const std::optional<at::Tensor>& abs_sum) {
    outputs::prelu(self, weight);  // PReLU's own checks first, as the device kernels make them
    return outputs::counted_activation("torch_ext::prelu_counted", self, counts, unit_dim,
                                       alive_threshold, abs_sum);
  });
}

namespace {

at::Tensor prelu_kernel(const at::Tensor& self, const at::Tensor& weight) {
  constexpr const char* op = "torch_ext::prelu";
  at::Tensor out = outputs::prelu(self, weight);
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  // Named: the iterator borrows its inputs, so each must outlive it.
  const at::Tensor w = prelu_weight::broadcast(weight, self);
  auto iter = elementwise_iterator(out, self, w);
  loops_for(op, self).prelu(iter);
  return out;
}

// The one-pass backward applies with channels (dim 1) as a unit view (NCHW, channels_last,
// [N, C]) and grad_output and grad_input laid out like the input.
bool fusable_backward(const at::Tensor& grad_output, const at::Tensor& self,
                      const at::Tensor& grad_input) {
  return self.dim() >= 2 && self.numel() > 0 && outputs::laid_out_as(grad_output, self) &&
         outputs::laid_out_as(grad_input, self) && unit_view(self, 1).has_value();
}

// grad_input and grad_weight in one pass where the operands are laid out for it; returns
// whether they were.
bool prelu_backward_fused(const Loops& loops, const at::Tensor& grad_output, const at::Tensor& self,
                          const at::Tensor& weight, at::Tensor& grad_input,
                          at::Tensor& grad_weight) {
  if (!fusable_backward(grad_output, self, grad_input)) return false;
  const auto view = *unit_view(self, 1);
  // On CUDA, freed after the launch: the caching allocator reuses it only after the kernel.
  const at::Tensor slopes = weight.reshape({-1}).expand({view.units}).contiguous();
  const at::Tensor per_unit = loops.prelu_backward_fused(view, grad_output.const_data_ptr(),
                                                         grad_input.mutable_data_ptr(), slopes);
  grad_weight.copy_(weight.numel() == 1 ? per_unit.sum().reshape(weight.sizes())
                                        : per_unit.reshape(weight.sizes()));
  return true;
}

// The one pass on copies laid out for it, where the operands are not: an input of fewer
// than 2 dims (one channel: [1, 1, n]) or without a unit view, a grad_output laid out
// otherwise (a broadcast one: y.sum().backward()). So the weight gradient is summed in the
// one pass's fixed order whatever the layouts, and its bits do not depend on them or on
// the thread count (at::sum's do).
void prelu_backward_fused_on_copies(const Loops& loops, const at::Tensor& grad_output,
                                    const at::Tensor& self, const at::Tensor& weight,
                                    at::Tensor& grad_input, at::Tensor& grad_weight) {
  const at::Tensor shaped = self.dim() < 2 ? self.reshape({1, 1, -1}) : self;
  const at::Tensor x = unit_view(shaped, 1).has_value() ? shaped : shaped.contiguous();
  const at::Tensor g =
      outputs::laid_out_like(grad_output.expand(self.sizes()).reshape(x.sizes()), x);
  // Straight into grad_input where it has x's layout (a 1-D input seen as [1, 1, n]): no
  // copy back, which was a third more memory traffic.
  const bool direct = grad_input.is_contiguous() && x.is_contiguous();
  at::Tensor result = direct ? grad_input.view(x.sizes()) : at::empty_like(x);
  const bool fused = prelu_backward_fused(loops, g, x, weight, result, grad_weight);
  TORCH_INTERNAL_ASSERT(fused, "torch_ext::prelu_backward: copies not laid out for one pass");
  if (!direct) grad_input.copy_(result.view(self.sizes()));
}

std::tuple<at::Tensor, at::Tensor> prelu_backward_kernel(const at::Tensor& grad_output,
                                                         const at::Tensor& self,
                                                         const at::Tensor& weight) {
  constexpr const char* op = "torch_ext::prelu_backward";
  auto [grad_input, grad_weight] = outputs::prelu_backward(grad_output, self, weight);
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  const Loops& loops = loops_for(op, self);
  if (self.numel() == 0) {
    grad_weight.zero_();  // a sum of no terms
  } else if (!prelu_backward_fused(loops, grad_output, self, weight, grad_input, grad_weight)) {
    prelu_backward_fused_on_copies(loops, grad_output, self, weight, grad_input, grad_weight);
  }
  return {grad_input, grad_weight};
}

at::Tensor prelu_counted_kernel(const at::Tensor& self, const at::Tensor& weight,
                                at::Tensor& counts, int64_t unit_dim,
                                const at::Tensor& alive_threshold,
                                const std::optional<at::Tensor>& abs_sum) {
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  const Loops& loops = loops_for("torch_ext::prelu_counted", self);
  return prelu_counted_forward(
      self, weight, counts, unit_dim, alive_threshold, abs_sum,
      [&](const UnitView& view, void* out, const void* slopes, const UnitStats& stats) {
        loops.prelu_counted(view, out, slopes, stats);
      },
      [&](at::Tensor& out) {
        const at::Tensor w = prelu_weight::broadcast(weight, self);
        auto iter = elementwise_iterator(out, self, w);
        loops.prelu(iter);
      });
}

void register_prelu_kernels(torch::Library& m) {
  m.impl("prelu", prelu_kernel);
  m.impl("prelu_backward", prelu_backward_kernel);
  m.impl("prelu_counted", prelu_counted_kernel);
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) { register_prelu_kernels(m); }
TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) { register_prelu_kernels(m); }

}  // namespace torch_ext
