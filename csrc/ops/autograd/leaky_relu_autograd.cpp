// Autograd for torch_ext::leaky_relu, leaky_relu_ and (for double backward)
// leaky_relu_backward. Registered at the Autograd key, so C++ callers, TorchScript and
// Python all get these gradients.

#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include "ops/autograd/common.h"
#include "ops/autograd/forward_ad.h"
#include "ops/autograd/named_node.h"
#include "torch_ext/ops.h"

namespace torch_ext::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor run_forward(const at::Tensor& self, double negative_slope, const Counter* counter) {
  if (counter == nullptr) return torch_ext::leaky_relu(self, negative_slope);
  return torch_ext::leaky_relu_counted(self, negative_slope, counter->counts, counter->unit_dim,
                                       counter->alive_threshold, counter->abs_sum);
}

// A stand-in for the input in the backward's graph: the input's shape and gradient edge,
// one zero expanded to that shape. The backward keeps only the sign mask, so without it a
// gradient built under create_graph would not depend on the input; native's does (with
// derivative 0: leaky_relu_backward's derivative in `self` is zeros), and a second
// torch.autograd.grad in the input returns zeros instead of raising. Kept in saved_data,
// not saved for backward: saved-tensor hooks (save_on_cpu, offloading) would copy it at
// full size, and checkpointing compares what forwards save.
at::Tensor input_anchor(const at::Tensor& self) {
  const at::Tensor zero = at::zeros({}, self.options()).expand_symint(self.sym_sizes());
  return torch::autograd::make_variable(zero, torch::autograd::impl::gradient_edge(self));
}

// grad_input = g * f'(sign) is linear in g; the mask is not differentiable and is passed by
// pointer, so the node's inputs are native's: grad_output and, when given, `anchor`, which
// stands for the input (see input_anchor) and whose derivative is zeros, as native's in
// `self`. Each gradient is computed only when asked for, as native's are.
class LeakyReluBackwardMasked : public torch::autograd::Function<LeakyReluBackwardMasked> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output,
                            const at::Tensor* sign_mask, double negative_slope,
                            c10::SymIntArrayRef result_strides,
                            const std::optional<at::Tensor>& anchor) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["negative_slope"] = negative_slope;
    ctx->saved_data["strides"] = result_strides;
    ctx->saved_data["anchored"] = anchor.has_value();
    ctx->save_for_backward({*sign_mask});
    return torch_ext::leaky_relu_backward_masked(grad_output, *sign_mask, negative_slope,
                                                 result_strides);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor& gg = grads[0];
    at::Tensor grad_grad_output;
    at::Tensor grad_anchor;
    if (ctx->needs_input_grad(0)) {
      grad_grad_output = torch_ext::leaky_relu_backward_masked(
          gg, ctx->get_saved_variables()[0], ctx->saved_data["negative_slope"].toDouble(),
          ctx->saved_data["strides"].toSymIntVector());
    }
    if (ctx->saved_data["anchored"].toBool() && ctx->needs_input_grad(1)) {
      grad_anchor = at::zeros_like(gg);
    }
    return {grad_grad_output, at::Tensor(), at::Tensor(), at::Tensor(), grad_anchor};
  }
};

// leaky_relu_backward_masked, recorded when autograd must; `anchor` (LeakyRelu's backward
// under create_graph) makes the result depend on the input.
at::Tensor backward_masked(const at::Tensor& grad_output, const at::Tensor& sign_mask,
                           double negative_slope, c10::SymIntArrayRef result_strides,
                           const std::optional<at::Tensor>& anchor = std::nullopt) {
  const bool records = records_grad(grad_output) || (anchor && records_grad(*anchor));
  at::Tensor out = records ? apply_named<LeakyReluBackwardMasked>(
                                 "LeakyReluBackwardBackward0", primal_of(grad_output), &sign_mask,
                                 negative_slope, result_strides, anchor)
                           : below_autograd([&] {
                               return torch_ext::leaky_relu_backward_masked(
                                   grad_output, sign_mask, negative_slope, result_strides);
                             });
  push_tangent(out, grad_output, [&](const at::Tensor& t) {
    // The op reads its gradient in the result's layout; a tangent may have any.
    at::Tensor laid_out = out.new_empty_strided_symint(out.sym_sizes(), result_strides);
    return torch_ext::leaky_relu_backward_masked(laid_out.copy_(t), sign_mask, negative_slope,
                                                 result_strides);
  });
  return out;
}

