// The CPU loops table (ops/loops.h): the activation formulas instantiated on the CPU
// skeletons (the per-unit statistics loops in counting_loops.cpp). This file is compiled
// once per CPU ISA, with CPU_CAPABILITY set to DEFAULT, AVX2, AVX512 or AVX512_BF16 (see
// CMakeLists.txt); ops/cpu/isa.cpp picks the copy at run time.

#include <ATen/ops/zeros.h>

#include <algorithm>
#include <optional>
#include <type_traits>
#include <utility>

#include "activations/elu_family.h"
#include "activations/leaky_relu.h"
#include "ops/cpu/counting_loops.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/prelu_backward.h"
#include "ops/cpu/sign_mask.h"
#include "ops/loops.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {
namespace {

using act::scalar_of_t;

void leaky_relu(at::TensorIteratorBase& iter, double negative_slope) {
  for_each_element<1>(iter, [negative_slope](auto x) {
    using T = decltype(x);
    return act::LeakyRelu<T>{T(scalar_of_t<T>(negative_slope))}.forward(x);
  });
}

void leaky_relu_backward(at::TensorIteratorBase& iter, double negative_slope) {
  for_each_element<2>(iter, [negative_slope](auto g, auto s) {
    using T = decltype(g);
    return act::LeakyRelu<T>{T(scalar_of_t<T>(negative_slope))}.backward(g, s);
  });
}

// The slope when every element has the same one (a weight of one element, broadcast):
// stride 0 along every dim of the weight operand.
std::optional<double> shared_slope(const at::TensorIteratorBase& iter) {
  const auto strides = iter.strides(2);
  if (std::any_of(strides.begin(), strides.end(), [](int64_t s) { return s != 0; })) {
    return std::nullopt;
  }
  double slope = 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, iter.common_dtype(), "prelu_slope",
                                  [&] { slope = *static_cast<const scalar_t*>(iter.data_ptr(2)); });
  return slope;
}

void prelu(at::TensorIteratorBase& iter) {
  if (const auto slope = shared_slope(iter)) {
    // One slope: Leaky ReLU's loop with it as a constant, which spares the vector body the
    // weight operand (in bfloat16/float16, widening it for every vector). Same values:
    // the slope is exact in the compute type either way.
    for_each_element<2>(iter, [s = *slope](auto x, auto /*weight*/) {
      using T = decltype(x);
      return act::LeakyRelu<T>{T(scalar_of_t<T>(s))}.forward(x);
    });
    return;
  }
  for_each_element<2>(iter,
                      [](auto x, auto w) { return act::LeakyRelu<decltype(x)>{w}.forward(x); });
}

// The member's loop in its form, one of kForms (the loops are compiled for each):
// make(std::integral_constant<int, form>{}) is the element function of a form; on the
// threads that flush denormals, the form without kEluUnitFactors runs (see EluForm).
template <size_t N, Streams kWhich, int... kForms, typename MakeBody>
void for_each_elu_element(at::TensorIteratorBase& iter, std::integer_sequence<int, kForms...>,
                          int form, const MakeBody& make) {
  const auto run_if = [&](auto constant) {
    constexpr int kForm = decltype(constant)::value;
    if (form != kForm) return false;
    for_each_element<N, kWhich>(iter, make(constant),
                                make(std::integral_constant<int, kForm & ~act::kEluUnitFactors>{}));
    return true;
  };
  const bool found = (run_if(std::integral_constant<int, kForms>{}) || ...);
  TORCH_INTERNAL_ASSERT(found, "torch_ext: no ELU loop for form ", form);
}

void elu(at::TensorIteratorBase& iter, const act::EluParams& p) {
  for_each_elu_element<1, Streams::kNone>(
      iter, act::EluForwardForms{}, act::elu_forward_form(p), [p](auto form) {
        return [p](auto x) {
          return act::make_elu<decltype(x)>(p).template forward<decltype(form)::value>(x);
        };
      });
}

void elu_backward(at::TensorIteratorBase& iter, const act::EluParams& p, bool is_result) {
  if (is_result) {
    for_each_element<2, Streams::kFullWidth>(iter, [p](auto g, auto y) {
      return act::make_elu<decltype(g)>(p).backward_from_result(g, y);
    });
    return;
  }
  for_each_elu_element<2, Streams::kFullWidth>(
      iter, act::EluBackwardForms{}, act::elu_backward_form(p), [p](auto form) {
        return [p](auto g, auto x) {
          return act::make_elu<decltype(g)>(p).template backward<decltype(form)::value>(g, x);
        };
      });
}

// Every dtype: the lanes accumulate in the compute type (float, double for double) between
// flushes into double.
at::Tensor prelu_backward_fused(const UnitView& v, const void* grad_output, void* grad_input,
                                const at::Tensor& slopes) {
  at::Tensor per_unit = at::zeros({v.units}, slopes.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "prelu_backward_fused", [&] {
    using Vec = at::vec::Vectorized<scalar_t>;
    const bool one_unit = v.inner == 1 && v.units == 1;
    // grad_input is a new tensor laid out as x (the caller's), so written out of place; its
    // whole vectors stream where each run (a row of units, a plane) is whole vectors: else
    // streamed and normal stores would share lines, each left part-written in the
    // write-combining buffers.
    const int64_t run = one_unit ? kOneUnitRun : v.inner == 1 ? v.units : v.inner;
    const PreluBackwardStep<scalar_t> step{
        static_cast<const scalar_t*>(v.data), static_cast<const scalar_t*>(grad_output),
        static_cast<scalar_t*>(grad_input),
        run % Vec::size() == 0 && streams(v.outer * v.units * v.inner * int64_t{sizeof(scalar_t)})};
    const auto* w = slopes.const_data_ptr<scalar_t>();
    double* sums = per_unit.mutable_data_ptr<double>();
    if (one_unit) {
      prelu_backward_one_unit(v, step, w, sums);
    } else if (v.inner != 1) {
      prelu_backward_planes(v, step, w, sums);
    } else {
      prelu_backward_rows(v, step, w, sums);
    }
  });
  return per_unit;
}

void leaky_relu_masked_loop(c10::ScalarType dtype, const void* x, void* out, uint8_t* mask,
                            int64_t n, double negative_slope) {
  if (dtype == at::kDouble) {
    leaky_relu_masked_double(static_cast<const double*>(x), static_cast<double*>(out), mask, n,
                             negative_slope);
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dtype, "leaky_relu_masked", [&] {
    if constexpr (!std::is_same_v<scalar_t, double>) {
      leaky_relu_masked(static_cast<const scalar_t*>(x), static_cast<scalar_t*>(out), mask, n,
                        negative_slope);
    }
  });
}

void leaky_relu_backward_masked_loop(c10::ScalarType dtype, const void* grad_output,
                                     const uint8_t* mask, void* grad_input, int64_t n,
                                     double negative_slope) {
  if (dtype == at::kDouble) {
    leaky_relu_backward_masked_double(static_cast<const double*>(grad_output), mask,
                                      static_cast<double*>(grad_input), n, negative_slope);
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, dtype, "leaky_relu_backward_masked", [&] {
        if constexpr (!std::is_same_v<scalar_t, double>) {
          leaky_relu_backward_masked(static_cast<const scalar_t*>(grad_output), mask,
                                     static_cast<scalar_t*>(grad_input), n, negative_slope);
        }
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
  t.leaky_relu_masked = leaky_relu_masked_loop;
  t.leaky_relu_backward_masked = leaky_relu_backward_masked_loop;
  return t;
}

}  // namespace

const Loops& isa_loops() {
  static const Loops table = make_loops();
  return table;
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
