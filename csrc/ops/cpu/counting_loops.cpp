// The CPU loops of the per-unit statistics (counting_loops.h): count_active_, abs_sum_ and
// the counted forwards, the activation formulas instantiated on the per-unit pass of
// counting.h. Compiled once per CPU ISA, as loops.cpp is (see CMakeLists.txt).

#include "ops/cpu/counting_loops.h"

#include <ATen/Dispatch.h>

#include <type_traits>

#include "activations/elu_family.h"
#include "activations/leaky_relu.h"
#include "ops/cpu/counting.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

using act::scalar_of_t;

void count_active(const UnitView& v, const UnitStats& stats) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "count_active_",
                                  [&] { count_units<scalar_t>(v, WritesNothing{}, stats); });
}

void abs_sum(const UnitView& v, double* sums) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "abs_sum_",
                                  [&] { sum_abs_units<scalar_t>(v, sums); });
}

namespace {

// y = f(z) and the counts of z (and the sums of |y|), chunk by chunk while the chunk is in
// cache. f(x, p): the activation of a compute vector x, p the unit's parameter (PReLU's slope).
template <typename F>
void apply_counted(const UnitView& v, void* out, const void* unit_param, const F& f,
                   const UnitStats& stats) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "counted_forward", [&] {
    const Activation<scalar_t, F> map{static_cast<scalar_t*>(out),
                                      static_cast<const scalar_t*>(unit_param), f};
    count_units<scalar_t>(v, map, stats);
  });
}

}  // namespace

void leaky_relu_counted(const UnitView& v, void* out, double negative_slope,
                        const UnitStats& stats) {
  const auto f = [negative_slope](auto x, auto) {
    using T = decltype(x);
    return act::LeakyRelu<T>{T(scalar_of_t<T>(negative_slope))}.forward(x);
  };
  apply_counted(v, out, nullptr, f, stats);
}

// With the plain forward's expm1 (loops.cpp): expm1_of computes both sides of 0 for every
// lane, expm1_of_nonpositive (the same bits at x <= 0) one. The other forms leave out a
// multiply, for two more copies of this large loop.
void elu_counted(const UnitView& v, void* out, const act::EluParams& p, const UnitStats& stats) {
  const auto run = [&](auto form) {
    const auto f = [p](auto x, auto) {
      return act::make_elu<decltype(x)>(p).template forward<decltype(form)::value>(x);
    };
    apply_counted(v, out, nullptr, f, stats);
  };
  if (act::elu_forward_form(p) & act::kEluNonPositiveArgument) {
    run(std::integral_constant<int, act::kEluNonPositiveArgument>{});
  } else {
    run(std::integral_constant<int, 0>{});
  }
}

void prelu_counted(const UnitView& v, void* out, const void* weight, const UnitStats& stats) {
  const auto f = [](auto x, auto w) { return act::LeakyRelu<decltype(x)>{w}.forward(x); };
  apply_counted(v, out, weight, f, stats);
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
