#pragma once
// Device functors over the activation formulas of csrc/activations/, for the elementwise
// skeleton (elementwise.cuh) and the per-unit loops (counting.cuh). Each has one
// non-template operator(), as gpu_kernel needs; the formulas themselves are written once,
// in the activations' host/device scalar overloads. The CUDA twin of the lambdas in
// ops/cpu/loops.cpp.

#include <c10/macros/Macros.h>

#include "activations/leaky_relu.h"

namespace torch_ext::cuda {

// The compute type of an activation: float for act::LeakyRelu<float>.
template <typename A>
struct ValueOf;
template <template <typename> class A, typename T>
struct ValueOf<A<T>> {
  using type = T;
};

template <typename A>
struct Forward {
  using T = typename ValueOf<A>::type;
  A a;
  __device__ T operator()(T x) const { return a.forward(x); }
};

// A forward that takes (and ignores) a per-unit parameter, as the counted loops pass one.
template <typename A>
struct ForwardOfUnit {
  using T = typename ValueOf<A>::type;
  A a;
  __device__ T operator()(T x, T /*unit parameter*/) const { return a.forward(x); }
};

template <typename A>
struct Backward {
  using T = typename ValueOf<A>::type;
  A a;
  __device__ T operator()(T g, T x) const { return a.backward(g, x); }
};

template <typename A>
struct BackwardFromResult {
  using T = typename ValueOf<A>::type;
  A a;
  __device__ T operator()(T g, T y) const { return a.backward_from_result(g, y); }
};

// PReLU: Leaky ReLU whose slope is an input (broadcast weight, or the unit's parameter).
template <typename T>
struct PreluForward {
  __device__ T operator()(T x, T w) const { return act::LeakyRelu<T>{w}.forward(x); }
};

// make(OpMath<T>{}) -> Fn<activation of T>: turns an activation factory into a functor
// factory for cuda::for_each_element.
template <template <typename> class Fn, typename Make>
auto functor_of(const Make& make) {
  return [make](auto tag) { return Fn<decltype(make(tag))>{make(tag)}; };
}

}  // namespace torch_ext::cuda
