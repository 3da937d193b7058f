#pragma once
// The dead-neuron counts on CPU: count_active_ and the counted forwards, which compute the
// activation of what they count while it is in cache, so z is read from memory once. On
// the per-unit skeleton of unit_loops.h. Included by loops.cpp only (per CPU ISA).

#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "ops/cpu/elementwise.h"
#include "ops/cpu/unit_loops.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

// Counters are int32 over blocks of at most kBlock elements, then widened: no overflow.
constexpr int64_t kBlock = int64_t{1} << 30;

// Compares in the compute type (double for double), as the vector body does: a float64
// value such as 1e-300 counts the same wherever it sits.
template <typename scalar_t>
void count_span(const scalar_t* z, int64_t n, float threshold, int64_t& active, int64_t& alive) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t thr = static_cast<opmath_t>(threshold);
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t stop = std::min(n, start + kBlock);
    int32_t a = 0, l = 0;
    for (int64_t i = start; i < stop; ++i) {
      const opmath_t x = static_cast<opmath_t>(z[i]);
      a += x > opmath_t(0);
      l += x > thr;
    }
    active += a;
    alive += l;
  }
}

struct Tally {
  explicit Tally(int64_t units) : active(units, 0), alive(units, 0) {}
  std::vector<int64_t> active, alive;

  void add_to(int64_t* total_active, int64_t* total_alive) const {
    for (size_t u = 0; u < active.size(); ++u) {
      total_active[u] += active[u];
      total_alive[u] += alive[u];
    }
  }
};

// --- Counting, alone or fused with an activation --------------------------------------------
// Values are handled in "groups": one Vectorized<scalar_t>, seen as K vectors of the compute
// type C (float, or double for double; bfloat16/float16 widen to two float vectors).
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
  static void store(const Group& g, scalar_t* p, int64_t m) {
    if constexpr (K == 1) {
      g[0].store(p, m);
    } else {
      at::vec::convert_from_float<scalar_t>(g[0], g[1]).store(p, m);
    }
  }
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

// What a counting loop writes besides the counts: nothing (count_active_), or out = f(z) with
// f(x, p) taking the unit's parameter p (PReLU's slope; ignored by the others).
struct CountOnly {
  static constexpr bool kWrites = false;
};

template <typename scalar_t, typename F>
struct Activation {
  static constexpr bool kWrites = true;
  scalar_t* out;
  const scalar_t* unit_param;  // one per unit, or nullptr: p = 0
  F f;
};

template <typename Map, typename scalar_t>
typename Groups<scalar_t>::Group unit_params(const Map& map, int64_t u, int64_t m) {
  using G = Groups<scalar_t>;
  if constexpr (Map::kWrites) {
    if (map.unit_param != nullptr) return G::load(map.unit_param + u, m);
  }
  return G::broadcast(0);
}

// Unit u's parameter broadcast to a group (0 when the map has none).
template <typename Map, typename scalar_t>
typename Groups<scalar_t>::Group unit_param(const Map& map, int64_t u) {
  using G = Groups<scalar_t>;
  if constexpr (Map::kWrites) {
    if (map.unit_param != nullptr) {
      return G::broadcast(static_cast<typename G::compute_t>(map.unit_param[u]));
    }
  }
  return G::broadcast(0);
}

// out[offset, offset + m) = f(x, param) when the map writes; nothing otherwise.
template <typename scalar_t, typename Map>
void write_mapped(const Map& map, const typename Groups<scalar_t>::Group& x,
                  const typename Groups<scalar_t>::Group& param, int64_t offset, int64_t m) {
  if constexpr (Map::kWrites) {
    typename Groups<scalar_t>::Group y;
    for (int k = 0; k < Groups<scalar_t>::K; ++k) y[k] = map.f(x[k], param[k]);
    Groups<scalar_t>::store(y, map.out + offset, m);
  }
}

// Adds each lane's count (held as a float/double lane value, exact below 2^24) to per-unit
// int64 totals.
template <typename scalar_t>
void add_lane_counts(const typename Groups<scalar_t>::Group& g, int64_t m, int64_t* total) {
  using G = Groups<scalar_t>;
  typename G::compute_t lanes[G::kWidth];
  for (int k = 0; k < G::K; ++k) g[k].store(lanes + k * G::C::size());
  for (int64_t j = 0; j < m; ++j) total[j] += static_cast<int64_t>(lanes[j]);
}

template <typename scalar_t>
int64_t lane_total(const typename Groups<scalar_t>::Group& g) {
  int64_t total[Groups<scalar_t>::kWidth] = {};
  add_lane_counts<scalar_t>(g, Groups<scalar_t>::kWidth, total);
  int64_t sum = 0;
  for (auto value : total) sum += value;
  return sum;
}

