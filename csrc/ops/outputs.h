#pragma once
// Validates an op's arguments and allocates its outputs. The Meta kernels and every device
// kernel call these, so all backends agree on errors, shapes and strides. An error names
// the op, the argument and what was expected.

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace torch_ext::outputs {

// ATen converts an op's scalar parameters to the compute type (float, but double for
// float64) and raises when a finite value overflows it; so do we, rather than compute with
// inf. `what` names the parameter ("argument 'alpha'").
void check_fits_compute_type(const char* op, const char* what, double value, at::ScalarType dtype);

// Output of an elementwise activation of `self` (same shape, dtype and strides).
at::Tensor activation(const char* op, const at::Tensor& self);

// Checks `self` for an in-place activation: floating dtype, no elements sharing memory.
void activation_in_place(const char* op, const at::Tensor& self);

// Output of an activation backward, as ATen's binary op of the same name makes it (its
// operands in ATen's order: self_or_result first for Leaky ReLU, grad_output first for the
// ELU family). `param`/`value` name the parameter that makes the negative branch (slope or
// alpha): a from-result backward needs it >= 0.
at::Tensor activation_backward(const char* op, const at::Tensor& grad_output,
                               const at::Tensor& self_or_result, const char* param, double value,
                               bool is_result, bool self_first);

// (result, sign_mask) of an activation that packs its input's signs: the result dense
// (self's strides when self is dense, else contiguous), the mask uint8 {ceil(numel / 8)}.
std::tuple<at::Tensor, at::Tensor> masked_activation(const char* op, const at::Tensor& self);

// Whether every element of `a` sits at the offset of the same element of `like`: the same
// sizes, and the same strides where a dim has more than one element (a size-1 dim's stride
// addresses nothing). A tensor that broadcasts to `like` has other sizes, even where its
// strides are like's.
bool laid_out_as(const at::Tensor& a, const at::Tensor& like);

// `t` itself if it is dense and laid out as `like`, else a copy that is: the memory-order
// source of the sign-mask loops.
at::Tensor laid_out_like(const at::Tensor& t, const at::Tensor& like);

// grad_input of a backward from a sign mask: laid out with `result_strides` (those of the
// forward result, whose memory order the mask's bits follow), which must lay out
// grad_output's shape densely.
at::Tensor masked_backward(const char* op, const at::Tensor& grad_output,
                           const at::Tensor& sign_mask, c10::SymIntArrayRef result_strides);

// Output of prelu(self, weight).
at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight);

// (grad_input, grad_weight) of prelu_backward.
std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output,
                                                  const at::Tensor& self, const at::Tensor& weight);

// Output of a counted forward (an activation plus count_active_ of its `input`, and with
// `abs_sum`, abs_sum_ of the output).
at::Tensor counted_activation(const char* op, const at::Tensor& self, const at::Tensor& counts,
                              int64_t unit_dim, const at::Tensor& alive_threshold,
                              const std::optional<at::Tensor>& abs_sum);

// Checks count_active_'s arguments; returns unit_dim wrapped to [0, z.dim()). alive_threshold:
// float32, contiguous, {units} or {4, units}. `op` and `arg` name the op and its input in
// errors.
int64_t count_active(const at::Tensor& z, const at::Tensor& counts, int64_t unit_dim,
                     const at::Tensor& alive_threshold, const char* op = "torch_ext::count_active_",
                     const char* arg = "z");

// Checks abs_sum_'s arguments (sums: float64, contiguous, {units}, on h's device); returns
// unit_dim wrapped to [0, h.dim()). `op`, `arg` and `sums_arg` name the op, its input and
// the sums in errors (a counted forward's "input" and "abs_sum").
int64_t abs_sum(const at::Tensor& h, const at::Tensor& sums, int64_t unit_dim,
                const char* op = "torch_ext::abs_sum_", const char* arg = "h",
                const char* sums_arg = "sums");

}  // namespace torch_ext::outputs
