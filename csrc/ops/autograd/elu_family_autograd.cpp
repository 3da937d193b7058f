// Autograd for the ELU family (torch_ext::elu, selu, celu and their in-place forms), the
// counted forward elu_counted and (for double backward) elu_backward: one set of Functions,
// one backward op, parameterised as ATen does by (alpha, scale, input_scale).

#include <ATen/TensorOperators.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "activations/elu_family.h"
#include "ops/autograd/common.h"
#include "ops/autograd/forward_ad.h"
#include "ops/autograd/named_node.h"
#include "torch_ext/ops.h"

namespace torch_ext::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// A member's own forward ops (each has its schema and errors), called below autograd, and
// the names native gives their nodes.
struct MemberOps {
  at::Tensor (*forward)(const at::Tensor& self, double alpha);
  at::Tensor& (*forward_)(at::Tensor& self, double alpha);
  const char* node_name;
  const char* node_name_in_place;
};

struct EluSpec {
  act::EluParams params;
  const MemberOps* ops = nullptr;    // the member's ops; unused with a counter
  const Counter* counter = nullptr;  // runs torch_ext::elu_counted (out of place only)
  bool save_output = false;          // out of place: keep the output, not the input (opt-in)
};

// The out-of-place node's name. A counted forward knows its member only by the parameters:
// CELU's input_scale is 1 / alpha, so a CELU with alpha 1 (which is ELU's function) is
// named as ELU.
const char* node_name(const EluSpec& spec) {
  if (spec.ops != nullptr) return spec.ops->node_name;
  return spec.params.input_scale == 1.0 ? "EluBackward0" : "CeluBackward0";
}

void save_spec(AutogradContext* ctx, const act::EluParams& p, bool is_result) {
  ctx->saved_data["alpha"] = p.alpha;
  ctx->saved_data["scale"] = p.scale;
  ctx->saved_data["input_scale"] = p.input_scale;
  ctx->saved_data["is_result"] = is_result;
}

act::EluParams saved_params(AutogradContext* ctx) {
  return {ctx->saved_data["alpha"].toDouble(), ctx->saved_data["scale"].toDouble(),
          ctx->saved_data["input_scale"].toDouble()};
}

at::Tensor backward_of(const at::Tensor& grad, const at::Tensor& self_or_result,
                       const act::EluParams& p, bool is_result) {
  return torch_ext::elu_backward(grad, self_or_result, p.alpha, p.scale, is_result, p.input_scale);
}

at::Tensor backward_from_saved(AutogradContext* ctx, const at::Tensor& grad) {
  return backward_of(grad, ctx->get_saved_variables()[0], saved_params(ctx),
                     ctx->saved_data["is_result"].toBool());
}

at::Tensor run_forward(const at::Tensor& self, const EluSpec& spec) {
  const act::EluParams& p = spec.params;
  if (spec.counter != nullptr) {
    return torch_ext::elu_counted(self, p.alpha, p.scale, spec.counter->counts,
                                  spec.counter->unit_dim, spec.counter->alive_threshold,
                                  spec.save_output, p.input_scale, spec.counter->abs_sum);
  }
  return spec.ops->forward(self, p.alpha);
}

// Whether the out-of-place forward keeps its output for backward: only when asked
// (save_output), and only where the output decides the gradient well enough: alpha >= 0
// (y > 0 exactly when x > 0) and float32/float64 (a bfloat16/float16 output would cost the
// gradient a few percent where y + alpha cancels), and not under forward AD: the output
// gets its tangent only after this Function returns, so a saved output would carry none
// and forward-over-reverse would lose the second derivative. Otherwise the input, as
// PyTorch keeps. `self_dual`: the input with its tangent, if any.
bool keeps_output(const at::Tensor& self_dual, const EluSpec& spec) {
  const auto dtype = self_dual.scalar_type();
  return spec.save_output && spec.params.alpha >= 0.0 &&
         (dtype == at::kFloat || dtype == at::kDouble) && !tangent_of(self_dual).defined();
}

at::Tensor& run_forward_(at::Tensor& self, const EluSpec& spec) {
  return spec.ops->forward_(self, spec.params.alpha);
}

