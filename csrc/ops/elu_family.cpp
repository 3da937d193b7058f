// The ELU family, torch_ext::elu, selu and celu (ELU with a scale or an input scale, one
// formula: activations/elu_family.h), with one backward and one counted forward for all
// three: schemas, C++ entry points, the Meta (shape-only) kernels and the device kernels,
// written once for CPU and CUDA over their loops (ops/loops.h).
// Autograd: ops/autograd/elu_family_autograd.cpp.

#include <ATen/DeviceGuard.h>
#include <torch/library.h>

#include <tuple>

#include "activations/elu_family.h"
#include "ops/counted.h"
#include "ops/iterator.h"
#include "ops/loops.h"
#include "ops/op_handle.h"
#include "ops/outputs.h"
#include "torch_ext/ops.h"

namespace torch_ext {

at::Tensor elu(const at::Tensor& self, double alpha, bool save_output) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, double, bool)>("torch_ext::elu");
  return op.call(self, alpha, save_output);
}

at::Tensor& elu_(at::Tensor& self, double alpha) {
  static const auto op = detail::op_handle<at::Tensor&(at::Tensor&, double)>("torch_ext::elu_");
  return op.call(self, alpha);
}

at::Tensor selu(const at::Tensor& self, bool save_output) {
  static const auto op = detail::op_handle<at::Tensor(const at::Tensor&, bool)>("torch_ext::selu");
  return op.call(self, save_output);
}

at::Tensor& selu_(at::Tensor& self) {
  static const auto op = detail::op_handle<at::Tensor&(at::Tensor&)>("torch_ext::selu_");
  return op.call(self);
}

at::Tensor celu(const at::Tensor& self, double alpha, bool save_output) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, double, bool)>("torch_ext::celu");
  return op.call(self, alpha, save_output);
}

at::Tensor& celu_(at::Tensor& self, double alpha) {
  static const auto op = detail::op_handle<at::Tensor&(at::Tensor&, double)>("torch_ext::celu_");
  return op.call(self, alpha);
}

at::Tensor elu_backward(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                        double alpha, double scale, bool is_result, double input_scale) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, double, double, bool,
                                   double)>("torch_ext::elu_backward");
  return op.call(grad_output, self_or_result, alpha, scale, is_result, input_scale);
}

at::Tensor elu_counted(const at::Tensor& self, double alpha, double scale, at::Tensor& counts,
                       int64_t unit_dim, const at::Tensor& alive_threshold, bool save_output,
                       double input_scale, const std::optional<at::Tensor>& abs_sum) {
  static const auto op = detail::op_handle<at::Tensor(
      const at::Tensor&, double, double, at::Tensor&, int64_t, const at::Tensor&, bool, double,
      const std::optional<at::Tensor>&)>("torch_ext::elu_counted");
  return op.call(self, alpha, scale, counts, unit_dim, alive_threshold, save_output, input_scale,
                 abs_sum);
}

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  // save_output: autograd keeps the output instead of the input (opt-in; see the README's
  // memory table). The device kernels ignore it.
  m.def("elu(Tensor self, float alpha=1.0, *, bool save_output=False) -> Tensor");
  m.def("elu_(Tensor(a!) self, float alpha=1.0) -> Tensor(a!)");
  m.def("selu(Tensor self, *, bool save_output=False) -> Tensor");
  m.def("selu_(Tensor(a!) self) -> Tensor(a!)");
  m.def("celu(Tensor self, float alpha=1.0, *, bool save_output=False) -> Tensor");
  m.def("celu_(Tensor(a!) self, float alpha=1.0) -> Tensor(a!)");
  // The backward of every member: f = scale * elu(input_scale * x, alpha) / input_scale
  // below 0 (ATen's parameters).
  m.def(
      "elu_backward(Tensor grad_output, Tensor self_or_result, float alpha, float scale, "
      "bool is_result, float input_scale=1.0) -> Tensor");
  // count_active_(input, ...) and, with abs_sum, abs_sum_(result, abs_sum, unit_dim).
  m.def(
      "elu_counted(Tensor input, float alpha, float scale, Tensor(a!) counts, int unit_dim, "
      "Tensor alive_threshold, bool save_output=False, float input_scale=1.0, "
      "Tensor(b!)? abs_sum=None) -> Tensor");
  // (alpha, scale), the one definition Python reads too (torch_ext.activations).
  m.def("selu_constants() -> (float, float)",
        [] { return std::make_tuple(act::kSeluAlpha, act::kSeluScale); });
}

