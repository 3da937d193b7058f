#pragma once
// Branch and exponential primitives that every activation formula is written with.
//
// The formulas in leaky_relu.h and elu.h are templates over a value type T. These
// overloads make one formula serve three backends: plain scalars (the CPU scalar tail and,
// marked host/device, the CUDA kernels) and at::vec::Vectorized (the CPU vector body).
// Both branches are always evaluated: that is what a vector blend does anyway, and it
// keeps the scalar and vector paths bitwise identical.

#include <c10/macros/Macros.h>

#include <cmath>

#if !defined(__CUDACC__)
#include <ATen/cpu/vec/vec.h>
#endif

namespace torch_ext::act {

// The element type of a value type: float for float and for Vectorized<float>.
template <typename T>
struct ScalarOf {
  using type = T;
};
template <typename T>
using scalar_of_t = typename ScalarOf<T>::type;

// `x > 0 ? if_pos : otherwise`. NaN takes the `otherwise` branch, as in ATen's kernels.
template <typename T>
C10_HOST_DEVICE inline T if_positive(T x, T if_pos, T otherwise) {
  return x > T(0) ? if_pos : otherwise;
}

template <typename T>
C10_HOST_DEVICE inline T exp_of(T x) {
  return std::exp(x);
}

template <typename T>
C10_HOST_DEVICE inline T expm1_of(T x) {
  return std::expm1(x);
}

#if !defined(__CUDACC__)
template <typename T>
struct ScalarOf<at::vec::Vectorized<T>> {
  using type = T;
};

template <typename T>
inline at::vec::Vectorized<T> if_positive(
    const at::vec::Vectorized<T>& x,
    const at::vec::Vectorized<T>& if_pos,
    const at::vec::Vectorized<T>& otherwise) {
  using Vec = at::vec::Vectorized<T>;
  return Vec::blendv(otherwise, if_pos, x > Vec(T(0)));
}

template <typename T>
inline at::vec::Vectorized<T> exp_of(const at::vec::Vectorized<T>& x) {
  return x.exp();
}

template <typename T>
inline at::vec::Vectorized<T> expm1_of(const at::vec::Vectorized<T>& x) {
  return x.expm1();
}

// float: the vector library's expm1 costs ~15x its exp here (about 10 ns per element on
// AVX512), which made ELU and SELU compute-bound. Near 0, where exp(x) - 1 cancels, the
// Taylor series to x^11 (truncation < 3e-9 relative for |x| < 1, below float's 6e-8);
// elsewhere exp(x) - 1, whose result has |value| >= 0.63, so exp's rounding stays under
// an ulp of it. benchmarks/elu_accuracy.py measures the error over every float in [-88, 0].
inline at::vec::Vectorized<float> expm1_of(const at::vec::Vectorized<float>& x) {
  using Vec = at::vec::Vectorized<float>;
  constexpr float kInverseFactorials[] = {1.f / 39916800, 1.f / 3628800, 1.f / 362880,
                                          1.f / 40320,    1.f / 5040,    1.f / 720,
                                          1.f / 120,      1.f / 24,      1.f / 6,
                                          1.f / 2,        1.f};
  Vec series(kInverseFactorials[0]);
  for (size_t k = 1; k < sizeof(kInverseFactorials) / sizeof(float); ++k) {
    series = at::vec::fmadd(series, x, Vec(kInverseFactorials[k]));
  }
  series = series * x;
  return Vec::blendv(x.exp() - Vec(1.f), series, x.abs() < Vec(1.f));
}
#endif

}  // namespace torch_ext::act
