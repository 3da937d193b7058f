#pragma once
// PReLU's backward in one pass on CPU, on the per-unit skeleton of unit_loops.h. Included
// by loops.cpp only (per CPU ISA).

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <vector>

#include "activations/leaky_relu.h"
#include "ops/cpu/streaming.h"
#include "ops/cpu/unit_loops.h"

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
  // grad_input past the last-level cache, in runs of whole vectors (loops.cpp): its whole
  // vectors that are aligned are streamed (streaming.h). Not shifted to alignment as the
  // elementwise loops are: the vectors' boundaries decide the weight gradient's summation order, so
  // its bits.
  bool stream;

  // Writes n grad_input elements at offset i; returns their weight-gradient terms (lanes
  // past n load as 0 and contribute 0).
  Vec operator()(int64_t i, const Vec& slope, int64_t n) const {
    const Vec xv = Vec::loadu(x + i, n), gv = Vec::loadu(g + i, n);
    const Vec result = act::LeakyRelu<Vec>{slope}.backward(gv, xv);
    store_vector(result, grad_input + i, n,
                 stream && n == Vec::size() && stream_aligned(grad_input + i));
    return act::LeakyRelu<Vec>{Vec(0)}.slope_backward(gv, xv);
  }

  // At the end of a chunk (streaming.h).
  void finish() const {
    if (stream) stream_fence();
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
    step.finish();
  };
  parallel_units<UnitSums>(v.outer, at::internal::GRAIN_SIZE / v.units, UnitSums(v.units), body,
                           [&](const UnitSums& sums) { sums.add_to(grad_weight); });
}

// One unit in rows of one element (a 1-D input, seen as [1, 1, n]) is one contiguous run of
// n elements, which the rows loop would take one lane per vector (40x slower). As planes:
// equal runs of at least GRAIN_SIZE elements (the largest power-of-two count of them that
// divides n, else one), in parallel, each summed in vector lanes, merged in run order: the
// partition, so the weight gradient's bits, depend on n alone.
inline UnitView one_unit_as_planes(const UnitView& v) {
  int64_t runs = 1;
  while (v.outer % (2 * runs) == 0 && v.outer / (2 * runs) >= at::internal::GRAIN_SIZE) runs *= 2;
  const int64_t inner = v.outer / runs;
  return UnitView{v.data, v.dtype, runs, 1, inner, inner, inner};
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
    step.finish();
  };
  parallel_units<UnitSums>(v.outer * v.units, at::internal::GRAIN_SIZE / v.inner, UnitSums(v.units),
                           body, [&](const UnitSums& sums) { sums.add_to(grad_weight); });
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
