#pragma once
// Leaky ReLU with a 1-bit sign mask (what its autograd keeps instead of the input): the
// forward also packs bit i = (x_i > 0), LSB first, 8 elements per byte, in memory order;
// the backward reads the gradient's sign from those bits. One pass each, vectorized:
// AVX512 and AVX2 turn a float comparison into bits (and back) with one instruction; the
// DEFAULT build goes through a small lane buffer. Outputs past the last-level cache are
// streamed (streaming.h). Included by loops.cpp only (per ISA).

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif

#include "activations/leaky_relu.h"
#include "ops/cpu/reduced_float.h"
#include "ops/cpu/streaming.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

using FloatVec = at::vec::Vectorized<float>;
constexpr int64_t kFloatLanes = FloatVec::size();
static_assert(kFloatLanes % 8 == 0, "whole bytes of mask per float vector");

// Bit j set where lane j of x is > 0 (NaN: not set, as x > 0 is false).
inline uint32_t positive_bits(const FloatVec& x) {
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_cmp_ps_mask(__m512(x), _mm512_setzero_ps(), _CMP_GT_OQ);
#elif defined(CPU_CAPABILITY_AVX2)
  return _mm256_movemask_ps(_mm256_cmp_ps(__m256(x), _mm256_setzero_ps(), _CMP_GT_OQ));
#else
  float lanes[FloatVec::size()];
  x.store(lanes);
  uint32_t bits = 0;
  for (int j = 0; j < FloatVec::size(); ++j) bits |= uint32_t(lanes[j] > 0.f) << j;
  return bits;
#endif
}

#if defined(CPU_CAPABILITY_AVX512)
// 1.0 in lane j where bits has the bit of weights' lane j set, 0.0 elsewhere.
inline FloatVec ones_where(uint32_t bits, __m512i weights) {
  const __mmask16 set = _mm512_test_epi32_mask(_mm512_set1_epi32(static_cast<int>(bits)), weights);
  return _mm512_maskz_mov_ps(set, _mm512_set1_ps(1.f));
}
#elif defined(CPU_CAPABILITY_AVX2)
inline FloatVec ones_where(uint32_t bits, __m256i weights) {
  const __m256i set = _mm256_cmpeq_epi32(
      _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), weights), weights);
  return _mm256_and_ps(_mm256_castsi256_ps(set), _mm256_set1_ps(1.f));
}
#endif

// 1.0 in the lanes whose bit is set, 0.0 elsewhere: a stand-in for x with x's sign as far
// as the activation's `x > 0` test goes, so the backward formula stays the shared one.
inline FloatVec sign_from_bits(uint32_t bits) {
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(bits), _mm512_set1_ps(1.f));
#elif defined(CPU_CAPABILITY_AVX2)
  return ones_where(bits, _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128));
#else
  float lanes[FloatVec::size()];
  for (int j = 0; j < FloatVec::size(); ++j) lanes[j] = (bits >> j) & 1u ? 1.f : 0.f;
  return FloatVec::loadu(lanes);
#endif
}

// sign_from_bits of a reduced vector's bits, for its two float halves as
// elementwise_halves splits them (reduced_float.h): on AVX2 and AVX-512, bfloat16's even
// elements, then its odd ones; else its first half, then its second.
template <typename scalar_t>
std::pair<FloatVec, FloatVec> sign_halves_from_bits(uint32_t bits) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    const __m512i even =
        _mm512_setr_epi32(1 << 0, 1 << 2, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 12, 1 << 14,
                          1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, 1 << 30);
    return {ones_where(bits, even), ones_where(bits, _mm512_slli_epi32(even, 1))};
  }
#elif defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    const __m256i even = _mm256_setr_epi32(1, 4, 16, 64, 256, 1024, 4096, 16384);
    return {ones_where(bits, even), ones_where(bits, _mm256_slli_epi32(even, 1))};
  }
#endif
  return {sign_from_bits(bits), sign_from_bits(bits >> kFloatLanes)};
}

inline void store_bits(uint8_t* mask, uint32_t bits, int64_t bytes) {
  for (int64_t b = 0; b < bytes; ++b) mask[b] = static_cast<uint8_t>(bits >> (8 * b));
}

inline uint32_t load_bits(const uint8_t* mask, int64_t bytes) {
  uint32_t bits = 0;
  for (int64_t b = 0; b < bytes; ++b) bits |= uint32_t(mask[b]) << (8 * b);
  return bits;
}

// Runs `body(offset, count)` over [0, n) in parallel chunks that start on whole mask bytes.
template <typename Body>
void for_each_byte_chunk(int64_t n, const Body& body) {
  const int64_t bytes = (n + 7) / 8;
  at::parallel_for(0, bytes, at::internal::GRAIN_SIZE / 8, [&](int64_t begin, int64_t end) {
    body(begin * 8, std::min(n, end * 8) - begin * 8);
  });
}

