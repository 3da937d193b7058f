#pragma once
// bfloat16 and float16 vectors from the two float vectors they were computed in, rounded
// once to nearest even: the bits of ATen's at::vec::convert_from_float, on every ISA.
//
// ATen rounds float to bfloat16 with integer arithmetic, 16 instructions per 32 elements
// on AVX-512, which made the bfloat16 Leaky ReLU and PReLU loops compute-bound (slower
// than a copy, and streaming stores made them slower still). CPUs with AVX512-BF16 round
// 32 elements in one instruction, vcvtne2ps2bf16, which differs from ATen's rounding in two
// classes of input only (checked on all 2^32 floats): a subnormal float it flushes to a
// signed zero where ATen rounds it, and a NaN it keeps with its payload where ATen writes
// 0xffff. A vector holding either goes through the integer rounding; one fpclass per half
// finds them. The loops compiled with -mavx512bf16 (CPU_CAPABILITY AVX512_BF16, chosen at
// run time only on CPUs that have it, ops/cpu/isa.cpp) take this path.

#include <ATen/cpu/vec/vec.h>

#include <type_traits>
#include <tuple>

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
// fpclass categories: quiet NaN (0x01), subnormal (0x20), signaling NaN (0x80).
constexpr int kRoundedApart = 0x01 | 0x20 | 0x80;
#endif

// ATen's integer rounding, (x + 0x7fff + lsb) >> 16 with lsb = bit 16 of x and a NaN
// rounded to 0xffff, in fewer instructions (same bits on all 2^32 floats): the NaN lanes
// are set to all ones rather than blended in after the shift (vpblendvb is 2-3 uops on
// Intel cores), and on AVX-512 one vpermt2w picks the upper halves where ATen shifts both
// vectors, packs and permutes: 13 instructions per 32 elements instead of 16.
#if defined(CPU_CAPABILITY_AVX512)
inline __m512i rounded_into_upper_half(__m512 f) {
  const __m512i x = _mm512_castps_si512(f);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
  const __m512i t = _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)), lsb);
  return _mm512_mask_mov_epi32(t, _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q), _mm512_set1_epi32(-1));
}

inline __m512i bfloat16_of(__m512 lo, __m512 hi) {
  // 16-bit word i of the result is word 2i + 1 of the pair (lo's words, then hi's).
  const __m512i odd_words =
      _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,  //
                       31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  return _mm512_permutex2var_epi16(rounded_into_upper_half(lo), odd_words,
                                   rounded_into_upper_half(hi));
}
#elif defined(CPU_CAPABILITY_AVX2)
inline __m256i rounded_into_upper_half(__m256 f) {
  const __m256i x = _mm256_castps_si256(f);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i t = _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), lsb);
  return _mm256_or_si256(t, _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
}

inline __m256i bfloat16_of(__m256 lo, __m256 hi) {
  const __m256i packed = _mm256_packus_epi32(_mm256_srli_epi32(rounded_into_upper_half(lo), 16),
                                             _mm256_srli_epi32(rounded_into_upper_half(hi), 16));
  return _mm256_permute4x64_epi64(packed, 0xd8);  // the pack interleaves 128-bit lanes
}
#endif

template <typename scalar_t>
at::vec::Vectorized<scalar_t> from_float(const at::vec::Vectorized<float>& lo,
                                         const at::vec::Vectorized<float>& hi) {
#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    const __mmask16 apart =
        _mm512_fpclass_ps_mask(lo, kRoundedApart) | _mm512_fpclass_ps_mask(hi, kRoundedApart);
    if (__builtin_expect(apart == 0, 1)) {
      // __m512bh and __m512i are both 512-bit vector types: a cast, no instruction.
      return at::vec::Vectorized<scalar_t>((__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
  }
#endif
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    return at::vec::Vectorized<scalar_t>(bfloat16_of(lo, hi));
  }
#endif
  return at::vec::convert_from_float<scalar_t>(lo, hi);
}

// For elementwise loops only: a reduced vector as two float vectors in any order of lanes,
// and back, each lane where it came from. On AVX2 and AVX-512, bfloat16's even words are
// the first float vector (shifted up) and its odd words the second (the even ones masked
// off): 2 instructions where ATen's in-order widening takes 5. The rounded floats go back
// by one shift and one word blend (on AVX2, where the pack and permute took 4), or, with
// AVX512-BF16, by from_float and one word permute. This counts in loops (bfloat16 Leaky
// ReLU, PReLU) bound by their instruction count. Float16 and DEFAULT use
// at::vec::convert_to_float and from_float. The same bits either way: the widening is
// exact and each lane is rounded alone.
template <typename scalar_t>
std::tuple<at::vec::Vectorized<float>, at::vec::Vectorized<float>> elementwise_halves(
    const at::vec::Vectorized<scalar_t>& v) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    const __m512i words = v;
    return {_mm512_castsi512_ps(_mm512_slli_epi32(words, 16)),
            _mm512_castsi512_ps(_mm512_and_si512(words, _mm512_set1_epi32(-65536)))};
  }
#elif defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    const __m256i words = v;
    return {_mm256_castsi256_ps(_mm256_slli_epi32(words, 16)),
            _mm256_castsi256_ps(_mm256_and_si256(words, _mm256_set1_epi32(-65536)))};
  }
#endif
  return at::vec::convert_to_float<scalar_t>(v);
}

template <typename scalar_t>
at::vec::Vectorized<scalar_t> from_elementwise_halves(const at::vec::Vectorized<float>& first,
                                                      const at::vec::Vectorized<float>& second) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
#if defined(__AVX512BF16__)
    // from_float's words: 0-15 the first vector's, 16-31 the second's; interleaved back.
    const __m512i interleave =
        _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,  //
                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return at::vec::Vectorized<scalar_t>(
        _mm512_permutexvar_epi16(interleave, from_float<scalar_t>(first, second)));
#else
    const __m512i even = _mm512_srli_epi32(rounded_into_upper_half(first), 16);
    return at::vec::Vectorized<scalar_t>(
        _mm512_mask_blend_epi16(0xaaaaaaaa, even, rounded_into_upper_half(second)));
#endif
  }
#elif defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    const __m256i even = _mm256_srli_epi32(rounded_into_upper_half(first), 16);
    return at::vec::Vectorized<scalar_t>(
        _mm256_blend_epi16(even, rounded_into_upper_half(second), 0xaa));
  }
#endif
  return from_float<scalar_t>(first, second);
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
