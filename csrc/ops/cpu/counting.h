#pragma once
// The dead-neuron statistics on CPU: count_active_ (under either alive rule of
// ops/alive_rule.h), abs_sum_, and the counted forwards, which compute the activation of
// what they count while it is in cache, so z is read from memory once (and, asked for its
// sums of |out|, out is read back while still in L1). One per-unit pass (per_unit_pass) on
// the skeleton of unit_loops.h serves them all. Included by counting_loops.cpp only (per
// CPU ISA).

#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/macros/Macros.h>

#include <algorithm>
#include <array>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ops/alive_rule.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/groups.h"
#include "ops/cpu/unit_loops.h"
#include "ops/loops.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

// Counters are int32 over blocks of at most kBlock elements, then widened: no overflow.
constexpr int64_t kBlock = int64_t{1} << 30;

// Compares in the compute type (double for double), as the vector body does: a float64
// value such as 1e-300 counts the same wherever it sits.
template <typename scalar_t, int kRows>
void count_span(const scalar_t* z, int64_t n,
                const AliveRule<at::opmath_type<scalar_t>, kRows>& rule, int64_t& active,
                int64_t& alive) {
  using opmath_t = at::opmath_type<scalar_t>;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t stop = std::min(n, start + kBlock);
    int32_t a = 0, l = 0;
    for (int64_t i = start; i < stop; ++i) {
      const opmath_t x = static_cast<opmath_t>(z[i]);
      a += x > opmath_t(0);
      l += rule.alive(x);
    }
    active += a;
    alive += l;
  }
}

// One chunk's per-unit totals: the counts where the pass counts, the sums of |y| where it
// sums (each empty otherwise, so a pass allocates nothing for what it does not compute).
struct Tally {
  Tally(int64_t units, bool counts, bool sums)
      : active(counts ? units : 0, 0), alive(counts ? units : 0, 0), abs(sums ? units : 0, 0.0) {}
  std::vector<int64_t> active, alive;
  std::vector<double> abs;

  void add_to(const UnitStats& stats) const {
    for (size_t u = 0; u < active.size(); ++u) {
      stats.active[u] += active[u];
      stats.alive[u] += alive[u];
    }
    for (size_t u = 0; u < abs.size(); ++u) stats.abs_sum[u] += abs[u];
  }
};

// --- Counting, alone or fused with an activation --------------------------------------------
// What a per-unit pass writes besides its statistics: nothing (count_active_, abs_sum_), or
// out = f(z) with f(x, p) taking the unit's parameter p (PReLU's slope; ignored by the
// others).
struct WritesNothing {
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

// acc + 1 in the lanes where lo < x < hi and not band_lo <= x <= band_hi: the interval
// rule's counting step (ops/alive_rule.h), four comparisons; on AVX512 combined in mask
// registers and added under the mask, as count_greater does.
template <typename C>
inline C count_in_interval(const C& acc, const C& x, const C& lo, const C& hi, const C& band_lo,
                           const C& band_hi) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<C, at::vec::Vectorized<float>>) {
    const __mmask16 inside =
        _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(x, lo, _CMP_GT_OQ), x, hi, _CMP_LT_OQ);
    const __mmask16 band =
        _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(x, band_lo, _CMP_GE_OQ), x, band_hi, _CMP_LE_OQ);
    return _mm512_mask_add_ps(acc, static_cast<__mmask16>(inside & ~band), acc,
                              _mm512_set1_ps(1.f));
  } else if constexpr (std::is_same_v<C, at::vec::Vectorized<double>>) {
    const __mmask8 inside =
        _mm512_mask_cmp_pd_mask(_mm512_cmp_pd_mask(x, lo, _CMP_GT_OQ), x, hi, _CMP_LT_OQ);
    const __mmask8 band =
        _mm512_mask_cmp_pd_mask(_mm512_cmp_pd_mask(x, band_lo, _CMP_GE_OQ), x, band_hi, _CMP_LE_OQ);
    return _mm512_mask_add_pd(acc, static_cast<__mmask8>(inside & ~band), acc, _mm512_set1_pd(1.0));
  }