// Saves the input, as PyTorch does: the output may then be modified in place afterwards
// (h += residual), and the gradient keeps full precision far in the negative tail. With
// save_output, the output instead (see keeps_output). `self` is the caller's input's
// primal, `self_dual` the input itself, saved with its tangent (see forward_ad.h).
class Elu : public torch::autograd::Function<Elu> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& self, EluSpec spec,
                            const at::Tensor* self_dual) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor result = run_forward(self, spec);
    const bool save_result = keeps_output(*self_dual, spec);
    save_spec(ctx, spec.params, save_result);
    ctx->save_for_backward({save_result ? result : *self_dual});
    return result;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {backward_from_saved(ctx, grads[0]), at::Tensor(), at::Tensor()};
  }
};

// Saves the result; backward raises for a negative alpha.
class EluInPlace : public torch::autograd::Function<EluInPlace> {
 public:
  static at::Tensor forward(AutogradContext* ctx, at::Tensor self, EluSpec spec) {
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      run_forward_(self, spec);
    }
    save_spec(ctx, spec.params, true);
    record_in_place(ctx, self);
    return self;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {backward_from_saved(ctx, grads[0]), at::Tensor()};
  }
};

}  // namespace
}  // namespace torch_ext::autograd

TORCH_EXT_SAVES_OUTPUT_AS_ATEN(torch_ext::autograd::EluInPlace)

