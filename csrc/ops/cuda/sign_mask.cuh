#pragma once
// Leaky ReLU with a 1-bit sign mask on CUDA (what its autograd keeps instead of the input):
// bit i = (x_i > 0), LSB first, 8 elements per byte, in memory order, as on the CPU
// (ops/cpu/sign_mask.h). A warp evaluates 32 consecutive elements and packs their signs with
// one ballot into a 32-bit word; the backward reads element i's bit and hands the shared
// formula 1 or 0 as a stand-in for x (its `x > 0` test is all the gradient depends on).

#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdint>

#include "activations/leaky_relu.h"

namespace torch_ext::cuda {

constexpr int kMaskThreads = 256;

inline int64_t mask_blocks(int64_t n) {
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  return std::max<int64_t>(1, std::min<int64_t>((n + kMaskThreads - 1) / kMaskThreads, 16 * sms));
}

template <typename scalar_t>
__global__ void leaky_relu_masked_kernel(const scalar_t* x, scalar_t* y, uint8_t* mask, int64_t n,
                                         at::opmath_type<scalar_t> slope) {
  using T = at::opmath_type<scalar_t>;
  const act::LeakyRelu<T> f{slope};
  const int lane = threadIdx.x % 32;
  const int64_t step = int64_t{gridDim.x} * kMaskThreads;
  // Whole warps iterate together (the ballot needs all 32 lanes); `base` is a multiple of 32.
  for (int64_t base = int64_t{blockIdx.x} * kMaskThreads + threadIdx.x - lane; base < n;
       base += step) {
    const int64_t i = base + lane;
    bool positive = false;
    if (i < n) {
      const T v = static_cast<T>(x[i]);
      positive = v > T(0);
      y[i] = static_cast<scalar_t>(f.forward(v));
    }
    const unsigned bits = __ballot_sync(0xffffffffu, positive);
    if (lane == 0) {
      if (base + 32 <= n) {
        *reinterpret_cast<uint32_t*>(mask + base / 8) = bits;  // mask is 4-byte aligned
      } else {
        for (int64_t b = 0; b * 8 < n - base; ++b) mask[base / 8 + b] = (bits >> (8 * b)) & 0xffu;
      }
    }
  }
}

template <typename scalar_t>
__global__ void leaky_relu_backward_masked_kernel(const scalar_t* g, const uint8_t* mask,
                                                  scalar_t* grad_input, int64_t n,
                                                  at::opmath_type<scalar_t> slope) {
  using T = at::opmath_type<scalar_t>;
  const act::LeakyRelu<T> f{slope};
  const int64_t step = int64_t{gridDim.x} * kMaskThreads;
  for (int64_t i = int64_t{blockIdx.x} * kMaskThreads + threadIdx.x; i < n; i += step) {
    const T sign = (mask[i >> 3] >> (i & 7)) & 1u ? T(1) : T(0);
    grad_input[i] = static_cast<scalar_t>(f.backward(static_cast<T>(g[i]), sign));
  }
}

template <typename scalar_t>
void launch_leaky_relu_masked(const scalar_t* x, scalar_t* y, uint8_t* mask, int64_t n,
                              double slope) {
  leaky_relu_masked_kernel<<<mask_blocks(n), kMaskThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      x, y, mask, n, static_cast<at::opmath_type<scalar_t>>(slope));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_leaky_relu_backward_masked(const scalar_t* g, const uint8_t* mask, scalar_t* grad_input,
                                       int64_t n, double slope) {
  leaky_relu_backward_masked_kernel<<<mask_blocks(n), kMaskThreads, 0,
                                      at::cuda::getCurrentCUDAStream()>>>(
      g, mask, grad_input, n, static_cast<at::opmath_type<scalar_t>>(slope));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace torch_ext::cuda
