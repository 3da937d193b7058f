// CUDA implementation of torch_ext::prelu, prelu_backward and prelu_counted.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "activations/leaky_relu.h"
#include "ops/counted.h"
#include "ops/cuda/counting.cuh"
#include "ops/cuda/elementwise.cuh"
#include "ops/cuda/functors.cuh"
#include "ops/cuda/unit_loops.cuh"
#include "ops/iterator.h"
#include "ops/outputs.h"
#include "ops/prelu_weight.h"

namespace torch_ext::cuda {
namespace {

auto prelu_functor() {
  return [](auto tag) { return PreluForward<typename decltype(tag)::type>{}; };
}

at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight) {
  at::Tensor out = outputs::prelu(self, weight);
  const c10::cuda::CUDAGuard guard(self.device());
  auto iter = elementwise(out, self, prelu_weight::broadcast(weight, self));
  for_each_element<2>(iter, prelu_functor());
  return out;
}

// One element of the one-pass backward: writes grad_input, returns the element's weight-
// gradient term (in opmath_t), which reduce_units sums per channel.
template <typename scalar_t>
struct PreluBackwardStep {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* x;
  const scalar_t* g;
  scalar_t* grad_input;
  const scalar_t* slopes;  // one per channel
  __device__ opmath_t operator()(int64_t offset, int64_t u) const {
    const opmath_t xv = static_cast<opmath_t>(x[offset]), gv = static_cast<opmath_t>(g[offset]);
    const act::LeakyRelu<opmath_t> f{static_cast<opmath_t>(slopes[u])};
    grad_input[offset] = static_cast<scalar_t>(f.backward(gv, xv));
    return f.slope_backward(gv, xv);
  }
};

// The block's sum for channel u: partials[u, slice] (summed over slices afterwards, in a
// fixed order: deterministic, unlike atomic float adds).
template <typename opmath_t>
struct WritePartial {
  opmath_t* partials;
  int64_t slices;
  __device__ void operator()(int64_t u, int64_t slice, opmath_t sum) const {
    partials[u * slices + slice] = sum;
  }
};

// grad_input and the per-channel weight gradient in one pass over x with channels (dim 1)
// as units; grad_output and grad_input laid out as x.
void prelu_backward_fused(const UnitView& view, const at::Tensor& grad_output,
                          const at::Tensor& self, const at::Tensor& weight, at::Tensor& grad_input,
                          at::Tensor& grad_weight) {
  const at::Tensor slopes = weight.reshape({-1}).expand({view.units}).contiguous();
  const int64_t slices = reduce_slices(view);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, self.scalar_type(), "prelu_backward_cuda", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        at::Tensor partials = at::empty(
            {view.units, slices}, self.options().dtype(c10::CppTypeToScalarType<opmath_t>::value));
        const PreluBackwardStep<scalar_t> step{
            self.const_data_ptr<scalar_t>(), grad_output.const_data_ptr<scalar_t>(),
            grad_input.mutable_data_ptr<scalar_t>(), slopes.const_data_ptr<scalar_t>()};
        reduce_units<opmath_t>(
            view, step, WritePartial<opmath_t>{partials.mutable_data_ptr<opmath_t>(), slices});
        const at::Tensor per_channel = partials.sum(1);
        grad_weight.copy_(weight.numel() == 1 ? per_channel.sum().reshape(weight.sizes())
                                              : per_channel.reshape(weight.sizes()));
      });
}

// x seen per channel (dim 1): NCHW planes, channels_last or [N, C] rows; a tensor of fewer
// dims, contiguous, is one plane of one channel (its weight has one element).
std::optional<UnitView> channel_view(const at::Tensor& self) {
  if (self.numel() == 0) return std::nullopt;
  if (self.dim() >= 2) return unit_view(self, 1);
  if (!self.is_contiguous()) return std::nullopt;
  const int64_t n = self.numel();
  return UnitView{self.const_data_ptr(), self.scalar_type(), 1, 1, n, n, n};
}

std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output,
                                                  const at::Tensor& self,
                                                  const at::Tensor& weight) {
  auto [grad_input, grad_weight] = outputs::prelu_backward(grad_output, self, weight);
  const c10::cuda::CUDAGuard guard(self.device());
  const auto view = channel_view(self);
  if (view && grad_output.strides() == self.strides() && grad_input.strides() == self.strides()) {
    prelu_backward_fused(*view, grad_output, self, weight, grad_input, grad_weight);
    return {grad_input, grad_weight};
  }
  auto input_iter =
      elementwise(grad_input, grad_output, self, prelu_weight::broadcast(weight, self));
  for_each_element<3>(input_iter,
                      [](auto tag) { return PreluBackwardInput<typename decltype(tag)::type>{}; });
  at::Tensor per_element = at::empty_like(self);
  auto weight_iter = elementwise(per_element, grad_output, self);
  for_each_element<2>(weight_iter,
                      [](auto tag) { return PreluSlopeTerm<typename decltype(tag)::type>{}; });
  grad_weight.copy_(prelu_weight::reduce(per_element, weight));
  return {grad_input, grad_weight};
}

at::Tensor prelu_counted(const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts,
                         int64_t unit_dim, const at::Tensor& alive_threshold) {
  const c10::cuda::CUDAGuard guard(self.device());
  return prelu_counted_forward(
      self, weight, counts, unit_dim, alive_threshold,
      [](const UnitView& view, void* out, const void* slopes, const float* threshold,
         int64_t* active, int64_t* alive) {
        fused_counting(prelu_functor(), slopes)(view, out, threshold, active, alive);
      },
      [&](at::Tensor& out) {
        auto iter = elementwise(out, self, prelu_weight::broadcast(weight, self));
        for_each_element<2>(iter, prelu_functor());
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) {
  m.impl("prelu", prelu);
  m.impl("prelu_backward", prelu_backward);
  m.impl("prelu_counted", prelu_counted);
}

}  // namespace torch_ext::cuda
