// Autograd for torch_ext::elu, elu_ and (for double backward) elu_backward; SELU's
// registration (ops/autograd/selu_autograd.cpp) reuses the same Functions.

#include <ATen/TensorOperators.h>
#include <ATen/ops/where.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd/elu_family.h"
#include "ops/autograd/common.h"
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
  return torch_ext::elu_backward(grad, ctx->get_saved_variables()[0],
                                 ctx->saved_data["alpha"].toDouble(),
                                 ctx->saved_data["scale"].toDouble(),
                                 ctx->saved_data["is_result"].toBool());
}

at::Tensor run_forward(const at::Tensor& self, const EluSpec& spec) {
  if (spec.counter != nullptr) {
    return torch_ext::elu_counted(self, spec.alpha, spec.scale, spec.counter->counts,
                                  spec.counter->unit_dim, spec.counter->alive_threshold);
  }
  return spec.is_selu ? torch_ext::selu(self) : torch_ext::elu(self, spec.alpha);
}

at::Tensor& run_forward_(at::Tensor& self, const EluSpec& spec) {
  return spec.is_selu ? torch_ext::selu_(self) : torch_ext::elu_(self, spec.alpha);
}

// Saves the output when alpha >= 0 (the gradient follows from it, and the next layer keeps
// it alive anyway); the input otherwise. In bfloat16/float16 the rounded output would cost
// the gradient up to a few percent where y + alpha cancels, so there the input is kept.
class Elu : public torch::autograd::Function<Elu> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& self, EluSpec spec) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor result = run_forward(self, spec);
    const bool full_precision = self.scalar_type() == at::kFloat || self.scalar_type() == at::kDouble;
    const bool save_result = spec.alpha >= 0.0 && full_precision;
    save_spec(ctx, spec, save_result);
    ctx->save_for_backward({save_result ? result : self});
    return result;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {backward_from_saved(ctx, grads[0]), at::Tensor()};
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

// grad_input = g * f'(s). d/dg is the same backward; d/ds = g * f''(s), where from the
// input f''(x) = f'(x) on x <= 0 (0 above) and from the result d f'/dy = 1 on y <= 0.
class EluBackward : public torch::autograd::Function<EluBackward> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output,
                            const at::Tensor& self_or_result, double alpha, double scale,
                            bool is_result) {
    at::AutoDispatchBelowADInplaceOrView guard;
    save_spec(ctx, EluSpec{alpha, scale, false}, is_result);
    ctx->save_for_backward({self_or_result, grad_output});
    return torch_ext::elu_backward(grad_output, self_or_result, alpha, scale, is_result);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& s = saved[0];
    const auto& grad_output = saved[1];
    const auto& gg = grads[0];
    const bool is_result = ctx->saved_data["is_result"].toBool();
    at::Tensor curvature = is_result ? gg * grad_output
                                     : torch_ext::elu_backward(
                                           gg * grad_output, s, ctx->saved_data["alpha"].toDouble(),
                                           ctx->saved_data["scale"].toDouble(), false);
    at::Tensor grad_s = at::where(s > 0, 0.0, curvature);
    return {backward_from_saved(ctx, gg), grad_s, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor elu_family(const at::Tensor& self, const EluSpec& spec) {
  if (!records_grad(self)) {
    return below_autograd([&] { return run_forward(self, spec); });
  }
  return Elu::apply(self, spec);
}

at::Tensor& elu_family_(at::Tensor& self, const EluSpec& spec) {
  if (!records_grad(self)) {
    below_autograd([&]() -> at::Tensor& { return run_forward_(self, spec); });
    torch::autograd::impl::bump_version(self);
    return self;
  }
  EluInPlace::apply(self, spec);
  return self;
}

TORCH_LIBRARY_IMPL(torch_ext, Autograd, m) {
  m.impl("elu", [](const at::Tensor& self, double alpha) {
    return elu_family(self, EluSpec{alpha, 1.0, false});
  });
  m.impl("elu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return elu_family_(self, EluSpec{alpha, 1.0, false});
  });
  m.impl("elu_counted", [](const at::Tensor& self, double alpha, double scale, at::Tensor& counts,
                           int64_t unit_dim, const at::Tensor& alive_threshold) {
    const Counter counter{counts, unit_dim, alive_threshold};
    at::Tensor out = elu_family(self, EluSpec{alpha, scale, false, &counter});
    torch::autograd::impl::bump_version(counts);
    return out;
  });
  m.impl("elu_backward", [](const at::Tensor& grad_output, const at::Tensor& self_or_result,
                            double alpha, double scale, bool is_result) {
    if (!records_grad(grad_output) && !records_grad(self_or_result)) {
      return below_autograd([&] {
        return torch_ext::elu_backward(grad_output, self_or_result, alpha, scale, is_result);
      });
    }
    return EluBackward::apply(grad_output, self_or_result, alpha, scale, is_result);
  });
}

}  // namespace torch_ext::autograd
