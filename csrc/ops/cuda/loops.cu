// The CUDA loops table (ops/loops.h): the activation formulas instantiated on the CUDA
// skeletons (elementwise.cuh, unit_loops.cuh). The host code that calls them, with the
// input's device current, is each op's, shared with the CPU (ops/<op>.cpp).

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>

#include "activations/elu_family.h"
#include "activations/leaky_relu.h"
#include "ops/cuda/counting.cuh"
#include "ops/cuda/elementwise.cuh"
#include "ops/cuda/functors.cuh"
#include "ops/cuda/prelu_backward.cuh"
#include "ops/cuda/sign_mask.cuh"
#include "ops/loops.h"

namespace torch_ext::cuda {
namespace {

// make(OpMath<T>{}) -> act::LeakyRelu<T> with the slope rounded once to T.
auto leaky_of(double negative_slope) {
  return [negative_slope](auto tag) {
    using T = typename decltype(tag)::type;
    return act::LeakyRelu<T>{static_cast<T>(negative_slope)};
  };
}

// make(OpMath<T>{}) -> act::Elu<T> (parameters rounded once to T).
auto elu_of(const act::EluParams& p) {
  return [p](auto tag) { return act::make_elu<typename decltype(tag)::type>(p); };
}

auto prelu_functor() {
  return [](auto tag) { return PreluForward<typename decltype(tag)::type>{}; };
}

void leaky_relu(at::TensorIteratorBase& iter, double negative_slope) {
  for_each_element<1>(iter, functor_of<Forward>(leaky_of(negative_slope)));
}

// With slope >= 0 the result has the input's sign, so one loop serves both paths.
void leaky_relu_backward(at::TensorIteratorBase& iter, double negative_slope) {
  for_each_element<2>(iter, functor_of<Backward>(leaky_of(negative_slope)));
}

void prelu(at::TensorIteratorBase& iter) { for_each_element<2>(iter, prelu_functor()); }

void elu(at::TensorIteratorBase& iter, const act::EluParams& p) {
  for_each_element<1>(iter, functor_of<Forward>(elu_of(p)));
}

void elu_backward(at::TensorIteratorBase& iter, const act::EluParams& p, bool is_result) {
  if (is_result) {
    for_each_element<2>(iter, functor_of<BackwardFromResult>(elu_of(p)));
  } else {
    for_each_element<2>(iter, functor_of<Backward>(elu_of(p)));
  }
}

void count_active(const UnitView& v, const UnitStats& stats) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "count_active_cuda",
                                  [&] { count_units<scalar_t>(v, WritesNothing{}, stats); });
}

void abs_sum(const UnitView& v, double* sums) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "abs_sum_cuda",
                                  [&] { sum_abs_units<scalar_t>(v, sums); });
}

void leaky_relu_counted(const UnitView& v, void* out, double negative_slope,
                        const UnitStats& stats) {
  fused_counting(functor_of<ForwardOfUnit>(leaky_of(negative_slope)))(v, out, stats);
}

void prelu_counted(const UnitView& v, void* out, const void* slopes, const UnitStats& stats) {
  fused_counting(prelu_functor(), slopes)(v, out, stats);
}

void elu_counted(const UnitView& v, void* out, const act::EluParams& p, const UnitStats& stats) {
  fused_counting(functor_of<ForwardOfUnit>(elu_of(p)))(v, out, stats);
}

at::Tensor prelu_backward_fused(const UnitView& v, const void* grad_output, void* grad_input,
                                const at::Tensor& slopes) {
  const int64_t slices = reduce_slices(v);
  at::Tensor per_unit;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "prelu_backward_cuda", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    at::Tensor partials = at::empty(
        {v.units, slices}, slopes.options().dtype(c10::CppTypeToScalarType<opmath_t>::value));
    const PreluBackwardStep<scalar_t> step{
        static_cast<const scalar_t*>(v.data), static_cast<const scalar_t*>(grad_output),
        static_cast<scalar_t*>(grad_input), slopes.const_data_ptr<scalar_t>()};
    reduce_units<opmath_t>(v, step,
                           WritePartial<opmath_t>{partials.mutable_data_ptr<opmath_t>(), slices});
    per_unit = partials.sum(1);
  });
  return per_unit;
}

void leaky_relu_masked(c10::ScalarType dtype, const void* x, void* out, uint8_t* mask, int64_t n,
                       double negative_slope) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dtype, "leaky_relu_masked_cuda", [&] {
    launch_leaky_relu_masked(static_cast<const scalar_t*>(x), static_cast<scalar_t*>(out), mask, n,
                             negative_slope);
  });
}

void leaky_relu_backward_masked(c10::ScalarType dtype, const void* grad_output, const uint8_t* mask,
                                void* grad_input, int64_t n, double negative_slope) {
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, dtype, "leaky_relu_backward_masked_cuda", [&] {
        launch_leaky_relu_backward_masked(static_cast<const scalar_t*>(grad_output), mask,
                                          static_cast<scalar_t*>(grad_input), n, negative_slope);
      });
}

Loops make_loops() {
  Loops t;
  t.leaky_relu = leaky_relu;
  t.leaky_relu_backward = leaky_relu_backward;
  t.prelu = prelu;
  t.elu = elu;
  t.elu_backward = elu_backward;
  t.count_active = count_active;
  t.abs_sum = abs_sum;
  t.leaky_relu_counted = leaky_relu_counted;
  t.prelu_counted = prelu_counted;
  t.elu_counted = elu_counted;
  t.prelu_backward_fused = prelu_backward_fused;
  t.leaky_relu_masked = leaky_relu_masked;
  t.leaky_relu_backward_masked = leaky_relu_backward_masked;
  return t;
}

}  // namespace

const Loops& loops() {
  static const Loops table = make_loops();
  return table;
}

}  // namespace torch_ext::cuda
