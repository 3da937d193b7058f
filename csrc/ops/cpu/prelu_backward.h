#pragma once
// PReLU's backward in one pass on CPU, on the per-unit skeleton of unit_loops.h. Included
// by loops.cpp only (per CPU ISA).

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <vector>

#include "activations/leaky_relu.h"
#include "ops/cpu/groups.h"
#include "ops/cpu/streaming.h"
#include "ops/cpu/unit_loops.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

// --- PReLU backward in one pass ----------------------------------------------------------
// grad_input = g * prelu'(x) and, per unit u, grad_weight[u] = sum over u's elements of
// (x > 0 ? 0 : x * g): vectorized, the weight gradient reduced on the fly (float lanes over
// short blocks, then double), no full-size temporary. g and grad_input share x's layout.
// bfloat16/float16 compute in float (groups.h): grad_input rounded once, as native's; the
// weight-gradient terms, exact products of two reduced values, summed unrounded.
constexpr int64_t kFlush = 32;  // float additions per lane before widening to double

template <typename scalar_t>
struct PreluBackwardStep {
  using G = Groups<scalar_t>;
  using Group = typename G::Group;
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
  Group operator()(int64_t i, const Group& slope, int64_t n) const {
    const Group xs = G::load(x + i, n), gs = G::load(g + i, n);
    Group result, terms;
    for (int k = 0; k < G::K; ++k) {
      using C = typename G::C;
      result[k] = act::LeakyRelu<C>{slope[k]}.backward(gs[k], xs[k]);
      terms[k] = act::LeakyRelu<C>{C(0)}.slope_backward(gs[k], xs[k]);
    }
    store_vector(G::pack(result), grad_input + i, n,
                 stream && n == G::kWidth && stream_aligned(grad_input + i));
    return terms;
  }

  // At the end of a chunk (streaming.h).
  void finish() const {
    if (stream) stream_fence();
  }
};

template <typename scalar_t>
double lane_sum(const typename Groups<scalar_t>::Group& group) {
  using G = Groups<scalar_t>;
  typename G::compute_t lanes[G::kWidth];
  for (int k = 0; k < G::K; ++k) group[k].store(lanes + k * G::C::size());
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
  using G = Groups<scalar_t>;
  using C = typename G::C;
  const int64_t padded = (v.units + G::kWidth - 1) / G::kWidth * G::kWidth;
  const auto body = [&](UnitSums& sums, int64_t begin, int64_t end) {
    std::vector<typename G::compute_t> acc(padded, 0);
    auto flush = [&] {
      for (int64_t u = 0; u < v.units; ++u) sums.value[u] += acc[u];
      std::fill(acc.begin(), acc.end(), 0);
    };
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t u = 0; u < v.units; u += G::kWidth) {
        const int64_t n = std::min<int64_t>(G::kWidth, v.units - u);
        const auto terms = step(o * v.outer_stride + u, G::load(slopes + u, n), n);
        for (int k = 0; k < G::K; ++k) {
          auto* lanes = acc.data() + u + k * C::size();
          (C::loadu(lanes) + terms[k]).store(lanes);
        }
      }
      if ((o - begin + 1) % kFlush == 0) flush();
    }
    flush();
    step.finish();
  };
  parallel_units<UnitSums>(v.outer, at::internal::GRAIN_SIZE / v.units, UnitSums(v.units), body,
                           [&](const UnitSums& sums) { sums.add_to(grad_weight); });
}

// One plane of `inner` contiguous elements of unit u: whole vectors, then a partial one;
// the lanes flushed to double, added to `sum` (u's weight gradient), after every kFlush
// vectors.
template <typename scalar_t>
void prelu_backward_plane(const PreluBackwardStep<scalar_t>& step, int64_t plane,
                          scalar_t slope_value, int64_t inner, double& sum) {
  using G = Groups<scalar_t>;
  // A copy the stores cannot alias (a vector store may write any memory, so the caller's
  // step was reloaded for every vector): its pointers and flag stay in registers.
  const PreluBackwardStep<scalar_t> local = step;
  const auto slope = G::broadcast(static_cast<typename G::compute_t>(slope_value));
  for (int64_t block = 0; block < inner; block += kFlush * G::kWidth) {
    const int64_t end = std::min(inner, block + kFlush * G::kWidth);
    auto acc = G::broadcast(0);
    const auto add = [&](const typename G::Group& terms) {
      for (int k = 0; k < G::K; ++k) acc[k] = acc[k] + terms[k];
    };
    int64_t i = block;
    for (; i + G::kWidth <= end; i += G::kWidth) add(local(plane + i, slope, G::kWidth));
    if (i < end) add(local(plane + i, slope, end - i));
    sum += lane_sum<scalar_t>(acc);
  }
}

template <typename scalar_t>
void prelu_backward_planes(const UnitView& v, const PreluBackwardStep<scalar_t>& step,
                           const scalar_t* slopes, double* grad_weight) {
  const auto body = [&](UnitSums& sums, int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t u = p % v.units;
      const int64_t plane = (p / v.units) * v.outer_stride + u * v.unit_stride;
      prelu_backward_plane(step, plane, slopes[u], v.inner, sums.value[u]);
    }
    step.finish();
  };
  parallel_units<UnitSums>(v.outer * v.units, at::internal::GRAIN_SIZE / v.inner, UnitSums(v.units),
                           body, [&](const UnitSums& sums) { sums.add_to(grad_weight); });
}

// One unit in rows of one element (a 1-D input, seen as [1, 1, n]) is one contiguous run of
// n elements, which the rows loop would take one lane per vector (40x slower). As planes:
// runs of kOneUnitRun elements in parallel, then the last n % kOneUnitRun as one more, each
// summed in vector lanes, merged in run order: the partition, so the weight gradient's
// bits, depend on n alone. The runs are whole vectors on every ISA, so they may stream; the
// last one keeps normal stores.
constexpr int64_t kOneUnitRun = int64_t{1} << 15;

template <typename scalar_t>
void prelu_backward_one_unit(const UnitView& v, const PreluBackwardStep<scalar_t>& step,
                             const scalar_t* slopes, double* grad_weight) {
  const int64_t runs = v.outer / kOneUnitRun, whole = runs * kOneUnitRun, rest = v.outer - whole;
  if (runs > 0) {
    const UnitView planes{v.data, v.dtype, runs, 1, kOneUnitRun, kOneUnitRun, kOneUnitRun};
    prelu_backward_planes(planes, step, slopes, grad_weight);
  }
  if (rest > 0) {
    const PreluBackwardStep<scalar_t> last{step.x + whole, step.g + whole, step.grad_input + whole,
                                           false};
    prelu_backward_planes(UnitView{last.x, v.dtype, 1, 1, rest, rest, rest}, last, slopes,
                          grad_weight);
  }
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