namespace {

act::EluParams checked_celu(const char* op, double alpha) {
  TORCH_CHECK(alpha != 0, op, ": alpha cannot be 0 for CELU (expected argument 'alpha' nonzero)");
  return act::celu_params(alpha);
}

// The Meta kernels: checks and shapes only.
void register_meta_kernels(torch::Library& m) {
  m.impl("elu", [](const at::Tensor& self, double, bool) {
    return outputs::activation("torch_ext::elu", self);
  });
  m.impl("elu_", [](at::Tensor& self, double) -> at::Tensor& {
    outputs::activation_in_place("torch_ext::elu_", self);
    return self;
  });
  m.impl("selu",
         [](const at::Tensor& self, bool) { return outputs::activation("torch_ext::selu", self); });
  m.impl("selu_", [](at::Tensor& self) -> at::Tensor& {
    outputs::activation_in_place("torch_ext::selu_", self);
    return self;
  });
  m.impl("celu", [](const at::Tensor& self, double alpha, bool) {
    checked_celu("torch_ext::celu", alpha);
    return outputs::activation("torch_ext::celu", self);
  });
  m.impl("celu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    checked_celu("torch_ext::celu_", alpha);
    outputs::activation_in_place("torch_ext::celu_", self);
    return self;
  });
  m.impl("elu_backward", [](const at::Tensor& grad_output, const at::Tensor& self_or_result,
                            double alpha, double, bool is_result, double) {
    return outputs::activation_backward("torch_ext::elu_backward", grad_output, self_or_result,
                                        "alpha", alpha, is_result, /*self_first=*/false);
  });
  m.impl("elu_counted", [](const at::Tensor& self, double, double, at::Tensor& counts,
                           int64_t unit_dim, const at::Tensor& alive_threshold, bool, double,
                           const std::optional<at::Tensor>& abs_sum) {
    return outputs::counted_activation("torch_ext::elu_counted", self, counts, unit_dim,
                                       alive_threshold, abs_sum);
  });
}

// --- The device kernels, one per schema, all over the same two loops --------------------

// alpha, scale and input_scale in the compute type (ATen raises as we do).
void check_fits_compute_type(const char* op, const act::EluParams& p, at::ScalarType dtype) {
  outputs::check_fits_compute_type(op, "argument 'alpha'", p.alpha, dtype);
  outputs::check_fits_compute_type(op, "argument 'scale'", p.scale, dtype);
  outputs::check_fits_compute_type(op, "the input scale (1 / alpha for CELU)", p.input_scale,
                                   dtype);
}

at::Tensor forward(const char* op, const at::Tensor& self, const act::EluParams& p) {
  at::Tensor out = outputs::activation(op, self);
  check_fits_compute_type(op, p, self.scalar_type());
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  auto iter = elementwise_iterator(out, self);
  loops_for(op, self).elu(iter, p);
  return out;
}

at::Tensor& forward_(const char* op, at::Tensor& self, const act::EluParams& p) {
  outputs::activation_in_place(op, self);
  check_fits_compute_type(op, p, self.scalar_type());
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  auto iter = elementwise_iterator(self, self);
  loops_for(op, self).elu(iter, p);
  return self;
}

at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& self_or_result, double alpha,
                    double scale, bool is_result, double input_scale) {
  constexpr const char* op = "torch_ext::elu_backward";
  at::Tensor grad_input =
      outputs::activation_backward(op, grad_output, self_or_result, "alpha", alpha, is_result,
                                   /*self_first=*/false);
  check_fits_compute_type(op, {alpha, scale, input_scale}, grad_input.scalar_type());
  const c10::OptionalDeviceGuard guard(at::device_of(grad_output));
  auto iter = promoted_iterator(grad_input, grad_output, self_or_result);
  loops_for(op, grad_output).elu_backward(iter, {alpha, scale, input_scale}, is_result);
  return grad_input;
}

at::Tensor counted(const at::Tensor& self, double alpha, double scale, at::Tensor& counts,
                   int64_t unit_dim, const at::Tensor& alive_threshold, bool /*save_output*/,
                   double input_scale, const std::optional<at::Tensor>& abs_sum) {
  constexpr const char* op = "torch_ext::elu_counted";
  const act::EluParams p{alpha, scale, input_scale};
  check_fits_compute_type(op, p, self.scalar_type());
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  const Loops& loops = loops_for(op, self);
  return counted_forward(
      op, self, counts, unit_dim, alive_threshold, abs_sum,
      [&](const UnitView& view, void* out, const UnitStats& stats) {
        loops.elu_counted(view, out, p, stats);
      },
      [&](at::Tensor& out) {
        auto iter = elementwise_iterator(out, self);
        loops.elu(iter, p);
      });
}

void register_elu_family_kernels(torch::Library& m) {
  m.impl("elu", [](const at::Tensor& self, double alpha, bool /*save_output*/) {
    return forward("torch_ext::elu", self, act::elu_params(alpha));
  });
  m.impl("elu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return forward_("torch_ext::elu_", self, act::elu_params(alpha));
  });
  m.impl("selu", [](const at::Tensor& self, bool /*save_output*/) {
    return forward("torch_ext::selu", self, act::selu_params());
  });
  m.impl("selu_", [](at::Tensor& self) -> at::Tensor& {
    return forward_("torch_ext::selu_", self, act::selu_params());
  });
  m.impl("celu", [](const at::Tensor& self, double alpha, bool /*save_output*/) {
    return forward("torch_ext::celu", self, checked_celu("torch_ext::celu", alpha));
  });
  m.impl("celu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return forward_("torch_ext::celu_", self, checked_celu("torch_ext::celu_", alpha));
  });
  m.impl("elu_backward", backward);
  m.impl("elu_counted", counted);
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, Meta, m) { register_meta_kernels(m); }
TORCH_LIBRARY_IMPL(torch_ext, CPU, m) { register_elu_family_kernels(m); }
TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) { register_elu_family_kernels(m); }

}  // namespace torch_ext
