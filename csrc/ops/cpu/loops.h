#pragma once
// The CPU inner loops of every op, compiled once per CPU ISA (DEFAULT, AVX2, AVX512) and
// chosen at run time from the CPU that runs them, as ATen chooses its own kernels.
// The op implementations (`*_kernel.cpp`) build the TensorIterator and call through here.

#include <ATen/core/TensorBase.h>
#include <c10/core/ScalarType.h>

#include <cstdint>

#include "ops/unit_view.h"

namespace at {
struct TensorIteratorBase;
}

namespace torch_ext::cpu {

using torch_ext::UnitView;

struct Loops {
  // out = leaky_relu(x); inputs: x.
  void (*leaky_relu)(at::TensorIteratorBase& iter, double negative_slope);
  // grad_input = g * leaky_relu'(s); inputs: g, s (the input, or the result if slope >= 0).
  void (*leaky_relu_backward)(at::TensorIteratorBase& iter, double negative_slope);
  // out = prelu(x, w); inputs: x, w broadcast to x.
  void (*prelu)(at::TensorIteratorBase& iter);
  // grad_input = g * prelu'(x); inputs: g, x, w broadcast to x.
  void (*prelu_backward_input)(at::TensorIteratorBase& iter);
  // per-element weight gradient, x > 0 ? 0 : x * g; inputs: g, x.
  void (*prelu_backward_weight)(at::TensorIteratorBase& iter);
  // out = scale * elu(x, alpha); inputs: x.
  void (*elu)(at::TensorIteratorBase& iter, double alpha, double scale);
  // grad_input; inputs: g, s (the input, or the result when is_result).
  void (*elu_backward)(at::TensorIteratorBase& iter, double alpha, double scale, bool is_result);
  // active[u] += #{z > 0}, alive[u] += #{z > threshold[u]} over the elements of unit u.
  void (*count_active)(const UnitView& z, const float* threshold, int64_t* active, int64_t* alive);
  // The counted forwards: out (laid out as z) = f(z), and z counted as count_active does.
  void (*leaky_relu_counted)(const UnitView& z, void* out, double negative_slope,
                             const float* threshold, int64_t* active, int64_t* alive);
  // weight: one slope per unit, of z's dtype.
  void (*prelu_counted)(const UnitView& z, void* out, const void* weight, const float* threshold,
                        int64_t* active, int64_t* alive);
  void (*elu_counted)(const UnitView& z, void* out, double alpha, double scale,
                      const float* threshold, int64_t* active, int64_t* alive);
  // PReLU backward in one pass, float32/float64: grad_input (laid out as x) and the weight
  // gradient summed per unit into grad_weight (double, zeroed by the caller). grad_output
  // has x's layout; slopes: one per unit, of x's dtype.
  void (*prelu_backward_fused)(const UnitView& x, const void* grad_output, void* grad_input,
                               const void* slopes, double* grad_weight);
  // Leaky ReLU over n elements in memory order, with the 1-bit sign mask (bit i = x_i > 0,
  // LSB first): the forward writes out and mask, the backward reads the mask.
  void (*leaky_relu_masked)(c10::ScalarType dtype, const void* x, void* out, uint8_t* mask,
                            int64_t n, double negative_slope);
  void (*leaky_relu_backward_masked)(c10::ScalarType dtype, const void* grad_output,
                                     const uint8_t* mask, void* grad_input, int64_t n,
                                     double negative_slope);
};

// The loops for the best ISA this library was compiled for and the running CPU supports
// (ATen's choice, so ATEN_CPU_CAPABILITY=default|avx2|avx512 overrides it the same way).
const Loops& loops();

// The ISA whose loops `loops()` returns: "DEFAULT", "AVX2" or "AVX512".
const char* loops_isa();

}  // namespace torch_ext::cpu
