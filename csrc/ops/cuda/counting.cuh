#pragma once
// count_active_ and the counted forwards on CUDA: counts[0, u] += #(z > 0) and
// counts[1, u] += #(z > alive_threshold[u]) over unit u's elements, reduced per block and
// added atomically (int64: exact and order-free), optionally writing out = f(z, p_u) in the
// same pass. The CUDA twin of count_units in ops/cpu/counting.h.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <cstdint>

#include "ops/cuda/elementwise.cuh"
#include "ops/cuda/unit_loops.cuh"

namespace torch_ext::cuda {

struct Counts {
  unsigned long long active, alive;
};

__device__ inline Counts operator+(const Counts& a, const Counts& b) {
  return {a.active + b.active, a.alive + b.alive};
}

// What a counting pass writes besides the counts: nothing, or out = f(z, p_u) with unit u's
// parameter p_u (PReLU's slope; 0 when `unit_param` is null).
struct CountOnly {
  template <typename T>
  __device__ void operator()(int64_t, int64_t, T) const {}
};

template <typename scalar_t, typename F>
struct WriteActivation {
  using opmath_t = at::opmath_type<scalar_t>;
  scalar_t* out;
  const scalar_t* unit_param;
  F f;
  __device__ void operator()(int64_t offset, int64_t u, opmath_t x) const {
    const opmath_t p = unit_param == nullptr ? opmath_t(0) : static_cast<opmath_t>(unit_param[u]);
    out[offset] = static_cast<scalar_t>(f(x, p));
  }
};

template <typename scalar_t, typename Write>
struct CountStep {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* z;
  const float* threshold;
  Write write;
  __device__ Counts operator()(int64_t offset, int64_t u) const {
    const opmath_t x = static_cast<opmath_t>(z[offset]);
    write(offset, u, x);
    return {x > opmath_t(0) ? 1ull : 0ull, x > static_cast<opmath_t>(threshold[u]) ? 1ull : 0ull};
  }
};

struct AddCounts {
  unsigned long long* active;
  unsigned long long* alive;
  __device__ void operator()(int64_t u, int64_t /*slice*/, const Counts& c) const {
    atomicAdd(active + u, c.active);
    atomicAdd(alive + u, c.alive);
  }
};

// Counts the elements of v (and writes what `write` writes) on the current stream.
template <typename scalar_t, typename Write>
void count_units(const UnitView& v, const Write& write, const float* threshold, int64_t* active,
                 int64_t* alive) {
  static_assert(sizeof(unsigned long long) == sizeof(int64_t));
  const CountStep<scalar_t, Write> step{static_cast<const scalar_t*>(v.data), threshold, write};
  reduce_units<Counts>(v, step,
                       AddCounts{reinterpret_cast<unsigned long long*>(active),
                                 reinterpret_cast<unsigned long long*>(alive)});
}

// The `fused` callback of counted_forward (ops/counted.h) for the functor factory `make`
// (make(OpMath<T>{}): a device functor f(x, p)); `unit_param`: one parameter per unit, of
// z's dtype, or null.
template <typename Make>
auto fused_counting(const Make& make, const void* unit_param = nullptr) {
  return [make, unit_param](const UnitView& v, void* out, const float* threshold, int64_t* active,
                            int64_t* alive) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "counted_forward_cuda", [&] {
      const auto f = make(OpMath<at::opmath_type<scalar_t>>{});
      const WriteActivation<scalar_t, decltype(f)> write{
          static_cast<scalar_t*>(out), static_cast<const scalar_t*>(unit_param), f};
      count_units<scalar_t>(v, write, threshold, active, alive);
    });
  };
}

}  // namespace torch_ext::cuda