// float64: plain loops (the mask is what matters there, not the speed).
inline void leaky_relu_masked_double(const double* x, double* y, uint8_t* mask, int64_t n,
                                     double slope) {
  const act::LeakyRelu<double> f{slope};
  for_each_byte_chunk(n, [&](int64_t start, int64_t count) {
    for (int64_t i = start; i < start + count; ++i) {
      y[i] = f.forward(x[i]);
      if (i % 8 == 0) mask[i / 8] = 0;
      mask[i / 8] |= static_cast<uint8_t>((x[i] > 0) << (i % 8));
    }
  });
}

inline void leaky_relu_backward_masked_double(const double* g, const uint8_t* mask, double* out,
                                              int64_t n, double slope) {
  const act::LeakyRelu<double> f{slope};
  for_each_byte_chunk(n, [&](int64_t start, int64_t count) {
    for (int64_t i = start; i < start + count; ++i) {
      out[i] = f.backward(g[i], (mask[i / 8] >> (i % 8)) & 1 ? 1.0 : 0.0);
    }
  });
}

// Runs vector(i, m, streamed) over a chunk of `count` output elements at `out`, i stepping by
// whole vectors of m elements: with `stream`, the elements before the first aligned one come
// first as a partial vector (a whole number of mask bytes: else nothing streams) and the
// whole vectors after it are streamed (streaming.h); the last partial one never is.
template <typename scalar_t, typename Vector>
void for_each_mask_vector(const scalar_t* out, int64_t count, bool stream, const Vector& vector) {
  constexpr int64_t kWidth = at::vec::Vectorized<scalar_t>::size();
  const int64_t head = stream ? elements_before_alignment(out, count, 8) : -1;
  int64_t i = 0;
  if (head > 0) {
    vector(int64_t{0}, head, false);
    i = head;
  }
  for (; i < count; i += kWidth) {
    const int64_t m = std::min<int64_t>(kWidth, count - i);
    vector(i, m, head >= 0 && m == kWidth);
  }
}

// y = leaky_relu(x) and the sign mask, over n contiguous elements (float, bfloat16, half).
template <typename scalar_t>
void leaky_relu_masked(const scalar_t* x, scalar_t* y, uint8_t* mask, int64_t n, double slope) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const act::LeakyRelu<FloatVec> f{FloatVec(static_cast<float>(slope))};
  const bool stream = streams(n * static_cast<int64_t>(sizeof(scalar_t)));
  for_each_byte_chunk(n, [&](int64_t start, int64_t count) {
    const scalar_t* in = x + start;
    scalar_t* out = y + start;
    uint8_t* bits = mask + start / 8;
    for_each_mask_vector(out, count, stream, [&](int64_t i, int64_t m, bool streamed) {
      const Vec xv = Vec::loadu(in + i, m);  // lanes past m load as 0: no bit set
      if constexpr (std::is_same_v<scalar_t, float>) {
        store_vector(f.forward(xv), out + i, m, streamed);
        store_bits(bits + i / 8, positive_bits(xv), (m + 7) / 8);
      } else {
        auto [x0, x1] = at::vec::convert_to_float<scalar_t>(xv);
        store_vector(from_float<scalar_t>(f.forward(x0), f.forward(x1)), out + i, m, streamed);
        const uint32_t both = positive_bits(x0) | (positive_bits(x1) << kFloatLanes);
        store_bits(bits + i / 8, both, (m + 7) / 8);
      }
    });
    if (stream) stream_fence();
  });
}

// grad_input = grad * leaky_relu'(x) with x's sign read from the mask.
template <typename scalar_t>
void leaky_relu_backward_masked(const scalar_t* g, const uint8_t* mask, scalar_t* out, int64_t n,
                                double slope) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const act::LeakyRelu<FloatVec> f{FloatVec(static_cast<float>(slope))};
  const bool stream = streams(n * static_cast<int64_t>(sizeof(scalar_t)));
  for_each_byte_chunk(n, [&](int64_t start, int64_t count) {
    const scalar_t* grad = g + start;
    scalar_t* result = out + start;
    const uint8_t* bits = mask + start / 8;
    for_each_mask_vector(result, count, stream, [&](int64_t i, int64_t m, bool streamed) {
      const Vec gv = Vec::loadu(grad + i, m);
      const uint32_t signs = load_bits(bits + i / 8, (m + 7) / 8);
      if constexpr (std::is_same_v<scalar_t, float>) {
        store_vector(f.backward(gv, sign_from_bits(signs)), result + i, m, streamed);
      } else {
        const auto [g0, g1] = elementwise_halves<scalar_t>(gv);
        const auto [s0, s1] = sign_halves_from_bits<scalar_t>(signs);
        store_vector(from_elementwise_halves<scalar_t>(f.backward(g0, s0), f.backward(g1, s1)),
                     result + i, m, streamed);
      }
    });
    if (stream) stream_fence();
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