// acc + (x > threshold ? 1 : 0) per lane: the counting step. AVX512 adds under the
// comparison's mask register: 2 instructions where the generic form takes 4 (compare,
// mask to vector, and, add), which cost ELU/SELU a third of their time when fused.
template <typename C>
inline C count_greater(const C& acc, const C& x, const C& threshold) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<C, at::vec::Vectorized<float>>) {
    return _mm512_mask_add_ps(acc, _mm512_cmp_ps_mask(x, threshold, _CMP_GT_OQ), acc,
                              _mm512_set1_ps(1.f));
  } else if constexpr (std::is_same_v<C, at::vec::Vectorized<double>>) {
    return _mm512_mask_add_pd(acc, _mm512_cmp_pd_mask(x, threshold, _CMP_GT_OQ), acc,
                              _mm512_set1_pd(1.0));
  }
#endif
  return acc + ((x > threshold) & C(1));
}

// Lane counts are held as float lanes, exact below 2^24: each lane takes at most this many
// additions before it is flushed to the int64 totals.
constexpr int64_t kLaneAdds = int64_t{1} << 22;
// Elements mapped, then counted, at a time: the map may call out of line (ELU's exp), which
// would spill the counts held in registers; a span this size is still in L1 when counted.
constexpr int64_t kSpan = 1024;
// Rows walked together: each group's counts stay in registers over a tile's rows and go
// through the per-chunk array in L1 once per tile.
constexpr int64_t kTileRows = 4;

// out[offset, offset + n) = f(x[0, n)) when the map writes. Group j of the span takes the parameter
// params[j * param_step]: step 1 walks a row's units, step 0 keeps one plane's unit. Map
// fields are copied to locals: stores through `out` would otherwise reload them.
template <typename scalar_t, typename Map>
void map_span(const Map& map, const scalar_t* x, int64_t n,
              const typename Groups<scalar_t>::Group* params, int64_t param_step, int64_t offset) {
  if constexpr (Map::kWrites) {
    using G = Groups<scalar_t>;
    const auto f = map.f;
    scalar_t* out = map.out + offset;
    int64_t i = 0, j = 0;
    for (; i + G::kWidth <= n; i += G::kWidth, j += param_step) {
      const auto v = G::load(x + i, G::kWidth);
      typename G::Group y;
      for (int k = 0; k < G::K; ++k) y[k] = f(v[k], params[j][k]);
      G::store(y, out + i, G::kWidth);
    }
    if (i < n) write_mapped<scalar_t>(map, G::load(x + i, n - i), params[j], offset + i, n - i);
  }
}

// Units innermost: a chunk's rows are walked in tiles of kTileRows. Each row of a tile is
// mapped, then the tile is counted group by group (in L1), each group's counts held in
// registers over the tile's rows.
template <typename scalar_t, typename Map>
void count_rows(const UnitView& v, const Map& map, const float* threshold, int64_t* active,
                int64_t* alive) {
  using G = Groups<scalar_t>;
  using Group = typename G::Group;
  const auto* z = static_cast<const scalar_t*>(v.data);
  const int64_t units = v.units, stride = v.outer_stride;
  const int64_t groups = (units + G::kWidth - 1) / G::kWidth;
  auto width = [units](int64_t g) { return std::min(G::kWidth, units - g * G::kWidth); };
  std::vector<Group> params(groups), thresholds(groups);
  for (int64_t g = 0; g < groups; ++g) {
    params[g] = unit_params<Map, scalar_t>(map, g * G::kWidth, width(g));
    // Lanes past the last unit get threshold 0 and load z = 0: they count nothing.
    thresholds[g] = G::load_converted(threshold + g * G::kWidth, width(g));
  }
  const auto body = [&](Tally& tally, int64_t begin, int64_t end) {
    const typename G::C zero(0);
    std::vector<Group> a(groups, G::broadcast(0)), l(groups, G::broadcast(0));
    auto flush = [&] {
      for (int64_t g = 0; g < groups; ++g) {
        add_lane_counts<scalar_t>(a[g], width(g), tally.active.data() + g * G::kWidth);
        add_lane_counts<scalar_t>(l[g], width(g), tally.alive.data() + g * G::kWidth);
      }
      std::fill(a.begin(), a.end(), G::broadcast(0));
      std::fill(l.begin(), l.end(), G::broadcast(0));
    };
    int64_t adds = 0;
    for (int64_t o = begin; o < end; o += kTileRows) {
      const int64_t rows = std::min(kTileRows, end - o);
      const scalar_t* tile = z + o * stride;
      for (int64_t r = 0; r < rows; ++r) {  // map_span writes only when the map does
        map_span<scalar_t>(map, tile + r * stride, units, params.data(), 1, (o + r) * stride);
      }
      for (int64_t g = 0; g < groups; ++g) {
        Group ag = a[g], lg = l[g];
        const Group thr = thresholds[g];
        const int64_t u = g * G::kWidth, m = width(g);
        for (int64_t r = 0; r < rows; ++r) {
          const auto x = G::load(tile + r * stride + u, m);
          for (int k = 0; k < G::K; ++k) {
            ag[k] = count_greater(ag[k], x[k], zero);
            lg[k] = count_greater(lg[k], x[k], thr[k]);
          }
        }
        a[g] = ag;
        l[g] = lg;
      }
      if ((adds += rows) >= kLaneAdds) {
        flush();
        adds = 0;
      }
    }
    flush();
  };
  parallel_units<Tally>(v.outer, at::internal::GRAIN_SIZE / units, units, body,
                        [&](const Tally& tally) { tally.add_to(active, alive); });
}

