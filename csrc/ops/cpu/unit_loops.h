#pragma once
// Per-unit loops of the dead-neuron statistics (count_active_ and the counted forwards).
// z is walked as rows (units innermost) or as contiguous per-unit spans (planes), in
// parallel; each chunk keeps its own tally, merged once. A Map optionally computes the
// activation of each row or span just before it is counted, while it is in cache, so a
// counted forward reads z from memory once. Included by loops.cpp only (per CPU ISA).

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "activations/leaky_relu.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/loops.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

// Counters are int32 over blocks of at most kBlock elements (full vector width for the
// auto-vectorizer), then widened: no overflow.
constexpr int64_t kBlock = int64_t{1} << 30;
// Span length mapped and then counted while cache-resident.
constexpr int64_t kSpan = 4096;

template <typename scalar_t>
void count_span(const scalar_t* z, int64_t n, float threshold, int64_t& active, int64_t& alive) {
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t stop = std::min(n, start + kBlock);
    int32_t a = 0, l = 0;
    for (int64_t i = start; i < stop; ++i) {
      const float x = static_cast<float>(z[i]);
      a += x > 0.f;
      l += x > threshold;
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

// The parallel skeleton of every per-unit loop: [0, n) in chunks of at least `grain`; each
// chunk builds its own State(units), runs body(state, begin, end), and is merged once,
// under a lock, by merge(state). Chunks never share a counter or a sum.
template <typename State, typename Body, typename Merge>
void parallel_units(int64_t n, int64_t grain, int64_t units, const Body& body, const Merge& merge) {
  std::mutex mutex;
  at::parallel_for(0, n, std::max<int64_t>(1, grain), [&](int64_t begin, int64_t end) {
    State state(units);
    body(state, begin, end);
    std::lock_guard<std::mutex> lock(mutex);
    merge(state);
  });
}

// count_active_ alone: nothing to compute before counting.
struct NoMap {
  void row(int64_t, int64_t) const {}
  void span(int64_t, int64_t, int64_t) const {}
};

// out = f(z) with one f for every unit (Leaky ReLU, ELU, SELU).
template <typename scalar_t, typename F>
struct UniformMap {
  using Vec = at::vec::Vectorized<scalar_t>;
  const scalar_t* in;
  scalar_t* out;
  F f;

  void apply(int64_t offset, int64_t n) const {
    const VectorBody<scalar_t, F, std::make_index_sequence<1>> body{f};
    int64_t i = 0;
    for (; i + Vec::size() <= n; i += Vec::size()) {
      body(Vec::loadu(in + offset + i)).store(out + offset + i);
    }
    if (i < n) body(Vec::loadu(in + offset + i, n - i)).store(out + offset + i, n - i);
  }
  void row(int64_t offset, int64_t units) const { apply(offset, units); }
  void span(int64_t offset, int64_t n, int64_t) const { apply(offset, n); }
};

// out = f(z, p[u]) with a parameter per unit (PReLU's slopes).
template <typename scalar_t, typename F>
struct PerUnitMap {
  using Vec = at::vec::Vectorized<scalar_t>;
  const scalar_t* in;
  scalar_t* out;
  const scalar_t* param;
  F f;

  void row(int64_t offset, int64_t units) const {
    const VectorBody<scalar_t, F, std::make_index_sequence<2>> body{f};
    int64_t u = 0;
    for (; u + Vec::size() <= units; u += Vec::size()) {
      body(Vec::loadu(in + offset + u), Vec::loadu(param + u)).store(out + offset + u);
    }
    if (u < units) {
      const int64_t rest = units - u;
      body(Vec::loadu(in + offset + u, rest), Vec::loadu(param + u, rest))
          .store(out + offset + u, rest);
    }
  }
  void span(int64_t offset, int64_t n, int64_t unit) const {
    const VectorBody<scalar_t, F, std::make_index_sequence<2>> body{f};
    const Vec p(param[unit]);
    int64_t i = 0;
    for (; i + Vec::size() <= n; i += Vec::size()) {
      body(Vec::loadu(in + offset + i), p).store(out + offset + i);
    }
    if (i < n) body(Vec::loadu(in + offset + i, n - i), p).store(out + offset + i, n - i);
  }
};

// Units innermost: each row holds one element of every unit.
template <typename scalar_t, typename Map>
void count_rows(const UnitView& v, const Map& map, const float* threshold, int64_t* active,
                int64_t* alive) {
  const auto* z = static_cast<const scalar_t*>(v.data);
  const auto body = [&](Tally& tally, int64_t begin, int64_t end) {
    std::vector<int32_t> a(v.units), l(v.units);
    for (int64_t block = begin; block < end; block += kBlock) {
      std::fill(a.begin(), a.end(), 0);
      std::fill(l.begin(), l.end(), 0);
      for (int64_t o = block; o < std::min(end, block + kBlock); ++o) {
        map.row(o * v.outer_stride, v.units);
        const scalar_t* row = z + o * v.outer_stride;
        for (int64_t u = 0; u < v.units; ++u) {
          const float x = static_cast<float>(row[u]);
          a[u] += x > 0.f;
          l[u] += x > threshold[u];
        }
      }
      for (int64_t u = 0; u < v.units; ++u) {
        tally.active[u] += a[u];
        tally.alive[u] += l[u];
      }
    }
  };
  parallel_units<Tally>(v.outer, at::internal::GRAIN_SIZE / v.units, v.units, body,
                        [&](const Tally& tally) { tally.add_to(active, alive); });
}

// Each (outer, unit) pair owns a contiguous plane of `inner` elements.
template <typename scalar_t, typename Map>
void count_planes(const UnitView& v, const Map& map, const float* threshold, int64_t* active,
                  int64_t* alive) {
  const auto* z = static_cast<const scalar_t*>(v.data);
  const auto body = [&](Tally& tally, int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t u = p % v.units;
      const int64_t plane = (p / v.units) * v.outer_stride + u * v.unit_stride;
      for (int64_t start = 0; start < v.inner; start += kSpan) {
        const int64_t n = std::min(kSpan, v.inner - start);
        map.span(plane + start, n, u);
        count_span(z + plane + start, n, threshold[u], tally.active[u], tally.alive[u]);
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

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

// --- PReLU backward in one pass ----------------------------------------------------------
// grad_input = g * prelu'(x) and, per unit u, grad_weight[u] = sum over u's elements of
// (x > 0 ? 0 : x * g): vectorized, the weight gradient reduced on the fly (float lanes over
// short blocks, then double), no full-size temporary. g and grad_input share x's layout.
constexpr int64_t kFlush = 32;  // float additions per lane before widening to double

template <typename scalar_t>
struct PreluBackwardStep {
  using Vec = at::vec::Vectorized<scalar_t>;
  const scalar_t* x;
  const scalar_t* g;
  scalar_t* grad_input;

  // Writes n grad_input elements at offset i; returns their weight-gradient terms (lanes
  // past n load as 0 and contribute 0).
  Vec operator()(int64_t i, const Vec& slope, int64_t n) const {
    const Vec xv = Vec::loadu(x + i, n), gv = Vec::loadu(g + i, n);
    act::LeakyRelu<Vec>{slope}.backward(gv, xv).store(grad_input + i, n);
    return act::LeakyRelu<Vec>{Vec(0)}.slope_backward(gv, xv);
  }
};

template <typename scalar_t>
double lane_sum(const at::vec::Vectorized<scalar_t>& v) {
  scalar_t lanes[at::vec::Vectorized<scalar_t>::size()];
  v.store(lanes);
  double total = 0;
  for (auto lane : lanes) total += lane;
  return total;
}

struct UnitSums {
  explicit UnitSums(int64_t units) : value(units, 0.0) {}
  std::vector<double> value;

  void add_to(double* total) const {
    for (size_t u = 0; u < value.size(); ++u) total[u] += value[u];
  }
};

template <typename scalar_t>
void prelu_backward_rows(const UnitView& v, const PreluBackwardStep<scalar_t>& step,
                         const scalar_t* slopes, double* grad_weight) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const int64_t padded = (v.units + Vec::size() - 1) / Vec::size() * Vec::size();
  const auto body = [&](UnitSums& sums, int64_t begin, int64_t end) {
    std::vector<scalar_t> acc(padded, 0);
    auto flush = [&] {
      for (int64_t u = 0; u < v.units; ++u) sums.value[u] += acc[u];
      std::fill(acc.begin(), acc.end(), scalar_t(0));
    };
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t u = 0; u < v.units; u += Vec::size()) {
        const int64_t n = std::min<int64_t>(Vec::size(), v.units - u);
        const Vec terms = step(o * v.outer_stride + u, Vec::loadu(slopes + u, n), n);
        (Vec::loadu(acc.data() + u) + terms).store(acc.data() + u);
      }
      if ((o - begin + 1) % kFlush == 0) flush();
    }
    flush();
  };
  parallel_units<UnitSums>(v.outer, at::internal::GRAIN_SIZE / v.units, v.units, body,
                           [&](const UnitSums& sums) { sums.add_to(grad_weight); });
}

template <typename scalar_t>
void prelu_backward_planes(const UnitView& v, const PreluBackwardStep<scalar_t>& step,
                           const scalar_t* slopes, double* grad_weight) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const auto body = [&](UnitSums& sums, int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t u = p % v.units;
      const int64_t plane = (p / v.units) * v.outer_stride + u * v.unit_stride;
      const Vec slope(slopes[u]);
      Vec acc(0);
      int64_t steps = 0;
      for (int64_t i = 0; i < v.inner; i += Vec::size()) {
        acc = acc + step(plane + i, slope, std::min<int64_t>(Vec::size(), v.inner - i));
        if (++steps % kFlush == 0) {
          sums.value[u] += lane_sum(acc);
          acc = Vec(0);
        }
      }
      sums.value[u] += lane_sum(acc);
    }
  };
  parallel_units<UnitSums>(v.outer * v.units, at::internal::GRAIN_SIZE / v.inner, v.units, body,
                           [&](const UnitSums& sums) { sums.add_to(grad_weight); });
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