#endif
  const C inside = (x > lo) & (x < hi);
  const C alive = inside ^ (inside & (x >= band_lo) & (x <= band_hi));  // inside, not in band
  return acc + (alive & C(1));
}

// The alive rule (ops/alive_rule.h) on the lanes of a group: kRows bounds per lane, each a
// group of the compute type. kRows 0: abs_sum_, which counts nothing.
template <typename scalar_t, int kRows>
struct GroupRule {
  using G = Groups<scalar_t>;
  std::array<typename G::Group, kRows> bound;

  // Units [u, u + m) in the lanes; lanes past m get bounds 0 (their counts are never read).
  static GroupRule of_units(const float* bounds, int64_t units, int64_t u, int64_t m) {
    GroupRule rule;
    for (int r = 0; r < kRows; ++r) rule.bound[r] = G::load_converted(bounds + r * units + u, m);
    return rule;
  }
  // Unit u's bounds in every lane.
  static GroupRule of_unit(const float* bounds, int64_t units, int64_t u) {
    GroupRule rule;
    if constexpr (kRows > 0) {
      const auto scalar = AliveRule<typename G::compute_t, kRows>::of_unit(bounds, units, u);
      for (int r = 0; r < kRows; ++r) rule.bound[r] = G::broadcast(scalar.bound[r]);
    }
    return rule;
  }
  // acc + 1 in the lanes of x, the group's k-th compute vector, that are alive.
  typename G::C count_alive(const typename G::C& acc, const typename G::C& x, int k) const {
    if constexpr (kRows == 1) {
      return count_greater(acc, x, bound[0][k]);
    } else {
      return count_in_interval(acc, x, bound[0][k], bound[1][k], bound[2][k], bound[3][k]);
    }
  }
};

// --- Sums of |y| ------------------------------------------------------------------------------
// In double, lane by lane: each lane adds its values in element order, and an element goes to
// the same lane whatever the vector width (rows: its unit's; planes: its index mod kSumLanes),
// so every ISA adds the same doubles in the same order: the sums have the same bits on
// DEFAULT, AVX2 and AVX512, as on any thread count (unit_loops.h). All terms are >= 0, so a
// unit's sum of n terms is within (n - 1) * 2^-53 relative of their exact sum.

// Lanes a plane's sum is spread over: a multiple of every ISA's group (at most 32 elements,
// bfloat16 on AVX512), and 4 (AVX512) or 8 (AVX2) independent double accumulators.
constexpr int64_t kSumLanes = 32;

// The lanes of a compute vector as double vectors, in lane order (exact).
inline std::array<at::vec::Vectorized<double>, 1> widened(const at::vec::Vectorized<double>& c) {
  return {c};
}
inline std::array<at::vec::Vectorized<double>, 2> widened(const at::vec::Vectorized<float>& c) {
  using D = at::vec::Vectorized<double>;
  static_assert(at::vec::Vectorized<float>::size() == 2 * D::size());
#if defined(CPU_CAPABILITY_AVX512)
  const __m512 v = c;
  const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  return {D(_mm512_cvtps_pd(_mm512_castps512_ps256(v))), D(_mm512_cvtps_pd(high))};
#elif defined(CPU_CAPABILITY_AVX2)
  const __m256 v = c;
  return {D(_mm256_cvtps_pd(_mm256_castps256_ps128(v))),
          D(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)))};
#else
  float lanes[2 * D::size()];
  c.store(lanes);
  double wide[2 * D::size()];
  for (int64_t j = 0; j < 2 * D::size(); ++j) wide[j] = lanes[j];
  return {D::loadu(wide), D::loadu(wide + D::size())};
#endif
}

// kLanes running sums of |y| in double: one per unit of a group (rows), or a plane's
// kSumLanes (planes).
template <typename scalar_t, int64_t kLanes>
struct AbsSums {
  using G = Groups<scalar_t>;
  using D = at::vec::Vectorized<double>;
  static_assert(kLanes % G::kWidth == 0 && G::kWidth % D::size() == 0);
  std::array<D, kLanes / D::size()> lane;

  AbsSums() { lane.fill(D(0.0)); }