// Keeps one bit per element, the sign of the input, which decides the gradient for any
// slope (1/32 of a float32 input), counted or not: the counted forward then counts in a
// second pass, so a checkpointed forward (counted) and its recompute (not counted) save the
// same tensors.
class LeakyRelu : public torch::autograd::Function<LeakyRelu> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& self, double negative_slope,
                            const Counter* counter) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["negative_slope"] = negative_slope;
    if (self.is_nested()) {
      // A nested tensor has no one memory order for the mask's bits: keep the input, as
      // ATen does (torch_ext/nested.py runs the ops on its values).
      ctx->save_for_backward({self});
      return run_forward(self, negative_slope, counter);
    }
    auto [result, sign_mask] = torch_ext::leaky_relu_masked(self, negative_slope);
    if (counter != nullptr) {
      torch_ext::count_active_(self, counter->counts, counter->unit_dim, counter->alive_threshold);
      if (counter->abs_sum) {
        at::Tensor sums = *counter->abs_sum;
        torch_ext::abs_sum_(result, sums, counter->unit_dim);
      }
    }
    ctx->saved_data["strides"] = result.sym_strides();
    ctx->saved_data["anchor"] = input_anchor(self);
    ctx->save_for_backward({sign_mask});
    return result;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const double slope = ctx->saved_data["negative_slope"].toDouble();
    if (ctx->saved_data.count("anchor") == 0) {  // the input itself (nested)
      return {torch_ext::leaky_relu_backward(grads[0], saved[0], slope, false), at::Tensor(),
              at::Tensor()};
    }
    std::optional<at::Tensor> anchor;  // create_graph: tie the gradient to the input
    if (at::GradMode::is_enabled()) anchor = ctx->saved_data["anchor"].toTensor();
    return {backward_masked(grads[0], saved[0], slope, ctx->saved_data["strides"].toSymIntVector(),
                            anchor),
            at::Tensor(), at::Tensor()};
  }
};

at::Tensor leaky_relu(const at::Tensor& self, double negative_slope, const Counter* counter) {
  at::Tensor out =
      records_grad(self)
          ? apply_named<LeakyRelu>("LeakyReluBackward0", primal_of(self), negative_slope, counter)
          : below_autograd([&] { return run_forward(self, negative_slope, counter); });
  push_tangent(out, self, [&](const at::Tensor& t) {
    return torch_ext::leaky_relu_backward(t, primal_of(self), negative_slope, false);
  });
  return out;
}

// Saves the result (the input is overwritten); backward raises for a negative slope.
class LeakyReluInPlace : public torch::autograd::Function<LeakyReluInPlace> {
 public:
  static at::Tensor forward(AutogradContext* ctx, at::Tensor self, double negative_slope) {
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      torch_ext::leaky_relu_(self, negative_slope);
    }
    ctx->saved_data["negative_slope"] = negative_slope;
    record_in_place(ctx, self);
    return self;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto result = ctx->get_saved_variables()[0];
    const double slope = ctx->saved_data["negative_slope"].toDouble();
    return {torch_ext::leaky_relu_backward(grads[0], result, slope, true), at::Tensor()};
  }
};

}  // namespace
}  // namespace torch_ext::autograd

TORCH_EXT_SAVES_OUTPUT_AS_ATEN(torch_ext::autograd::LeakyReluInPlace)