namespace torch_ext::autograd {
namespace {

// h * f''(s), the derivative of g * f'(s) in s, times h = g * ds: from the input
// f''(x) = input_scale * f'(x) on x < 0; from the result d f'/dy = input_scale on y < 0;
// 0 elsewhere. At s = +-0 that is 0, as in ATen's elu_double_backward (f' jumps there unless
// alpha * scale * input_scale is 1, so no one-sided value is right), and its product with
// the mask `s < 0` gives NaN where the curvature is NaN, as ATen's does.
at::Tensor times_second_derivative(const at::Tensor& h, const at::Tensor& self_or_result,
                                   const act::EluParams& p, bool is_result) {
  const at::Tensor scaled = h * p.input_scale;
  const at::Tensor curvature = is_result ? scaled : backward_of(scaled, self_or_result, p, false);
  return curvature * (self_or_result < 0).to(curvature.scalar_type());
}

// grad_input = g * f'(s): d/dg is the same backward, d/ds = g * f''(s).
class EluBackward : public torch::autograd::Function<EluBackward> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output,
                            const at::Tensor& self_or_result, act::EluParams p, bool is_result,
                            const at::Tensor* grad_output_dual,
                            const at::Tensor* self_or_result_dual) {
    at::AutoDispatchBelowADInplaceOrView guard;
    save_spec(ctx, p, is_result);
    ctx->save_for_backward({*self_or_result_dual, *grad_output_dual});
    return backward_of(grad_output, self_or_result, p, is_result);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& s = saved[0];
    const auto& grad_output = saved[1];
    const auto& gg = grads[0];
    const at::Tensor grad_s = times_second_derivative(gg * grad_output, s, saved_params(ctx),
                                                      ctx->saved_data["is_result"].toBool());
    return {backward_from_saved(ctx, gg),
            grad_s,
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

// grad_input's tangent: the same backward of grad_output's tangent, plus self_or_result's
// tangent times grad_output * f''. Computed from the primals: a rule that passed a tensor
// with a tangent to elu_backward would ask for that tangent's tangent, without end.
at::Tensor elu_backward_tangent(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                                const act::EluParams& p, bool is_result) {
  const at::Tensor t_grad = tangent_of(grad_output);
  const at::Tensor t_s = tangent_of(self_or_result);
  const at::Tensor s = primal_of(self_or_result);
  at::Tensor tangent;
  if (t_grad.defined()) {
    tangent = backward_of(t_grad, s, p, is_result);
  }
  if (t_s.defined()) {
    at::Tensor term = times_second_derivative(t_s * primal_of(grad_output), s, p, is_result);
    tangent = tangent.defined() ? tangent + term : term;
  }
  return tangent;
}

at::Tensor elu_family(const at::Tensor& self, const EluSpec& spec) {
  at::Tensor out = records_grad(self)
                       ? apply_named<Elu>(node_name(spec), primal_of(self), spec, &self)
                       : below_autograd([&] { return run_forward(self, spec); });
  push_tangent(out, self, [&](const at::Tensor& t) {
    return backward_of(t, primal_of(self), spec.params, false);
  });
  return out;
}

at::Tensor& elu_family_(at::Tensor& self, const EluSpec& spec) {
  check_in_place(self);
  if (tangent_of(self).defined()) {
    return in_place_with_tangent(self,
                                 [&](const at::Tensor& copy) { return elu_family(copy, spec); });
  }
  if (records_grad(self)) {
    apply_named<EluInPlace>(spec.ops->node_name_in_place, self, spec);
  } else {
    below_autograd([&]() -> at::Tensor& { return run_forward_(self, spec); });
    torch::autograd::impl::bump_version(self);
  }
  return self;
}

at::Tensor elu_backward_autograd(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                                 double alpha, double scale, bool is_result, double input_scale) {
  const act::EluParams p{alpha, scale, input_scale};
  at::Tensor out =
      records_grad(grad_output) || records_grad(self_or_result)
          ? apply_named<EluBackward>("EluBackwardBackward0", primal_of(grad_output),
                                     primal_of(self_or_result), p, is_result, &grad_output,
                                     &self_or_result)
          : below_autograd([&] { return backward_of(grad_output, self_or_result, p, is_result); });
  if (any_tangent(grad_output, self_or_result)) {
    out._set_fw_grad(elu_backward_tangent(grad_output, self_or_result, p, is_result),
                     /*level=*/0, /*is_inplace_op=*/false);
  }
  return out;
}

at::Tensor elu_counted_autograd(const at::Tensor& self, double alpha, double scale,
                                at::Tensor& counts, int64_t unit_dim,
                                const at::Tensor& alive_threshold, bool save_output,
                                double input_scale, const std::optional<at::Tensor>& abs_sum) {
  const Counter counter{counts, unit_dim, alive_threshold, abs_sum};
  at::Tensor out =
      elu_family(self, EluSpec{{alpha, scale, input_scale}, nullptr, &counter, save_output});
  bump_statistics(counter);
  return out;
}

// --- The members: each one's ops, and its Autograd kernels below ---------------------------

const MemberOps kElu{
    [](const at::Tensor& x, double alpha) { return torch_ext::elu(x, alpha); },
    [](at::Tensor& x, double alpha) -> at::Tensor& { return torch_ext::elu_(x, alpha); },
    "EluBackward0", "EluBackward1"};
// torch.selu's nodes are ELU's: ATen computes it as ELU with SELU's constants.
const MemberOps kSelu{[](const at::Tensor& x, double) { return torch_ext::selu(x); },
                      [](at::Tensor& x, double) -> at::Tensor& { return torch_ext::selu_(x); },
                      "EluBackward0", "EluBackward1"};
const MemberOps kCelu{
    [](const at::Tensor& x, double alpha) { return torch_ext::celu(x, alpha); },
    [](at::Tensor& x, double alpha) -> at::Tensor& { return torch_ext::celu_(x, alpha); },
    "CeluBackward0", "CeluBackward1"};

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, Autograd, m) {
  m.impl("elu", [](const at::Tensor& self, double alpha, bool save_output) {
    return elu_family(self, EluSpec{act::elu_params(alpha), &kElu, nullptr, save_output});
  });
  m.impl("elu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return elu_family_(self, EluSpec{act::elu_params(alpha), &kElu});
  });
  m.impl("selu", [](const at::Tensor& self, bool save_output) {
    return elu_family(self, EluSpec{act::selu_params(), &kSelu, nullptr, save_output});
  });
  m.impl("selu_", [](at::Tensor& self) -> at::Tensor& {
    return elu_family_(self, EluSpec{act::selu_params(), &kSelu});
  });
  // alpha == 0 reaches the forward op, which refuses it before anything is computed.
  m.impl("celu", [](const at::Tensor& self, double alpha, bool save_output) {
    return elu_family(self, EluSpec{act::celu_params(alpha), &kCelu, nullptr, save_output});
  });
  m.impl("celu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return elu_family_(self, EluSpec{act::celu_params(alpha), &kCelu});
  });
  m.impl("elu_counted", elu_counted_autograd);
  m.impl("elu_backward", elu_backward_autograd);
}

}  // namespace torch_ext::autograd
