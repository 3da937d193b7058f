#include "ops/outputs.h"

#include <ATen/ExpandUtils.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/native/TensorIterator.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/empty_strided.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <limits>

namespace torch_ext::outputs {
namespace {

void check_floating(const char* op, const char* arg, const at::Tensor& t) {
  const auto dtype = t.scalar_type();
  const bool supported =
      dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16 || dtype == at::kHalf;
  // NotImplementedError, as torch.nn.functional raises for these dtypes.
  TORCH_CHECK_NOT_IMPLEMENTED(
      supported, op, ": expected argument '", arg,
      "' to have a floating-point dtype (float32, float64, bfloat16 or float16), but got ", dtype);
}

void check_like(const char* op, const char* arg, const at::Tensor& t, const char* ref_name,
                const at::Tensor& ref) {
  // RuntimeError, as ATen's own dtype mismatches (TypeError is for dtypes never supported).
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": expected argument '", arg,
              "' to have the dtype of '", ref_name, "' (", ref.scalar_type(), "), but got ",
              t.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), op, ": expected argument '", arg,
              "' to be on the device of '", ref_name, "' (", ref.device(), "), but got ",
              t.device());
}

void check_same_device(const char* op, const at::Tensor& grad_output, const char* arg,
                       const at::Tensor& t) {
  TORCH_CHECK(grad_output.device() == t.device(), op,
              ": expected argument 'grad_output' to be on the device of '", arg, "' (", t.device(),
              "), but got ", grad_output.device());
}

// The output of a binary op on (first, second) as ATen's TensorIterator makes it: shape
// broadcast, dtype promoted (0-dim operands count less), layout following the operands.
at::Tensor binary_op_output(const char* op, const at::Tensor& first, const at::Tensor& second) {
  try {
    const at::Tensor undefined;  // TensorIterator allocates it
    return at::TensorIteratorConfig()
        .add_output(undefined)
        .add_const_input(first)
        .add_const_input(second)
        .promote_inputs_to_common_dtype(true)
        .build()
        .output(0);
  } catch (const c10::Error&) {
    TORCH_CHECK(false, op, ": expected arguments 'grad_output' and 'self_or_result' of shapes ",
                first.sym_sizes(), " and ", second.sym_sizes(),
                " to broadcast to one shape, but they do not");
  }
}

void check_prelu_weight(const char* op, const at::Tensor& self, const at::Tensor& weight) {
  check_floating(op, "self", self);
  check_like(op, "weight", weight, "self", self);
  TORCH_CHECK(weight.dim() <= 1, op, ": expected argument 'weight' to be 0-D or 1-D, but got ",
              weight.dim(), "-D with shape ", weight.sym_sizes());
  // Sym* accessors: the Meta kernels also run on symbolic shapes (torch.compile, export).
  const c10::SymInt channels = self.dim() >= 2 ? self.sym_size(1) : c10::SymInt(1);
  TORCH_CHECK(weight.sym_numel() == 1 || weight.sym_numel() == channels, op,
              ": expected argument 'weight' to have 1 element or one per channel (", channels,
              " = the channels of a ", self.dim(), "-D 'self'), but got ", weight.sym_numel());
}

// The per-unit ops' input (a floating tensor of at least 1 dim) and unit_dim, wrapped.
int64_t unit_dim_of(const char* op, const char* arg, const at::Tensor& z, int64_t unit_dim) {
  check_floating(op, arg, z);
  TORCH_CHECK(z.dim() >= 1, op, ": expected argument '", arg,
              "' to have at least 1 dim, but got a 0-D tensor");
  TORCH_CHECK(unit_dim >= -z.dim() && unit_dim < z.dim(), op, ": argument 'unit_dim' ", unit_dim,
              " is out of range for a ", z.dim(), "-D '", arg, "'");
  return unit_dim < 0 ? unit_dim + z.dim() : unit_dim;
}

}  // namespace

void check_fits_compute_type(const char* op, const char* what, double value, at::ScalarType dtype) {
  const bool fits = dtype == at::kDouble || !std::isfinite(value) ||
                    std::abs(value) <= std::numeric_limits<float>::max();
  TORCH_CHECK(fits, op, ": value cannot be converted to type float without overflow: ", what,
              " is ", value);
}

at::Tensor activation(const char* op, const at::Tensor& self) {
  check_floating(op, "self", self);
  return at::empty_like(self);
}

