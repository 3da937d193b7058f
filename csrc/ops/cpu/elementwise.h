#pragma once
// The one CPU loop skeleton every activation kernel goes through.
//
// `for_each_element<N>(iter, f)` applies a generic callable `f` of N arguments to every
// element of a TensorIterator with N inputs and one output. `f` is written once (usually
// as a call into an activation's value type) and is instantiated for scalars and for
// at::vec::Vectorized; TensorIterator supplies the strides, broadcasting and
// at::parallel_for chunking, and picks the vector body on contiguous inner loops.
// bfloat16 and float16 are widened to float, computed, and rounded once, as ATen does.
//
// Compiled once per CPU ISA (see loops.cpp): CPU_CAPABILITY selects the Vectorized
// specialisation.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/native/TensorIterator.h>
#include <ATen/native/cpu/Loops.h>

#include <tuple>
#include <utility>

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

template <typename T, size_t>
using Repeat = T;

template <typename scalar_t, typename F, typename Indices>
struct ScalarBody;

template <typename scalar_t, typename F, size_t... I>
struct ScalarBody<scalar_t, F, std::index_sequence<I...>> {
  using opmath_t = at::opmath_type<scalar_t>;
  F f;
  scalar_t operator()(Repeat<scalar_t, I>... args) const {
    return static_cast<scalar_t>(f(static_cast<opmath_t>(args)...));
  }
};

template <typename scalar_t, typename F, typename Indices>
struct VectorBody;

template <typename scalar_t, typename F, size_t... I>
struct VectorBody<scalar_t, F, std::index_sequence<I...>> {
  using Vec = at::vec::Vectorized<scalar_t>;
  F f;
  Vec operator()(Repeat<Vec, I>... args) const {
    if constexpr (at::is_reduced_floating_point_v<scalar_t>) {
      // One reduced vector holds two float vectors: compute each half in float.
      const auto halves = std::make_tuple(at::vec::convert_to_float<scalar_t>(args)...);
      return at::vec::convert_from_float<scalar_t>(f(std::get<0>(std::get<I>(halves))...),
                                                   f(std::get<1>(std::get<I>(halves))...));
    } else {
      return f(args...);
    }
  }
};

template <size_t N, typename F>
void for_each_element(at::TensorIteratorBase& iter, const F& f) {
  TORCH_INTERNAL_ASSERT(iter.ninputs() == static_cast<int>(N) && iter.noutputs() == 1);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, iter.common_dtype(), "torch_ext_elementwise", [&] {
        using Indices = std::make_index_sequence<N>;
        at::native::cpu_kernel_vec(iter, ScalarBody<scalar_t, F, Indices>{f},
                                   VectorBody<scalar_t, F, Indices>{f});
      });
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
