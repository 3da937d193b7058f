// Instantiates the elementwise skeleton for each activation. This file is compiled once
// per CPU ISA, with CPU_CAPABILITY set to DEFAULT, AVX2 or AVX512 (see CMakeLists.txt).

#include "activations/elu.h"
#include "activations/leaky_relu.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/sign_mask.h"
#include "ops/cpu/unit_loops.h"

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

void prelu(at::TensorIteratorBase& iter) {
  for_each_element<2>(iter,
                      [](auto x, auto w) { return act::LeakyRelu<decltype(x)>{w}.forward(x); });
}

void prelu_backward_input(at::TensorIteratorBase& iter) {
  for_each_element<3>(
      iter, [](auto g, auto x, auto w) { return act::LeakyRelu<decltype(x)>{w}.backward(g, x); });
}

void prelu_backward_weight(at::TensorIteratorBase& iter) {
  for_each_element<2>(iter, [](auto g, auto x) {
    using T = decltype(x);
    return act::LeakyRelu<T>{T(0)}.slope_backward(g, x);
  });
}

void elu(at::TensorIteratorBase& iter, double alpha, double scale) {
  for_each_element<1>(
      iter, [alpha, scale](auto x) { return act::make_elu<decltype(x)>(alpha, scale).forward(x); });
}

void elu_backward(at::TensorIteratorBase& iter, double alpha, double scale, bool is_result) {
  if (is_result) {
    for_each_element<2>(iter, [alpha, scale](auto g, auto y) {
      return act::make_elu<decltype(g)>(alpha, scale).backward_from_result(g, y);
    });
  } else {
    for_each_element<2>(iter, [alpha, scale](auto g, auto x) {
      return act::make_elu<decltype(g)>(alpha, scale).backward(g, x);
    });
  }
}

// --- count_active and the counted forwards ------------------------------------------------

void count_active(const UnitView& v, const float* threshold, int64_t* active, int64_t* alive) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "count_active_", [&] {
    count_units<scalar_t>(v, CountOnly{}, threshold, active, alive);
  });
}

// y = f(z) and the counts of z, chunk by chunk while the chunk is in cache.
// f(x, p): the activation of a compute vector x, p the unit's parameter (PReLU's slope).
template <typename F>
void apply_counted(const UnitView& v, void* out, const void* unit_param, const F& f,
                   const float* threshold, int64_t* active, int64_t* alive) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "counted_forward", [&] {
    const Activation<scalar_t, F> map{static_cast<scalar_t*>(out),
                                      static_cast<const scalar_t*>(unit_param), f};
    count_units<scalar_t>(v, map, threshold, active, alive);
  });
}

void leaky_relu_counted(const UnitView& v, void* out, double negative_slope, const float* threshold,
                        int64_t* active, int64_t* alive) {
  const auto f = [negative_slope](auto x, auto) {
    using T = decltype(x);
    return act::LeakyRelu<T>{T(scalar_of_t<T>(negative_slope))}.forward(x);
  };
  apply_counted(v, out, nullptr, f, threshold, active, alive);
}

void elu_counted(const UnitView& v, void* out, double alpha, double scale, const float* threshold,
                 int64_t* active, int64_t* alive) {
  const auto f = [alpha, scale](auto x, auto) {
    return act::make_elu<decltype(x)>(alpha, scale).forward(x);
  };
  apply_counted(v, out, nullptr, f, threshold, active, alive);
}

void prelu_counted(const UnitView& v, void* out, const void* weight, const float* threshold,
                   int64_t* active, int64_t* alive) {
  const auto f = [](auto x, auto w) { return act::LeakyRelu<decltype(x)>{w}.forward(x); };
  apply_counted(v, out, weight, f, threshold, active, alive);
}

void prelu_backward_fused(const UnitView& v, const void* grad_output, void* grad_input,
                          const void* slopes, double* grad_weight) {
  AT_DISPATCH_FLOATING_TYPES(v.dtype, "prelu_backward_fused", [&] {
    const PreluBackwardStep<scalar_t> step{static_cast<const scalar_t*>(v.data),
                                           static_cast<const scalar_t*>(grad_output),
                                           static_cast<scalar_t*>(grad_input)};
    const auto* w = static_cast<const scalar_t*>(slopes);
    if (v.inner == 1) {
      prelu_backward_rows(v, step, w, grad_weight);
    } else {
      prelu_backward_planes(v, step, w, grad_weight);
    }
  });
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

}  // namespace

const Loops& isa_loops() {
  static const Loops table{
      leaky_relu,
      leaky_relu_backward,
      prelu,
      prelu_backward_input,
      prelu_backward_weight,
      elu,
      elu_backward,
      count_active,
      leaky_relu_counted,
      prelu_counted,
      elu_counted,
      prelu_backward_fused,
      leaky_relu_masked_loop,
      leaky_relu_backward_masked_loop,
  };
  return table;
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