namespace torch_ext::autograd {
namespace {

at::Tensor& leaky_relu_(at::Tensor& self, double negative_slope) {
  check_in_place(self);
  if (tangent_of(self).defined()) {
    return in_place_with_tangent(
        self, [&](const at::Tensor& copy) { return leaky_relu(copy, negative_slope, nullptr); });
  }
  if (records_grad(self)) {
    apply_named<LeakyReluInPlace>("LeakyReluBackward1", self, negative_slope);
  } else {
    below_autograd([&] { return torch_ext::leaky_relu_(self, negative_slope); });
    torch::autograd::impl::bump_version(self);
  }
  return self;
}

// grad_input = g * f'(s) is linear in g and piecewise constant in s: its derivative in s is
// zeros, as native's (not none: a second grad in the input then returns zeros instead of
// raising that the input was unused). Each computed only when asked for.
class LeakyReluBackward : public torch::autograd::Function<LeakyReluBackward> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output,
                            const at::Tensor& self_or_result, double negative_slope,
                            bool is_result) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["negative_slope"] = negative_slope;
    ctx->saved_data["is_result"] = is_result;
    ctx->save_for_backward({self_or_result});
    return torch_ext::leaky_relu_backward(grad_output, self_or_result, negative_slope, is_result);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto self_or_result = ctx->get_saved_variables()[0];
    const double slope = ctx->saved_data["negative_slope"].toDouble();
    const bool is_result = ctx->saved_data["is_result"].toBool();
    at::Tensor grad_grad_output;
    at::Tensor grad_self_or_result;
    if (ctx->needs_input_grad(0)) {
      grad_grad_output = torch_ext::leaky_relu_backward(grads[0], self_or_result, slope, is_result);
    }
    if (ctx->needs_input_grad(1)) grad_self_or_result = at::zeros_like(grads[0]);
    return {grad_grad_output, grad_self_or_result, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, Autograd, m) {
  m.impl("leaky_relu", [](const at::Tensor& self, double negative_slope) {
    return leaky_relu(self, negative_slope, nullptr);
  });
  m.impl("leaky_relu_masked", [](const at::Tensor& self, double negative_slope) {
    // The mask is internal state: differentiable use goes through torch_ext::leaky_relu.
    TORCH_CHECK(!records_grad(self) && !any_tangent(self),
                "torch_ext::leaky_relu_masked: not differentiable; "
                "call torch_ext::leaky_relu, whose backward uses this mask");
    return below_autograd([&] { return torch_ext::leaky_relu_masked(self, negative_slope); });
  });
  m.impl("leaky_relu_backward_masked",
         [](const at::Tensor& grad_output, const at::Tensor& sign_mask, double negative_slope,
            c10::SymIntArrayRef result_strides) {
           return backward_masked(grad_output, sign_mask, negative_slope, result_strides);
         });
  m.impl("leaky_relu_counted",
         [](const at::Tensor& self, double negative_slope, at::Tensor& counts, int64_t unit_dim,
            const at::Tensor& alive_threshold, const std::optional<at::Tensor>& abs_sum) {
           const Counter counter{counts, unit_dim, alive_threshold, abs_sum};
           at::Tensor out = leaky_relu(self, negative_slope, &counter);
           bump_statistics(counter);
           return out;
         });
  m.impl("leaky_relu_", leaky_relu_);
  m.impl("leaky_relu_backward", [](const at::Tensor& grad_output, const at::Tensor& self_or_result,
                                   double negative_slope, bool is_result) {
    at::Tensor out =
        records_grad(grad_output) || records_grad(self_or_result)
            ? apply_named<LeakyReluBackward>("LeakyReluBackwardBackward0", primal_of(grad_output),
                                             primal_of(self_or_result), negative_slope, is_result)
            : below_autograd([&] {
                return torch_ext::leaky_relu_backward(grad_output, self_or_result, negative_slope,
                                                      is_result);
              });
    // Linear in grad_output, piecewise constant in self_or_result.
    push_tangent(out, grad_output, [&](const at::Tensor& t) {
      return torch_ext::leaky_relu_backward(t, primal_of(self_or_result), negative_slope,
                                            is_result);
    });
    return out;
  });
}

}  // namespace torch_ext::autograd
