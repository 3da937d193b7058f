// Every float32 through torch_ext's float -> bfloat16 rounding (csrc/ops/cpu/reduced_float.h)
// and through ATen's (at::vec::convert_from_float), compared bit for bit; also vectors that
// mix NaN and subnormal lanes with ordinary ones. A few seconds per ISA. Build and run from
// the repository root, once per ISA the machine has (T: torch's include folder, from
// python -c "import torch, os; print(os.path.dirname(torch.__file__))" plus /include):
//
//   g++ -O3 -std=c++17 -ffp-contract=off -mf16c -mfma -isystem $T -Icsrc -mavx2
//       -DCPU_CAPABILITY=AVX2 -DCPU_CAPABILITY_AVX2 tools/bf16_rounding_check.cpp -o check
//   g++ ... -mavx512f -mavx512bw -mavx512dq -mavx512vl
//       -DCPU_CAPABILITY=AVX512 -DCPU_CAPABILITY_AVX512 ...
//   g++ ... the AVX512 flags and -mavx512bf16, -DCPU_CAPABILITY=AVX512_BF16 (its fallback)
//
// Prints the mismatches (at most 5) and their count; exits 1 if there are any.

#include <ATen/cpu/vec/functional.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "ops/cpu/reduced_float.h"

namespace {

using at::vec::Vectorized;
constexpr int kLanes = 2 * Vectorized<float>::size();

// Compares the two roundings of the kLanes floats with these bits; counts the mismatches.
uint64_t compare(const uint32_t* bits) {
  alignas(64) uint16_t aten[kLanes];
  alignas(64) uint16_t ours[kLanes];
  const auto lo = Vectorized<float>::loadu(bits);
  const auto hi = Vectorized<float>::loadu(bits + kLanes / 2);
  at::vec::convert_from_float<c10::BFloat16>(lo, hi).store(aten);
  torch_ext::cpu::from_float<c10::BFloat16>(lo, hi).store(ours);
  uint64_t bad = 0;
  for (int i = 0; i < kLanes; ++i) {
    if (aten[i] == ours[i]) continue;
    if (bad++ < 5) std::printf("float %08x: ATen %04x, ours %04x\n", bits[i], aten[i], ours[i]);
  }
  return bad;
}

}  // namespace

int main() {
  alignas(64) uint32_t bits[kLanes];
  uint64_t bad = 0;
  for (uint64_t base = 0; base < (uint64_t{1} << 32); base += kLanes) {
    for (int i = 0; i < kLanes; ++i) bits[i] = static_cast<uint32_t>(base + i);
    bad += compare(bits);
  }
  for (uint64_t k = 0; k < (uint64_t{1} << 20); ++k) {  // mixed vectors
    for (int i = 0; i < kLanes; ++i) bits[i] = static_cast<uint32_t>((k * kLanes + i) * 2654435761u);
    bits[k % kLanes] = 0x7fc00001u;        // a NaN with a payload
    bits[(k + 5) % kLanes] = 0x00000123u;  // a subnormal
    bad += compare(bits);
  }
  std::printf("%d lanes: %llu mismatches\n", kLanes, static_cast<unsigned long long>(bad));
  return bad == 0 ? 0 : 1;
}