// Lane counters of one unit: counts of z > 0 and z > threshold over whole groups, in
// kChains independent accumulators so that the additions' latency overlaps.
template <typename scalar_t>
struct LaneCounts {
  using G = Groups<scalar_t>;
  static constexpr int kChains = 4;
  std::array<typename G::Group, kChains> a, l;

  LaneCounts() {
    a.fill(G::broadcast(0));
    l.fill(G::broadcast(0));
  }
  // The full groups of z[begin, end) (end - begin a multiple of kWidth).
  void add(const scalar_t* z, int64_t begin, int64_t end, const typename G::Group& thr) {
    const typename G::C zero(0);
    int64_t i = begin;
    for (; i + kChains * G::kWidth <= end; i += kChains * G::kWidth) {
      for (int c = 0; c < kChains; ++c)
        add_group(G::load(z + i + c * G::kWidth, G::kWidth), c, zero, thr);
    }
    for (; i < end; i += G::kWidth) add_group(G::load(z + i, G::kWidth), 0, zero, thr);
  }
  int64_t active() const { return total(a); }
  int64_t alive() const { return total(l); }

 private:
  void add_group(const typename G::Group& x, int c, const typename G::C& zero,
                 const typename G::Group& thr) {
    for (int k = 0; k < G::K; ++k) {
      a[c][k] = count_greater(a[c][k], x[k], zero);
      l[c][k] = count_greater(l[c][k], x[k], thr[k]);
    }
  }
  static int64_t total(const std::array<typename G::Group, kChains>& chains) {
    int64_t sum = 0;
    for (const auto& chain : chains) sum += lane_total<scalar_t>(chain);
    return sum;
  }
};

// Each (outer, unit) pair owns a contiguous plane of `inner` elements: its full groups are
// mapped and counted with the counts in registers (a loop with no branch, flushed every
// kLaneAdds groups); the tail (fewer than kWidth elements) is mapped masked and counted by
// count_span.
template <typename scalar_t, typename Map>
void count_planes(const UnitView& v, const Map& map, const float* threshold, int64_t* active,
                  int64_t* alive) {
  using G = Groups<scalar_t>;
  const auto* z = static_cast<const scalar_t*>(v.data);
  const int64_t full = v.inner / G::kWidth * G::kWidth;
  const auto body = [&](Tally& tally, int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t u = p % v.units;
      const int64_t plane = (p / v.units) * v.outer_stride + u * v.unit_stride;
      const auto thr = G::broadcast(static_cast<typename G::compute_t>(threshold[u]));
      const auto param = unit_param<Map, scalar_t>(map, u);
      for (int64_t block = 0; block < full; block += kLaneAdds * G::kWidth) {
        const int64_t stop = std::min(full, block + kLaneAdds * G::kWidth);
        LaneCounts<scalar_t> counts;
        for (int64_t sub = plane + block; sub < plane + stop; sub += kSpan) {
          const int64_t sub_stop = std::min(plane + stop, sub + kSpan);
          map_span<scalar_t>(map, z + sub, sub_stop - sub, &param, 0, sub);
          counts.add(z, sub, sub_stop, thr);
        }
        tally.active[u] += counts.active();
        tally.alive[u] += counts.alive();
      }
      if (full < v.inner) {
        const int64_t m = v.inner - full;
        write_mapped<scalar_t>(map, G::load(z + plane + full, m), param, plane + full, m);
        count_span(z + plane + full, m, threshold[u], tally.active[u], tally.alive[u]);
      }
    }
  };
  parallel_units<Tally>(v.outer * v.units, at::internal::GRAIN_SIZE / v.inner, v.units, body,
                        [&](const Tally& tally) { tally.add_to(active, alive); });
}

template <typename scalar_t, typename Map>
void count_units(const UnitView& v, const Map& map, const float* threshold, int64_t* active,
                 int64_t* alive) {
  if (v.inner == 1) {
    count_rows<scalar_t>(v, map, threshold, active, alive);
  } else {
    count_planes<scalar_t>(v, map, threshold, active, alive);
  }
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