void activation_in_place(const char* op, const at::Tensor& self) {
  check_floating(op, "self", self);
  // An inference tensor has no autograd keys, so only the backend kernel sees it: refused
  // here, before writing (PyTorch's own in-place ops write first, then refuse).
  TORCH_CHECK(!self.is_inference() || c10::InferenceMode::is_enabled(), op,
              ": argument 'self' is an inference tensor. Inplace update to inference tensor "
              "outside InferenceMode is not allowed. Clone it first to get a normal tensor.");
  TORCH_CHECK(at::has_internal_overlap(self) != at::MemOverlap::Yes, op,
              ": argument 'self' has elements that share memory (an expanded or otherwise "
              "overlapping view), so it cannot be written in place; clone() it first or "
              "use the out-of-place op");
}

at::Tensor activation_backward(const char* op, const at::Tensor& grad_output,
                               const at::Tensor& self_or_result, const char* param, double value,
                               bool is_result, bool self_first) {
  check_same_device(op, grad_output, "self_or_result", self_or_result);
  TORCH_CHECK(!is_result || value >= 0.0, op, ": is_result=True needs ", param, " >= 0, but got ",
              value, ". In-place backward with a negative ", param,
              " is not supported: the input cannot be recovered from the result. This is "
              "caused by calling the in-place op with a negative ",
              param, "; call the out-of-place op instead.");
  // ATen's backward ops are binary ops: the operands broadcast and promote (an integer
  // grad_output too), and the output's layout follows theirs.
  const bool same = grad_output.sym_sizes() == self_or_result.sym_sizes() &&
                    grad_output.scalar_type() == self_or_result.scalar_type() &&
                    grad_output.sym_strides() == self_or_result.sym_strides();
  at::Tensor out = same         ? at::empty_like(self_or_result)
                   : self_first ? binary_op_output(op, self_or_result, grad_output)
                                : binary_op_output(op, grad_output, self_or_result);
  check_floating(op, "self_or_result", out);
  return out;
}

std::tuple<at::Tensor, at::Tensor> masked_activation(const char* op, const at::Tensor& self) {
  check_floating(op, "self", self);
  const c10::SymInt bytes = (self.sym_numel() + 7) / 8;
  return {at::empty_like(self), at::empty_symint({bytes}, self.options().dtype(at::kByte))};
}

at::Tensor masked_backward(const char* op, const at::Tensor& grad_output,
                           const at::Tensor& sign_mask, c10::SymIntArrayRef result_strides) {
  check_floating(op, "grad_output", grad_output);
  TORCH_CHECK_TYPE(sign_mask.scalar_type() == at::kByte, op,
                   ": expected argument 'sign_mask' to be uint8, but got ",
                   sign_mask.scalar_type());
  const c10::SymInt bytes = (grad_output.sym_numel() + 7) / 8;
  TORCH_CHECK(sign_mask.dim() == 1 && sign_mask.sym_numel() == bytes && sign_mask.is_contiguous(),
              op, ": expected argument 'sign_mask' to be a contiguous 1-D tensor of ", bytes,
              " bytes (one bit per element of 'grad_output'), but got shape ",
              sign_mask.sym_sizes());
  TORCH_CHECK(sign_mask.device() == grad_output.device(), op,
              ": expected 'sign_mask' on the device of 'grad_output' (", grad_output.device(),
              "), but got ", sign_mask.device());
  TORCH_CHECK(result_strides.size() == grad_output.sym_sizes().size(), op,
              ": expected argument 'result_strides' to have one stride per dim of 'grad_output' (",
              grad_output.dim(), "), but got ", result_strides.size());
  at::Tensor grad_input =
      at::empty_strided_symint(grad_output.sym_sizes(), result_strides, grad_output.options());
  TORCH_CHECK(grad_input.is_non_overlapping_and_dense(), op,
              ": expected argument 'result_strides' ", result_strides,
              " to lay out a tensor of shape ", grad_output.sym_sizes(),
              " densely (the strides of the result the sign mask came with)");
  return grad_input;
}

at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight) {
  check_prelu_weight("torch_ext::prelu", self, weight);
  return at::empty_like(self);
}

std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output,
                                                  const at::Tensor& self,
                                                  const at::Tensor& weight) {
  const char* op = "torch_ext::prelu_backward";
  check_prelu_weight(op, self, weight);
  check_floating(op, "grad_output", grad_output);
  check_like(op, "grad_output", grad_output, "self", self);
  // ATen's PReLU backward kernel broadcasts grad_output to the input's shape.
  TORCH_CHECK(at::is_expandable_to(grad_output.sym_sizes(), self.sym_sizes()), op,
              ": expected argument 'grad_output' to have the shape of 'self' ", self.sym_sizes(),
              " or one that broadcasts to it, but got ", grad_output.sym_sizes());
  return {at::empty_like(self), at::empty_like(weight)};
}

