#pragma once
// The table of inner loops every backend fills: CPU (ops/cpu/loops.cpp, compiled once per
// ISA) and CUDA (ops/cuda/loops.cu). Each op's host code (ops/<op>.cpp) is written once:
// it checks its arguments and allocates (outputs.h), builds the iterator, sets the device,
// then calls loops_for(op, tensor).<name>(...). A backend fills its table member by member, by
// name; a member it leaves out raises a clear error instead of crashing.

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <cstdint>

#include "activations/elu_family.h"
#include "ops/unit_view.h"

namespace at {
struct TensorIteratorBase;
}  // namespace at

namespace torch_ext {

[[noreturn]] void fail_missing_loop();

// The default of every table member: a loop this backend does not have.
template <typename R, typename... Args>
R missing_loop(Args...) {
  fail_missing_loop();
}

// What the counting loops add to, per unit u. alive_threshold as they read it (float32,
// contiguous): {units}, the half-line rule, or {4, units}, the interval rule (`interval`;
// see ops/alive_rule.h). abs_sum: null, or float64 {units} sums of |out| (counted forwards).
struct UnitStats {
  const float* bounds;
  bool interval;
  int64_t* active;
  int64_t* alive;
  double* abs_sum;
};

struct Loops {
  // --- Elementwise, over a TensorIterator (ops/iterator.h) -------------------------------
  // out = leaky_relu(x); inputs: x.
  void (*leaky_relu)(at::TensorIteratorBase& iter, double negative_slope) = missing_loop;
  // grad_input = g * leaky_relu'(s); inputs: g, s (the input, or the result if slope >= 0).
  void (*leaky_relu_backward)(at::TensorIteratorBase& iter, double negative_slope) = missing_loop;
  // out = prelu(x, w); inputs: x, w broadcast to x.
  void (*prelu)(at::TensorIteratorBase& iter) = missing_loop;
  // out = f(x) for a member f of the ELU family; inputs: x.
  void (*elu)(at::TensorIteratorBase& iter, const act::EluParams& p) = missing_loop;
  // grad_input; inputs: g, s (the input, or the result when is_result).
  void (*elu_backward)(at::TensorIteratorBase& iter, const act::EluParams& p,
                       bool is_result) = missing_loop;

  // --- Per unit, over a UnitView (ops/unit_view.h) ----------------------------------------
  // active[u] += #{z > 0}, alive[u] += #{z alive} over the elements of unit u (UnitStats).
  void (*count_active)(const UnitView& z, const UnitStats& stats) = missing_loop;
  // sums[u] += sum of |h| over the elements of unit u, in double.
  void (*abs_sum)(const UnitView& h, double* sums) = missing_loop;
  // The counted forwards: out (laid out as z) = f(z), and z counted as count_active does;
  // with stats.abs_sum, also abs_sum[u] += sum of |out| (as abs_sum on out gives).
  void (*leaky_relu_counted)(const UnitView& z, void* out, double negative_slope,
                             const UnitStats& stats) = missing_loop;
  // slopes: one per unit, of z's dtype.
  void (*prelu_counted)(const UnitView& z, void* out, const void* slopes,
                        const UnitStats& stats) = missing_loop;
  void (*elu_counted)(const UnitView& z, void* out, const act::EluParams& p,
                      const UnitStats& stats) = missing_loop;
  // PReLU's backward in one pass: writes grad_input (laid out as x, as grad_output is) and
  // returns the weight gradient summed per unit ({units}, in a wider type); slopes: one per
  // unit, of x's dtype. Every floating dtype, on every backend.
  at::Tensor (*prelu_backward_fused)(const UnitView& x, const void* grad_output, void* grad_input,
                                     const at::Tensor& slopes) = missing_loop;

  // --- Leaky ReLU with a 1-bit sign mask, over n elements in memory order ------------------
  // Bit i = x_i > 0, LSB first: the forward writes out and mask, the backward reads the mask.
  void (*leaky_relu_masked)(c10::ScalarType dtype, const void* x, void* out, uint8_t* mask,
                            int64_t n, double negative_slope) = missing_loop;
  void (*leaky_relu_backward_masked)(c10::ScalarType dtype, const void* grad_output,
                                     const uint8_t* mask, void* grad_input, int64_t n,
                                     double negative_slope) = missing_loop;
};

// The loops of `t`'s device type; an error naming `op` for a device torch_ext has no
// kernels for (or whose kernels this build left out).
const Loops& loops_for(const char* op, const at::TensorBase& t);

namespace cpu {
// The loops for the best ISA this library was compiled for and the running CPU supports
// (ATen's choice, so ATEN_CPU_CAPABILITY=default|avx2|avx512 overrides it the same way).
const Loops& loops();
// The ISA whose loops `loops()` returns: "DEFAULT", "AVX2", "AVX512" or "AVX512_BF16".
const char* loops_isa();
}  // namespace cpu

namespace cuda {
const Loops& loops();  // ops/cuda/loops.cu, in builds with CUDA
}  // namespace cuda

}  // namespace torch_ext
