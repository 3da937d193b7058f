#pragma once
// The one CUDA loop skeleton every elementwise activation kernel goes through: the CUDA
// twin of ops/cpu/elementwise.h.
//
// `for_each_element<N>(iter, make)` applies, to every element of a TensorIterator with N
// inputs and one output, the functor `make(OpMath<opmath_t>{})` returns: a device functor
// of N opmath_t arguments (float for float, bfloat16 and float16; double for double),
// usually a call into an activation's formula (csrc/activations/), whose scalar overloads
// are host/device. ATen's gpu_kernel supplies the launch: 128-bit vector loads and stores
// on contiguous tensors, offset calculators for any other strides, splitting past 2^31
// elements into 32-bit-indexed launches, the current stream, and a launch check.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/TensorIterator.h>
#include <ATen/native/cuda/Loops.cuh>

#include <utility>

namespace torch_ext::cuda {

// Names the compute type for a functor factory: make(OpMath<T>{}) builds the functor for T.
template <typename T>
struct OpMath {
  using type = T;
};

template <typename T, size_t>
using Repeat = T;

template <typename scalar_t, typename F, typename Indices>
struct Widened;

// Loads scalar_t, computes in opmath_t, rounds the result once.
template <typename scalar_t, typename F, size_t... I>
struct Widened<scalar_t, F, std::index_sequence<I...>> {
  using opmath_t = at::opmath_type<scalar_t>;
  F f;
  // [[maybe_unused]]: nvcc's host stub of a device function never reads its arguments.
  __device__ scalar_t operator()([[maybe_unused]] Repeat<scalar_t, I>... args) const {
    return static_cast<scalar_t>(f(static_cast<opmath_t>(args)...));
  }
};

template <size_t N, typename Make>
void for_each_element(at::TensorIteratorBase& iter, const Make& make) {
  TORCH_INTERNAL_ASSERT(iter.ninputs() == static_cast<int>(N) && iter.noutputs() == 1);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, iter.common_dtype(), "torch_ext_elementwise_cuda", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        using F = decltype(make(OpMath<opmath_t>{}));
        at::native::gpu_kernel(
            iter, Widened<scalar_t, F, std::make_index_sequence<N>>{make(OpMath<opmath_t>{})});
      });
}

}  // namespace torch_ext::cuda
