#pragma once
// bfloat16 and float16 vectors from the two float vectors they were computed in, rounded
// once to nearest even: the bits of ATen's at::vec::convert_from_float, on every ISA.
//
// ATen rounds float to bfloat16 with integer arithmetic, 15 instructions per 32 elements
// on AVX-512, which made the bfloat16 Leaky ReLU and PReLU loops compute-bound (slower
// than a copy, and streaming stores made them slower still). CPUs with AVX512-BF16 round
// 32 elements in one instruction, vcvtne2ps2bf16, which differs from ATen's rounding in two
// classes of input only (checked on all 2^32 floats): a subnormal float it flushes to a
// signed zero where ATen rounds it, and a NaN it keeps with its payload where ATen writes
// 0xffff. A vector holding either goes through ATen's rounding; one fpclass per half
// finds them. The loops compiled with -mavx512bf16 (CPU_CAPABILITY AVX512_BF16, chosen at
// run time only on CPUs that have it, ops/cpu/isa.cpp) take this path.

#include <ATen/cpu/vec/vec.h>

#include <type_traits>

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
// fpclass categories: quiet NaN (0x01), subnormal (0x20), signaling NaN (0x80).
constexpr int kRoundedApart = 0x01 | 0x20 | 0x80;
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
  return at::vec::convert_from_float<scalar_t>(lo, hi);
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
