// CPU implementation of torch_ext::elu, elu_ and elu_backward (which SELU shares).

#include <torch/library.h>

#include "ops/cpu/elu_kernel.h"
#include "ops/iterator.h"
#include "ops/cpu/loops.h"
#include "ops/counted.h"
#include "ops/outputs.h"

namespace torch_ext::cpu {

at::Tensor elu_forward(const char* op, const at::Tensor& self, double alpha, double scale) {
  at::Tensor out = outputs::activation(op, self);
  auto iter = elementwise(out, self);
  loops().elu(iter, alpha, scale);
  return out;
}

at::Tensor& elu_forward_(const char* op, at::Tensor& self, double alpha, double scale) {
  outputs::activation_in_place(op, self);
  auto iter = elementwise(self, self);
  loops().elu(iter, alpha, scale);
  return self;
}

namespace {

at::Tensor elu_backward(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                        double alpha, double scale, bool is_result) {
  at::Tensor grad_input = outputs::activation_backward("torch_ext::elu_backward", grad_output,
                                                       self_or_result, "alpha", alpha, is_result);
  auto iter = elementwise(grad_input, grad_output, self_or_result);
  loops().elu_backward(iter, alpha, scale, is_result);
  return grad_input;
}

at::Tensor elu_counted(const at::Tensor& self, double alpha, double scale, at::Tensor& counts,
                       int64_t unit_dim, const at::Tensor& alive_threshold, bool /*save_output*/) {
  return counted_forward(
      "torch_ext::elu_counted", self, counts, unit_dim, alive_threshold,
      [&](const UnitView& view, void* out, const float* threshold, int64_t* active,
          int64_t* alive) {
        loops().elu_counted(view, out, alpha, scale, threshold, active, alive);
      },
      [&](at::Tensor& out) {
        auto iter = elementwise(out, self);
        loops().elu(iter, alpha, scale);
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) {
  m.impl("elu", [](const at::Tensor& self, double alpha, bool /*save_output*/) {
    return elu_forward("torch_ext::elu", self, alpha, 1.0);
  });
  m.impl("elu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return elu_forward_("torch_ext::elu_", self, alpha, 1.0);
  });
  m.impl("elu_backward", elu_backward);
  m.impl("elu_counted", elu_counted);
}

}  // namespace torch_ext::cpu
