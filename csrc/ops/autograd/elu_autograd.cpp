// Autograd for torch_ext::elu, elu_ and (for double backward) elu_backward; SELU's
// registration (ops/autograd/selu_autograd.cpp) reuses the same Functions.

#include <ATen/TensorOperators.h>
#include <ATen/ops/where.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd/elu_family.h"
#include "ops/autograd/common.h"
#include "ops/autograd/forward_ad.h"
#include "torch_ext/ops.h"

namespace torch_ext::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void save_spec(AutogradContext* ctx, const EluSpec& spec, bool is_result) {
  ctx->saved_data["alpha"] = spec.alpha;
  ctx->saved_data["scale"] = spec.scale;
  ctx->saved_data["is_result"] = is_result;
}

at::Tensor backward_from_saved(AutogradContext* ctx, const at::Tensor& grad) {
  return torch_ext::elu_backward(
      grad, ctx->get_saved_variables()[0], ctx->saved_data["alpha"].toDouble(),
      ctx->saved_data["scale"].toDouble(), ctx->saved_data["is_result"].toBool());
}

at::Tensor run_forward(const at::Tensor& self, const EluSpec& spec) {
  if (spec.counter != nullptr) {
    return torch_ext::elu_counted(self, spec.alpha, spec.scale, spec.counter->counts,
                                  spec.counter->unit_dim, spec.counter->alive_threshold,
                                  spec.save_output);
  }
  return spec.is_selu ? torch_ext::selu(self) : torch_ext::elu(self, spec.alpha);
}

// Whether the out-of-place forward keeps its output for backward: only when asked
// (save_output), and only where the output decides the gradient well enough: alpha >= 0
// (y > 0 exactly when x > 0) and float32/float64 (a bfloat16/float16 output would cost the
// gradient a few percent where y + alpha cancels). Otherwise the input, as PyTorch keeps.
bool keeps_output(const at::Tensor& self, const EluSpec& spec) {
  const auto dtype = self.scalar_type();
  return spec.save_output && spec.alpha >= 0.0 && (dtype == at::kFloat || dtype == at::kDouble);
}

at::Tensor& run_forward_(at::Tensor& self, const EluSpec& spec) {
  return spec.is_selu ? torch_ext::selu_(self) : torch_ext::elu_(self, spec.alpha);
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
    const bool save_result = keeps_output(self, spec);
    save_spec(ctx, spec, save_result);
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
    save_spec(ctx, spec, true);
    record_in_place(ctx, self);
    return self;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {backward_from_saved(ctx, grads[0]), at::Tensor()};
  }
};

// h * f''(s), the derivative of g * f'(s) in s, times h = g * ds: from the input
// f''(x) = f'(x) on x <= 0 (0 above); from the result d f'/dy = 1 on y <= 0.
at::Tensor times_second_derivative(const at::Tensor& h, const at::Tensor& self_or_result,
                                   const EluSpec& spec, bool is_result) {
  const at::Tensor curvature =
      is_result ? h : torch_ext::elu_backward(h, self_or_result, spec.alpha, spec.scale, false);
  return at::where(self_or_result > 0, 0.0, curvature);
}

// grad_input = g * f'(s): d/dg is the same backward, d/ds = g * f''(s).
class EluBackward : public torch::autograd::Function<EluBackward> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output,
                            const at::Tensor& self_or_result, double alpha, double scale,
                            bool is_result, const at::Tensor* grad_output_dual,
                            const at::Tensor* self_or_result_dual) {
    at::AutoDispatchBelowADInplaceOrView guard;
    save_spec(ctx, EluSpec{alpha, scale, false}, is_result);
    ctx->save_for_backward({*self_or_result_dual, *grad_output_dual});
    return torch_ext::elu_backward(grad_output, self_or_result, alpha, scale, is_result);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& s = saved[0];
    const auto& grad_output = saved[1];
    const auto& gg = grads[0];
    const at::Tensor grad_s = times_second_derivative(
        gg * grad_output, s,
        EluSpec{ctx->saved_data["alpha"].toDouble(), ctx->saved_data["scale"].toDouble(), false},
        ctx->saved_data["is_result"].toBool());
    return {backward_from_saved(ctx, gg),
            grad_s,
            at::Tensor(),
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
                                const EluSpec& spec, bool is_result) {
  const at::Tensor t_grad = tangent_of(grad_output);
  const at::Tensor t_s = tangent_of(self_or_result);
  const at::Tensor s = primal_of(self_or_result);
  at::Tensor tangent;
  if (t_grad.defined()) {
    tangent = torch_ext::elu_backward(t_grad, s, spec.alpha, spec.scale, is_result);
  }
  if (t_s.defined()) {
    at::Tensor term = times_second_derivative(t_s * primal_of(grad_output), s, spec, is_result);
    tangent = tangent.defined() ? tangent + term : term;
  }
  return tangent;
}

}  // namespace

at::Tensor elu_family(const at::Tensor& self, const EluSpec& spec) {
  at::Tensor out = records_grad(self) ? Elu::apply(primal_of(self), spec, &self)
                                      : below_autograd([&] { return run_forward(self, spec); });
  push_tangent(out, self, [&](const at::Tensor& t) {
    return torch_ext::elu_backward(t, primal_of(self), spec.alpha, spec.scale, false);
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
    EluInPlace::apply(self, spec);
  } else {
    below_autograd([&]() -> at::Tensor& { return run_forward_(self, spec); });
    torch::autograd::impl::bump_version(self);
  }
  return self;
}

TORCH_LIBRARY_IMPL(torch_ext, Autograd, m) {
  m.impl("elu", [](const at::Tensor& self, double alpha, bool save_output) {
    return elu_family(self, EluSpec{alpha, 1.0, false, nullptr, save_output});
  });
  m.impl("elu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return elu_family_(self, EluSpec{alpha, 1.0, false});
  });
  m.impl("elu_counted", [](const at::Tensor& self, double alpha, double scale, at::Tensor& counts,
                           int64_t unit_dim, const at::Tensor& alive_threshold, bool save_output) {
    const Counter counter{counts, unit_dim, alive_threshold};
    at::Tensor out = elu_family(self, EluSpec{alpha, scale, false, &counter, save_output});
    torch::autograd::impl::bump_version(counts);
    return out;
  });
  m.impl("elu_backward", [](const at::Tensor& grad_output, const at::Tensor& self_or_result,
                            double alpha, double scale, bool is_result) {
    at::Tensor out =
        records_grad(grad_output) || records_grad(self_or_result)
            ? EluBackward::apply(primal_of(grad_output), primal_of(self_or_result), alpha, scale,
                                 is_result, &grad_output, &self_or_result)
            : below_autograd([&] {
                return torch_ext::elu_backward(grad_output, self_or_result, alpha, scale,
                                               is_result);
              });
    if (any_tangent(grad_output, self_or_result)) {
      out._set_fw_grad(elu_backward_tangent(grad_output, self_or_result,
                                            EluSpec{alpha, scale, false}, is_result),
                       /*level=*/0, /*is_inplace_op=*/false);
    }
    return out;
  });
}

}  // namespace torch_ext::autograd
