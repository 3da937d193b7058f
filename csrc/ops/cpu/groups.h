#pragma once
// Values in "groups": one Vectorized<scalar_t>, seen as K vectors of the type it is computed
// in (float, or double for double; bfloat16/float16 widen to two float vectors and round
// back once, reduced_float.h). The per-unit loops (counting.h, prelu_backward.h) compute
// and accumulate in groups. Included by the loops compiled per CPU ISA.

#include <ATen/cpu/vec/vec.h>

#include <array>
#include <cstdint>
#include <type_traits>

#include "ops/cpu/reduced_float.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

template <typename scalar_t>
struct Groups {
  using Vec = at::vec::Vectorized<scalar_t>;
  using C = std::conditional_t<std::is_same_v<scalar_t, double>, at::vec::Vectorized<double>,
                               at::vec::Vectorized<float>>;
  using compute_t = typename C::value_type;
  static constexpr int64_t kWidth = Vec::size();
  static constexpr int K = Vec::size() / C::size();
  using Group = std::array<C, K>;

  // m <= kWidth elements; lanes past m are 0.
  static Group load(const scalar_t* p, int64_t m) {
    const Vec v = Vec::loadu(p, m);
    if constexpr (K == 1) {
      return {v};
    } else {
      auto [lo, hi] = at::vec::convert_to_float<scalar_t>(v);
      return {lo, hi};
    }
  }
  // One vector of scalar_t (reduced types rounded once).
  static Vec pack(const Group& g) {
    if constexpr (K == 1) {
      return g[0];
    } else {
      return from_float<scalar_t>(g[0], g[1]);
    }
  }
  static void store(const Group& g, scalar_t* p, int64_t m) { pack(g).store(p, m); }
  // m values of another type (float thresholds), widened or narrowed to compute_t.
  template <typename T>
  static Group load_converted(const T* p, int64_t m) {
    compute_t lanes[kWidth] = {};
    for (int64_t j = 0; j < m; ++j) lanes[j] = static_cast<compute_t>(p[j]);
    Group g;
    for (int k = 0; k < K; ++k) g[k] = C::loadu(lanes + k * C::size());
    return g;
  }
  static Group broadcast(compute_t value) {
    Group g;
    g.fill(C(value));
    return g;
  }
};

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