  // Lanes [first, first + kWidth) += |y| (first: a multiple of kWidth).
  void add(const typename G::Group& y, int64_t first) {
    for (int k = 0; k < G::K; ++k) {
      const auto wide = widened(y[k].abs());
      for (size_t w = 0; w < wide.size(); ++w) {
        auto& sum = lane[first / D::size() + k * wide.size() + w];
        sum = sum + wide[w];
      }
    }
  }
  // y[begin, end) of one plane, element i into lane i % kLanes: begin a multiple of kLanes,
  // end - begin of kWidth. Whole kLanes at a time (lane indices known to the compiler), so
  // the lanes stay in registers.
  void add_span(const scalar_t* y, int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      for (int64_t g = 0; g < kLanes / G::kWidth; ++g)
        add(G::load(y + i + g * G::kWidth, G::kWidth), g * G::kWidth);
    }
    for (; i < end; i += G::kWidth) add(G::load(y + i, G::kWidth), i % kLanes);
  }
  // totals[j] += lane j, for j < m.
  void add_to(double* totals, int64_t m) const {
    double values[kLanes];
    for (size_t d = 0; d < lane.size(); ++d) lane[d].store(values + d * D::size());
    for (int64_t j = 0; j < m; ++j) totals[j] += values[j];
  }
  // The lanes summed in lane order.
  double total() const {
    double values[kLanes];
    for (size_t d = 0; d < lane.size(); ++d) lane[d].store(values + d * D::size());
    double sum = 0;
    for (double value : values) sum += value;
    return sum;
  }
};

