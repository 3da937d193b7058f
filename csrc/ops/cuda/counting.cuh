#pragma once
// count_active_, abs_sum_ and the counted forwards on CUDA: counts[0, u] += #(z > 0) and
// counts[1, u] += #(z alive) over unit u's elements, under the alive rule of alive_threshold's
// shape (ops/alive_rule.h, a template argument: the half-line rule keeps its one comparison),
// reduced per block and added atomically (int64: exact and order-free), optionally writing
// out = f(z, p) in the same pass and summing |out|. The sums of |.| are reduced per block in
// double and added with a double atomicAdd per block and unit: the order of those additions
// (and so the last bits of a sum) may vary from run to run. The CUDA twin of ops/cpu/counting.h.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <cstdint>
#include <type_traits>

#include "ops/alive_rule.h"
#include "ops/cuda/elementwise.cuh"
#include "ops/cuda/unit_loops.cuh"
#include "ops/loops.h"

namespace torch_ext::cuda {

struct Counts {
  unsigned long long active, alive;
};

__device__ inline Counts operator+(const Counts& a, const Counts& b) {
  return {a.active + b.active, a.alive + b.alive};
}

// A counted forward's counts and its sum of |out| (asked for with abs_sum).
struct CountsAndSum {
  unsigned long long active, alive;
  double abs;
};

__device__ inline CountsAndSum operator+(const CountsAndSum& a, const CountsAndSum& b) {
  return {a.active + b.active, a.alive + b.alive, a.abs + b.abs};
}

// What a counting pass writes besides the statistics: nothing, or out = f(z, p_u) with unit
// u's parameter p_u (PReLU's slope; 0 when `unit_param` is null). Each returns the value
// whose |.| the pass sums: the stored output, as abs_sum_ of out would read it.
struct WritesNothing {
  static constexpr bool kWrites = false;
  template <typename T>
  __device__ T operator()(int64_t, int64_t, T x) const {
    return x;
  }
};

template <typename scalar_t, typename F>
struct WriteActivation {
  static constexpr bool kWrites = true;
  using opmath_t = at::opmath_type<scalar_t>;
  scalar_t* out;
  const scalar_t* unit_param;
  F f;
  __device__ opmath_t operator()(int64_t offset, int64_t u, opmath_t x) const {
    const opmath_t p = unit_param == nullptr ? opmath_t(0) : static_cast<opmath_t>(unit_param[u]);
    const scalar_t y = static_cast<scalar_t>(f(x, p));
    out[offset] = y;
    return static_cast<opmath_t>(y);
  }
};

// One element: counted under the rule of kRows bounds; with kSum, also |y| of what `write`
// stored.
template <typename scalar_t, int kRows, bool kSum, typename Write>
struct CountStep {
  using opmath_t = at::opmath_type<scalar_t>;
  using Acc = std::conditional_t<kSum, CountsAndSum, Counts>;
  const scalar_t* z;
  const float* bounds;
  int64_t units;
  Write write;
  __device__ Acc operator()(int64_t offset, int64_t u) const {
    const opmath_t x = static_cast<opmath_t>(z[offset]);
    [[maybe_unused]] const opmath_t y = write(offset, u, x);
    const unsigned long long active = x > opmath_t(0) ? 1ull : 0ull;
    const unsigned long long alive =
        AliveRule<opmath_t, kRows>::of_unit(bounds, units, u).alive(x) ? 1ull : 0ull;
    if constexpr (kSum) {
      return {active, alive, ::fabs(static_cast<double>(y))};
    } else {
      return {active, alive};
    }
  }
};

struct AddStats {
  unsigned long long* active;
  unsigned long long* alive;
  double* abs_sum;
  __device__ void operator()(int64_t u, int64_t /*slice*/, const Counts& c) const {
    atomicAdd(active + u, c.active);
    atomicAdd(alive + u, c.alive);
  }
  __device__ void operator()(int64_t u, int64_t /*slice*/, const CountsAndSum& c) const {
    atomicAdd(active + u, c.active);
    atomicAdd(alive + u, c.alive);
    atomicAdd(abs_sum + u, c.abs);
  }
};

template <typename scalar_t, int kRows, bool kSum, typename Write>
void count_units_as(const UnitView& v, const Write& write, const UnitStats& stats) {
  static_assert(sizeof(unsigned long long) == sizeof(int64_t));
  using Step = CountStep<scalar_t, kRows, kSum, Write>;
  const Step step{static_cast<const scalar_t*>(v.data), stats.bounds, v.units, write};
  reduce_units<typename Step::Acc>(
      v, step,
      AddStats{reinterpret_cast<unsigned long long*>(stats.active),
               reinterpret_cast<unsigned long long*>(stats.alive), stats.abs_sum});
}

template <typename scalar_t, int kRows, typename Write>
void count_units_by_rule(const UnitView& v, const Write& write, const UnitStats& stats) {
  if constexpr (Write::kWrites) {  // only the counted forwards sum |out|
    if (stats.abs_sum != nullptr) return count_units_as<scalar_t, kRows, true>(v, write, stats);
  }
  count_units_as<scalar_t, kRows, false>(v, write, stats);
}

// Counts the elements of v (and writes what `write` writes) on the current stream, under the
// rule alive_threshold's shape gives.
template <typename scalar_t, typename Write>
void count_units(const UnitView& v, const Write& write, const UnitStats& stats) {
  if (stats.interval) {
    count_units_by_rule<scalar_t, 4>(v, write, stats);
  } else {
    count_units_by_rule<scalar_t, 1>(v, write, stats);
  }
}

// abs_sum_: |h| per element, summed per thread and block in double.
template <typename scalar_t>
struct AbsStep {
  const scalar_t* h;
  __device__ double operator()(int64_t offset, int64_t /*unit*/) const {
    return ::fabs(static_cast<double>(h[offset]));
  }
};

struct AddSum {
  double* sums;
  __device__ void operator()(int64_t u, int64_t /*slice*/, double sum) const {
    atomicAdd(sums + u, sum);
  }
};

template <typename scalar_t>
void sum_abs_units(const UnitView& v, double* sums) {
  reduce_units<double>(v, AbsStep<scalar_t>{static_cast<const scalar_t*>(v.data)}, AddSum{sums});
}

// The `fused` callback of counted_forward (ops/counted.h) for the functor factory `make`
// (make(OpMath<T>{}): a device functor f(x, p)); `unit_param`: one parameter per unit, of
// z's dtype, or null.
template <typename Make>
auto fused_counting(const Make& make, const void* unit_param = nullptr) {
  return [make, unit_param](const UnitView& v, void* out, const UnitStats& stats) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "counted_forward_cuda", [&] {
      const auto f = make(OpMath<at::opmath_type<scalar_t>>{});
      const WriteActivation<scalar_t, decltype(f)> write{
          static_cast<scalar_t*>(out), static_cast<const scalar_t*>(unit_param), f};
      count_units<scalar_t>(v, write, stats);
    });
  };
}

}  // namespace torch_ext::cuda
