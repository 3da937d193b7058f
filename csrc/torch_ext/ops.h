#pragma once
// torch_ext's C++ API: the registered ops, called through the PyTorch dispatcher, so
// autograd, device dispatch and tracing apply exactly as for torch.ops.torch_ext.* in
// Python. Semantics match torch::nn::functional's leaky_relu, prelu, elu, selu and celu.

#include <ATen/core/Tensor.h>
#include <c10/core/SymIntArrayRef.h>

#include <optional>
#include <string>
#include <tuple>

namespace torch_ext {

at::Tensor leaky_relu(const at::Tensor& self, double negative_slope = 0.01);
at::Tensor& leaky_relu_(at::Tensor& self, double negative_slope = 0.01);
// grad_output * leaky_relu'(x), from x or (is_result, negative_slope >= 0) from the result.
at::Tensor leaky_relu_backward(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                               double negative_slope, bool is_result);

// Leaky ReLU that also returns the 1-bit sign mask its backward needs (what autograd keeps
// instead of the input): uint8 {ceil(numel / 8)}, bit i (LSB first) = element i > 0, the
// elements taken in the memory order of the returned result (a dense tensor).
std::tuple<at::Tensor, at::Tensor> leaky_relu_masked(const at::Tensor& self, double negative_slope);
// grad_output * leaky_relu'(x) with x's signs from a sign mask. result_strides: those of the
// result the mask came with (result.sym_strides()), whose memory order the mask's bits
// follow; grad_output may have any layout. grad_input is laid out as that result.
at::Tensor leaky_relu_backward_masked(const at::Tensor& grad_output, const at::Tensor& sign_mask,
                                      double negative_slope, c10::SymIntArrayRef result_strides);

// weight broadcasts along dim 1 (the channel dim); 1 or self.size(1) elements.
at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight);
// (grad_input, grad_weight), grad_weight shaped like weight.
std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output,
                                                  const at::Tensor& self, const at::Tensor& weight);

// save_output: autograd keeps the output rather than the input (less memory when the next
// layer keeps it anyway). The output must then not be modified in place before backward,
// and in float32 the gradient loses precision for x below about -10. Opt-in.
at::Tensor elu(const at::Tensor& self, double alpha = 1.0, bool save_output = false);
at::Tensor& elu_(at::Tensor& self, double alpha = 1.0);
// Backward of the ELU family, f(x) = scale * x above 0, scale * alpha * (exp(input_scale *
// x) - 1) below (ATen's parameters): ELU (alpha, 1, 1), SELU (SELU's alpha and scale, 1),
// CELU (alpha, 1, 1 / alpha). From x, or (is_result, alpha >= 0) from the result.
at::Tensor elu_backward(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                        double alpha, double scale, bool is_result, double input_scale = 1.0);

at::Tensor selu(const at::Tensor& self, bool save_output = false);
at::Tensor& selu_(at::Tensor& self);

// max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); alpha must be nonzero.
at::Tensor celu(const at::Tensor& self, double alpha = 1.0, bool save_output = false);
at::Tensor& celu_(at::Tensor& self, double alpha = 1.0);

// Dead-neuron statistics. For each unit u (index along unit_dim) adds to counts[0, u] the
// number of its elements with z > 0 (active) and to counts[1, u] the number that are alive
// under alive_threshold (float32, contiguous, on z's device), which takes one of two shapes:
//   {units}: a half-line, alive iff z > alive_threshold[u] (the activation's derivative
//            still exceeds the monitor's grad_eps above it: the ReLU family, ELU);
//   {4, units}: rows (lo, hi, band_lo, band_hi), alive iff lo < z < hi and not
//            band_lo <= z <= band_hi (a closed dead band inside the open interval; band_lo >
//            band_hi, e.g. +inf and -inf, means no band): any activation's gradient-alive
//            set (GELU, SiLU, Tanh, ReLU6, ...).
// Compared in the compute type (float; double for float64 z), the bounds widened from
// float32. NaN is neither active nor alive. counts: int64 {2, units}.
void count_active_(const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                   const at::Tensor& alive_threshold);

// sums[u] += the sum of |h| over the elements of unit u (index along unit_dim): ReDo's
// activation scale. h: any floating dtype and layout; sums: float64 {units}, contiguous, on
// h's device. On CPU summed in double in an order fixed by the shape alone: the same bits on
// every thread count and CPU ISA, within (n - 1) * 2^-53 relative of the exact sum of a
// unit's n terms; on CUDA added atomically per block, so the last bits may vary run to run.
void abs_sum_(const at::Tensor& h, at::Tensor& sums, int64_t unit_dim);

// The pre-activation z above which |f'(z)| > grad_eps for `activation` ("relu",
// "leaky_relu" and "prelu" with param the slope, "elu" and "celu" with param alpha,
// "selu"): count_active_'s alive_threshold. Registered as torch_ext::alive_threshold.
double alive_threshold(const std::string& activation, double param, double grad_eps);
// The same, per unit, for learned slopes (PReLU's weight): float32 {units}, on their device.
at::Tensor slopes_alive_threshold(const at::Tensor& slopes, int64_t units, double grad_eps);

// Counted forwards: the activation of `self` and count_active_(self, counts, unit_dim,
// alive_threshold) in one pass over self; with abs_sum (float64 {units}), also
// abs_sum[u] += the sum of |output| over unit u (as abs_sum_ of the output gives), in that
// pass (a layout without a unit view, or a Leaky ReLU recording its gradient, counts and
// sums in passes of their own). Gradients as the plain ops'. What the torch_ext::nn
// modules run while a dead-neuron monitor or stats recorder watches them.
at::Tensor leaky_relu_counted(const at::Tensor& self, double negative_slope, at::Tensor& counts,
                              int64_t unit_dim, const at::Tensor& alive_threshold,
                              const std::optional<at::Tensor>& abs_sum = std::nullopt);
at::Tensor prelu_counted(const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts,
                         int64_t unit_dim, const at::Tensor& alive_threshold,
                         const std::optional<at::Tensor>& abs_sum = std::nullopt);
// A member of the ELU family (parameters as elu_backward's): ELU, SELU and CELU.
at::Tensor elu_counted(const at::Tensor& self, double alpha, double scale, at::Tensor& counts,
                       int64_t unit_dim, const at::Tensor& alive_threshold,
                       bool save_output = false, double input_scale = 1.0,
                       const std::optional<at::Tensor>& abs_sum = std::nullopt);

}  // namespace torch_ext
