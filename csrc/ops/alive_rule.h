#pragma once
// count_active_'s alive rule for one element, written once for the CPU loops' scalar tail
// and the CUDA kernels (the CPU vector code applies the same comparisons lane by lane, in
// ops/cpu/counting.h). A unit's bounds are read from alive_threshold (float32, contiguous)
// and widened to the compute type T (float; double for float64 inputs):
//   kRows 1, alive_threshold {units}:    alive iff x > threshold[u] (a half-line: the ReLU
//                                        family, one comparison per element);
//   kRows 4, alive_threshold {4, units}: rows (lo, hi, band_lo, band_hi); alive iff
//                                        lo < x < hi and not band_lo <= x <= band_hi (an
//                                        open interval less a closed dead band: GELU, SiLU,
//                                        Tanh, ReLU6, ...; band_lo > band_hi: no band).
// NaN is never alive: every comparison with it is false, and it is never inside (lo, hi).

#include <c10/macros/Macros.h>

#include <cstdint>

namespace torch_ext {

template <typename T, int kRows>
struct AliveRule {
  static_assert(kRows == 1 || kRows == 4, "alive_threshold has 1 row (half-line) or 4");
  T bound[kRows];

  // Unit u's bounds: row r of alive_threshold at bounds[r * units + u].
  C10_HOST_DEVICE static AliveRule of_unit(const float* bounds, int64_t units, int64_t u) {
    AliveRule rule;
    for (int r = 0; r < kRows; ++r) rule.bound[r] = static_cast<T>(bounds[r * units + u]);
    return rule;
  }

  C10_HOST_DEVICE bool alive(T x) const {
    if constexpr (kRows == 1) {
      return x > bound[0];
    } else {
      // The band test negated as a whole, as defined (a NaN bound makes no band).
      return bound[0] < x && x < bound[1] && !(bound[2] <= x && x <= bound[3]);
    }
  }
};

}  // namespace torch_ext
