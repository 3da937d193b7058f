// Instantiates the elementwise skeleton for each activation. This file is compiled once
// per CPU ISA, with CPU_CAPABILITY set to DEFAULT, AVX2 or AVX512 (see CMakeLists.txt).

#include <ATen/Parallel.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "activations/elu.h"
#include "activations/leaky_relu.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/loops.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {
namespace {

using act::scalar_of_t;

void leaky_relu(at::TensorIteratorBase& iter, double negative_slope) {
  for_each_element<1>(iter, [negative_slope](auto x) {
    using T = decltype(x);
    return act::LeakyRelu<T>{T(scalar_of_t<T>(negative_slope))}.forward(x);
  });
}

void leaky_relu_backward(at::TensorIteratorBase& iter, double negative_slope) {
  for_each_element<2>(iter, [negative_slope](auto g, auto s) {
    using T = decltype(g);
    return act::LeakyRelu<T>{T(scalar_of_t<T>(negative_slope))}.backward(g, s);
  });
}

void prelu(at::TensorIteratorBase& iter) {
  for_each_element<2>(iter, [](auto x, auto w) {
    return act::LeakyRelu<decltype(x)>{w}.forward(x);
  });
}

void prelu_backward_input(at::TensorIteratorBase& iter) {
  for_each_element<3>(iter, [](auto g, auto x, auto w) {
    return act::LeakyRelu<decltype(x)>{w}.backward(g, x);
  });
}

void prelu_backward_weight(at::TensorIteratorBase& iter) {
  for_each_element<2>(iter, [](auto g, auto x) {
    using T = decltype(x);
    return act::LeakyRelu<T>{T(0)}.slope_backward(g, x);
  });
}

// ELU's parameters in the compute type, alpha * scale rounded once there (as ATen does).
template <typename T>
act::Elu<T> make_elu(double alpha, double scale) {
  using S = scalar_of_t<T>;
  return act::Elu<T>{T(S(scale)), T(S(alpha) * S(scale))};
}

void elu(at::TensorIteratorBase& iter, double alpha, double scale) {
  for_each_element<1>(iter, [alpha, scale](auto x) {
    return make_elu<decltype(x)>(alpha, scale).forward(x);
  });
}

void elu_backward(at::TensorIteratorBase& iter, double alpha, double scale, bool is_result) {
  if (is_result) {
    for_each_element<2>(iter, [alpha, scale](auto g, auto y) {
      return make_elu<decltype(g)>(alpha, scale).backward_from_result(g, y);
    });
  } else {
    for_each_element<2>(iter, [alpha, scale](auto g, auto x) {
      return make_elu<decltype(g)>(alpha, scale).backward(g, x);
    });
  }
}

// --- count_active ------------------------------------------------------------------------
// Plain loops over float-converted values, written for the auto-vectorizer (compare,
// convert the mask, add into int32 lanes). Counters are int32 over blocks of at most
// kBlock elements, then widened: no overflow, full vector width.
constexpr int64_t kBlock = int64_t{1} << 30;

// Counts one unit's contiguous span of n elements.
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

// Per-chunk counters, merged once per chunk: parallel chunks never share a counter.
struct Tally {
  explicit Tally(int64_t units) : active(units, 0), alive(units, 0) {}
  std::vector<int64_t> active, alive;
};

void merge(const Tally& tally, std::mutex& mutex, int64_t* active, int64_t* alive) {
  std::lock_guard<std::mutex> lock(mutex);
  for (size_t u = 0; u < tally.active.size(); ++u) {
    active[u] += tally.active[u];
    alive[u] += tally.alive[u];
  }
}

// Units innermost: each row is a vector of all units.
template <typename scalar_t>
void count_rows(const UnitView& v, const float* threshold, int64_t* active, int64_t* alive) {
  const auto* z = static_cast<const scalar_t*>(v.data);
  const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / v.units);
  std::mutex mutex;
  at::parallel_for(0, v.outer, grain, [&](int64_t begin, int64_t end) {
    Tally tally(v.units);
    std::vector<int32_t> a(v.units), l(v.units);
    for (int64_t block = begin; block < end; block += kBlock) {
      std::fill(a.begin(), a.end(), 0);
      std::fill(l.begin(), l.end(), 0);
      for (int64_t o = block; o < std::min(end, block + kBlock); ++o) {
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
    merge(tally, mutex, active, alive);
  });
}

// Each (outer, unit) pair owns a contiguous plane of `inner` elements.
template <typename scalar_t>
void count_planes(const UnitView& v, const float* threshold, int64_t* active, int64_t* alive) {
  const auto* z = static_cast<const scalar_t*>(v.data);
  const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / v.inner);
  std::mutex mutex;
  at::parallel_for(0, v.outer * v.units, grain, [&](int64_t begin, int64_t end) {
    Tally tally(v.units);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t o = p / v.units, u = p % v.units;
      count_span(z + o * v.outer_stride + u * v.unit_stride, v.inner, threshold[u],
                 tally.active[u], tally.alive[u]);
    }
    merge(tally, mutex, active, alive);
  });
}

void count_active(const UnitView& v, const float* threshold, int64_t* active, int64_t* alive) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.dtype, "count_active_", [&] {
    if (v.inner == 1) {
      count_rows<scalar_t>(v, threshold, active, alive);
    } else {
      count_planes<scalar_t>(v, threshold, active, alive);
    }
  });
}

}  // namespace

const Loops& isa_loops() {
  static const Loops table{
      leaky_relu,
      leaky_relu_backward,
      prelu,
      prelu_backward_input,
      prelu_backward_weight,
      elu,
      elu_backward,
      count_active,
  };
  return table;
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