// The values whose |.| a pass sums: the map's output where it writes (the counted forwards:
// |out|, of the dtype it was stored in, as abs_sum_ of out sees it), else z (abs_sum_). Both
// are laid out as z.
template <typename scalar_t, typename Map>
const scalar_t* summed_values(const Map& map, const scalar_t* z) {
  if constexpr (Map::kWrites) {
    return map.out;
  } else {
    return z;
  }
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
// fields are copied to locals: stores through `out` would otherwise reload them. Always
// inlined: rows call it once per row, and the compiler's inlining budget, spent on the many
// instantiations of the counting passes, would otherwise leave it a call (8% slower rows).
template <typename scalar_t, typename Map>
C10_ALWAYS_INLINE void map_span(const Map& map, const scalar_t* x, int64_t n,
                                const typename Groups<scalar_t>::Group* params, int64_t param_step,
                                int64_t offset) {
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
// mapped, then the tile is counted (and summed) group by group (in L1), each group's counts
// and sums held in registers over the tile's rows.
template <typename scalar_t, int kRows, bool kSums, typename Map>
C10_NOINLINE void count_rows(const UnitView& v, const Map& map, const UnitStats& stats) {
  using G = Groups<scalar_t>;
  using Group = typename G::Group;
  using Rule = GroupRule<scalar_t, kRows>;
  using Sums = AbsSums<scalar_t, G::kWidth>;
  constexpr bool kCounts = kRows > 0;
  const auto* z = static_cast<const scalar_t*>(v.data);
  const scalar_t* y = summed_values(map, z);
  const int64_t units = v.units, stride = v.outer_stride;
  const int64_t groups = (units + G::kWidth - 1) / G::kWidth;
  auto width = [units](int64_t g) { return std::min(G::kWidth, units - g * G::kWidth); };
  std::vector<Group> params(groups);
  std::vector<Rule> rules(groups);
  for (int64_t g = 0; g < groups; ++g) {
    params[g] = unit_params<Map, scalar_t>(map, g * G::kWidth, width(g));
    // Lanes past the last unit load z = 0 and bounds 0; their counts are never read.
    rules[g] = Rule::of_units(stats.bounds, units, g * G::kWidth, width(g));
  }
  const auto body = [&](Tally& tally, int64_t begin, int64_t end) {
    const typename G::C zero(0);
    std::vector<Group> a(kCounts ? groups : 0, G::broadcast(0)), l(a);
    std::vector<Sums> s(kSums ? groups : 0);
    auto flush = [&] {
      for (int64_t g = 0; g < static_cast<int64_t>(a.size()); ++g) {
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
        if constexpr (kCounts) {
          Group ag = a[g], lg = l[g];
          const Rule& rule = rules[g];  // a copy stayed on the stack, reloaded per row
          const int64_t u = g * G::kWidth, m = width(g);
          for (int64_t r = 0; r < rows; ++r) {
            const auto x = G::load(tile + r * stride + u, m);
            for (int k = 0; k < G::K; ++k) {
              ag[k] = count_greater(ag[k], x[k], zero);
              lg[k] = rule.count_alive(lg[k], x[k], k);
            }
          }
          a[g] = ag;
          l[g] = lg;
        }
        if constexpr (kSums) {
          Sums sg = s[g];
          const int64_t u = g * G::kWidth, m = width(g);
          for (int64_t r = 0; r < rows; ++r) sg.add(G::load(y + (o + r) * stride + u, m), 0);
          s[g] = sg;
        }
      }
      if ((adds += rows) >= kLaneAdds) {
        flush();
        adds = 0;
      }
    }
    flush();
    if constexpr (kSums) {
      for (int64_t g = 0; g < groups; ++g) s[g].add_to(tally.abs.data() + g * G::kWidth, width(g));
    }
  };
  parallel_units<Tally>(v.outer, at::internal::GRAIN_SIZE / units, Tally(units, kCounts, kSums),
                        body, [&](const Tally& tally) { tally.add_to(stats); });
}

// Lane counters of one unit: counts of z > 0 and of z alive over whole groups, in kChains
// independent accumulators so that the additions' latency overlaps.
template <typename scalar_t, int kRows>
struct LaneCounts {
  using G = Groups<scalar_t>;
  static constexpr int kChains = 4;
  std::array<typename G::Group, kChains> a, l;

  LaneCounts() {
    a.fill(G::broadcast(0));
    l.fill(G::broadcast(0));
  }
  // The full groups of z[begin, end) (end - begin a multiple of kWidth).
  void add(const scalar_t* z, int64_t begin, int64_t end, const GroupRule<scalar_t, kRows>& rule) {
    const typename G::C zero(0);
    int64_t i = begin;
    for (; i + kChains * G::kWidth <= end; i += kChains * G::kWidth) {
      for (int c = 0; c < kChains; ++c)
        add_group(G::load(z + i + c * G::kWidth, G::kWidth), c, zero, rule);
    }
    for (; i < end; i += G::kWidth) add_group(G::load(z + i, G::kWidth), 0, zero, rule);
  }
  int64_t active() const { return total(a); }
  int64_t alive() const { return total(l); }

 private:
  void add_group(const typename G::Group& x, int c, const typename G::C& zero,
                 const GroupRule<scalar_t, kRows>& rule) {
    for (int k = 0; k < G::K; ++k) {
      a[c][k] = count_greater(a[c][k], x[k], zero);
      l[c][k] = rule.count_alive(l[c][k], x[k], k);
    }
  }
  static int64_t total(const std::array<typename G::Group, kChains>& chains) {
    int64_t sum = 0;
    for (const auto& chain : chains) sum += lane_total<scalar_t>(chain);
    return sum;
  }
};

// Each (outer, unit) pair owns a contiguous plane of `inner` elements: its full groups are
// mapped, then counted with the counts in registers (a loop with no branch, flushed every
// kLaneAdds groups) and summed into kSumLanes lanes; the tail (fewer than kWidth elements)
// is mapped masked, counted by count_span and summed masked (lanes past it add 0).
template <typename scalar_t, int kRows, bool kSums, typename Map>
C10_NOINLINE void count_planes(const UnitView& v, const Map& map, const UnitStats& stats) {
  using G = Groups<scalar_t>;
  using Rule = GroupRule<scalar_t, kRows>;
  constexpr bool kCounts = kRows > 0;
  const auto* z = static_cast<const scalar_t*>(v.data);
  const scalar_t* y = summed_values(map, z);
  const int64_t full = v.inner / G::kWidth * G::kWidth;
  const auto body = [&](Tally& tally, int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t u = p % v.units;
      const int64_t plane = (p / v.units) * v.outer_stride + u * v.unit_stride;
      const Rule rule = Rule::of_unit(stats.bounds, v.units, u);
      const auto param = unit_param<Map, scalar_t>(map, u);
      std::conditional_t<kSums, AbsSums<scalar_t, kSumLanes>, std::tuple<>> plane_sums;
      for (int64_t block = 0; block < full; block += kLaneAdds * G::kWidth) {
        const int64_t stop = std::min(full, block + kLaneAdds * G::kWidth);
        LaneCounts<scalar_t, kRows> counts;
        for (int64_t sub = plane + block; sub < plane + stop; sub += kSpan) {
          const int64_t sub_stop = std::min(plane + stop, sub + kSpan);
          map_span<scalar_t>(map, z + sub, sub_stop - sub, &param, 0, sub);
          if constexpr (kCounts) counts.add(z, sub, sub_stop, rule);
          if constexpr (kSums) plane_sums.add_span(y + plane, sub - plane, sub_stop - plane);
        }
        if constexpr (kCounts) {
          tally.active[u] += counts.active();
          tally.alive[u] += counts.alive();
        }
      }
      if (full < v.inner) {
        const int64_t m = v.inner - full;
        write_mapped<scalar_t>(map, G::load(z + plane + full, m), param, plane + full, m);
        if constexpr (kCounts) {
          using Scalar = AliveRule<typename G::compute_t, kRows>;
          count_span(z + plane + full, m, Scalar::of_unit(stats.bounds, v.units, u),
                     tally.active[u], tally.alive[u]);
        }
        if constexpr (kSums) plane_sums.add(G::load(y + plane + full, m), full % kSumLanes);
      }
      if constexpr (kSums) tally.abs[u] += plane_sums.total();
    }
  };
  parallel_units<Tally>(v.outer * v.units, at::internal::GRAIN_SIZE / v.inner,
                        Tally(v.units, kCounts, kSums), body,
                        [&](const Tally& tally) { tally.add_to(stats); });
}

// The pass over every unit: counts under the alive rule of kRows bounds (0: none), sums of
// |y| with kSums, and what the map writes. Each variant is compiled on its own, so a pass
// does no work and takes no branch for what it does not compute; each is a function of its
// own (C10_NOINLINE): inlined together into one dispatcher, the variants would exhaust the
// compiler's inlining budget, and map_span would become a call per row.
template <typename scalar_t, int kRows, bool kSums, typename Map>
void per_unit_pass(const UnitView& v, const Map& map, const UnitStats& stats) {
  if (v.inner == 1) {
    count_rows<scalar_t, kRows, kSums>(v, map, stats);
  } else {
    count_planes<scalar_t, kRows, kSums>(v, map, stats);
  }
}

// The counted forwards sum |out| when asked (stats.abs_sum); count_active_ never does.
template <typename scalar_t, int kRows, typename Map>
void count_with_rule(const UnitView& v, const Map& map, const UnitStats& stats) {
  if constexpr (Map::kWrites) {
    if (stats.abs_sum != nullptr) return per_unit_pass<scalar_t, kRows, true>(v, map, stats);
  }
  per_unit_pass<scalar_t, kRows, false>(v, map, stats);
}

// count_active_ and the counted forwards. The rule is a template argument, chosen by
// alive_threshold's shape: the half-line rule (the ReLU family) keeps its one comparison per
// element, and only an interval pays for four.
template <typename scalar_t, typename Map>
void count_units(const UnitView& v, const Map& map, const UnitStats& stats) {
  if (stats.interval) {
    count_with_rule<scalar_t, 4>(v, map, stats);
  } else {
    count_with_rule<scalar_t, 1>(v, map, stats);
  }
}

// abs_sum_: sums[u] += sum of |h| over unit u; nothing counted, nothing written.
template <typename scalar_t>
void sum_abs_units(const UnitView& v, double* sums) {
  per_unit_pass<scalar_t, 0, true>(v, WritesNothing{},
                                   UnitStats{nullptr, false, nullptr, nullptr, sums});
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