at::Tensor counted_activation(const char* op, const at::Tensor& self, const at::Tensor& counts,
                              int64_t unit_dim, const at::Tensor& alive_threshold,
                              const std::optional<at::Tensor>& abs_sum) {
  const int64_t dim = count_active(self, counts, unit_dim, alive_threshold, op, "input");
  if (abs_sum) outputs::abs_sum(self, *abs_sum, dim, op, "input", "abs_sum");
  return at::empty_like(self);
}

bool laid_out_as(const at::Tensor& a, const at::Tensor& like) {
  if (a.sizes() != like.sizes()) return false;
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) > 1 && a.stride(d) != like.stride(d)) return false;
  }
  return true;
}

at::Tensor laid_out_like(const at::Tensor& t, const at::Tensor& like) {
  if (t.is_non_overlapping_and_dense() && laid_out_as(t, like)) return t;
  return at::empty_like(like).copy_(t);
}

int64_t count_active(const at::Tensor& z, const at::Tensor& counts, int64_t unit_dim,
                     const at::Tensor& alive_threshold, const char* op, const char* arg) {
  const int64_t dim = unit_dim_of(op, arg, z, unit_dim);
  const c10::SymInt units = z.sym_size(dim);
  TORCH_CHECK_TYPE(counts.scalar_type() == at::kLong, op,
                   ": expected argument 'counts' to be int64, but got ", counts.scalar_type());
  TORCH_CHECK(counts.dim() == 2 && counts.sym_size(0) == 2 && counts.sym_size(1) == units &&
                  counts.is_contiguous(),
              op, ": expected argument 'counts' to be a contiguous [2, ", units,
              "] tensor (one column per unit along unit_dim ", dim, "), but got shape ",
              counts.sym_sizes());
  TORCH_CHECK_TYPE(alive_threshold.scalar_type() == at::kFloat, op,
                   ": expected argument 'alive_threshold' to be float32, but got ",
                   alive_threshold.scalar_type());
  // {units}: a threshold per unit (z > threshold); {4, units}: rows lo, hi, band_lo, band_hi.
  const bool half_line = alive_threshold.dim() == 1 && alive_threshold.sym_size(0) == units;
  const bool interval = alive_threshold.dim() == 2 && alive_threshold.sym_size(0) == 4 &&
                        alive_threshold.sym_size(1) == units;
  TORCH_CHECK(
      (half_line || interval) && alive_threshold.is_contiguous(), op,
      ": expected argument 'alive_threshold' to be a contiguous [", units, "] or [4, ", units,
      "] tensor (per unit: a threshold, or rows lo, hi, band_lo, band_hi), but got shape ",
      alive_threshold.sym_sizes(), alive_threshold.is_contiguous() ? "" : " (not contiguous)");
  TORCH_CHECK(counts.device() == z.device() && alive_threshold.device() == z.device(), op,
              ": expected 'counts' and 'alive_threshold' on the device of '", arg, "' (",
              z.device(), "), but got ", counts.device(), " and ", alive_threshold.device());
  return dim;
}

int64_t abs_sum(const at::Tensor& h, const at::Tensor& sums, int64_t unit_dim, const char* op,
                const char* arg, const char* sums_arg) {
  const int64_t dim = unit_dim_of(op, arg, h, unit_dim);
  const c10::SymInt units = h.sym_size(dim);
  TORCH_CHECK_TYPE(sums.scalar_type() == at::kDouble, op, ": expected argument '", sums_arg,
                   "' to be float64, but got ", sums.scalar_type());
  TORCH_CHECK(sums.dim() == 1 && sums.sym_size(0) == units && sums.is_contiguous(), op,
              ": expected argument '", sums_arg, "' to be a contiguous [", units,
              "] tensor (one sum per unit along unit_dim ", dim, "), but got shape ",
              sums.sym_sizes(), sums.is_contiguous() ? "" : " (not contiguous)");
  TORCH_CHECK(sums.device() == h.device(), op, ": expected argument '", sums_arg,
              "' to be on the device of '", arg, "' (", h.device(), "), but got ", sums.device());
  return dim;
}

}  // namespace torch_ext::outputs
