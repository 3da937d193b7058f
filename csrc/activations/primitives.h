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
#endif

}  // namespace torch_ext::act
