#pragma once
// The one CPU loop skeleton every elementwise activation kernel goes through.
//
// `for_each_element<N>(iter, f)` applies a generic callable `f` of N arguments to every
// element of a TensorIterator with N inputs and one output. `f` is written once (usually
// as a call into an activation's value type) and instantiated for at::vec::Vectorized;
// TensorIterator supplies the strides, broadcasting and at::parallel_for chunking.
//
// Every element goes through the vector code, whatever its position: whole vectors, the
// last partial vector of a row (loaded masked, lanes past the end 0), strided or broadcast
// operands (gathered into a vector). A scalar tail with std::exp would round differently
// from the vector library's exp, so an element's bits would depend on where it sits.
// bfloat16 and float16 are widened to float, computed, and rounded once, as ATen does
// (reduced_float.h).
//
// Outputs past the last-level cache are written with streaming stores (streaming.h):
// same values, a third less memory traffic for a forward.
//
// Compiled once per CPU ISA (see loops.cpp): CPU_CAPABILITY selects the Vectorized
// specialisation.

#include <ATen/Dispatch.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/native/TensorIterator.h>

#include <algorithm>
#include <array>
#include <tuple>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include "ops/cpu/reduced_float.h"
#include "ops/cpu/streaming.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

template <typename T, size_t>
using Repeat = T;

template <typename scalar_t, typename F, typename Indices>
struct VectorBody;

template <typename scalar_t, typename F, size_t... I>
struct VectorBody<scalar_t, F, std::index_sequence<I...>> {
  using Vec = at::vec::Vectorized<scalar_t>;
  F f;
  Vec operator()(Repeat<Vec, I>... args) const {
    if constexpr (at::is_reduced_floating_point_v<scalar_t>) {
      // One reduced vector holds two float vectors: compute each half in float (lanes in
      // any order: every operand is split the same way, reduced_float.h).
      const auto halves = std::make_tuple(elementwise_halves<scalar_t>(args)...);
      return from_elementwise_halves<scalar_t>(f(std::get<0>(std::get<I>(halves))...),
                                               f(std::get<1>(std::get<I>(halves))...));
    } else {
      return f(args...);
    }
  }
};

// Elements [i, i + m) of an operand with byte stride `stride`, as one vector (m <= size();
// lanes past m are 0).
template <typename scalar_t>
at::vec::Vectorized<scalar_t> load_operand(const char* base, int64_t stride, int64_t i, int64_t m) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const auto* p = reinterpret_cast<const scalar_t*>(base);
  if (stride == static_cast<int64_t>(sizeof(scalar_t))) return Vec::loadu(p + i, m);
  if (stride == 0) return Vec(*p);  // broadcast: lanes past m are never stored
  scalar_t lanes[Vec::size()] = {};
  for (int64_t j = 0; j < m; ++j) {
    lanes[j] = *reinterpret_cast<const scalar_t*>(base + (i + j) * stride);
  }
  return Vec::loadu(lanes);
}

template <typename scalar_t>
void store_output(const at::vec::Vectorized<scalar_t>& v, char* base, int64_t stride, int64_t i,
                  int64_t m) {
  using Vec = at::vec::Vectorized<scalar_t>;
  if (stride == static_cast<int64_t>(sizeof(scalar_t))) {
    v.store(reinterpret_cast<scalar_t*>(base) + i, m);
    return;
  }
  scalar_t lanes[Vec::size()];
  v.store(lanes);
  for (int64_t j = 0; j < m; ++j) *reinterpret_cast<scalar_t*>(base + (i + j) * stride) = lanes[j];
}

// Elements [i, i + m) of one inner loop, through the vector body, for any strides.
// The loops below are flattened: the body and the activation's whole formula are inlined
// into them. Otherwise whether the compiler inlines the formula (else a call per vector:
// ELU 13% slower) depends on its inlining budget for all of loops.cpp, and so on what else
// that file instantiates.
template <typename scalar_t, typename Body, size_t... I>
__attribute__((flatten)) void vector_step(const Body& body, char* const* data,
                                          const int64_t* strides, int64_t i, int64_t m,
                                          std::index_sequence<I...>) {
  store_output<scalar_t>(body(load_operand<scalar_t>(data[I + 1], strides[I + 1], i, m)...),
                         data[0], strides[0], i, m);
}

// The whole vectors of a dense inner loop (output and inputs contiguous, or inputs
// broadcast with stride 0) from element `begin` on, two per iteration as ATen's loops do;
// returns where they end. kStream: the output is written with streaming stores, and
// out + begin is aligned for them.
template <bool kStream, typename scalar_t, typename Body, size_t... I>
__attribute__((flatten)) int64_t dense_vectors(const Body& body, char* const* data,
                                               const int64_t* strides, int64_t begin, int64_t n,
                                               std::index_sequence<I...>) {
  using Vec = at::vec::Vectorized<scalar_t>;
  constexpr int64_t kWidth = Vec::size();
  auto* out = reinterpret_cast<scalar_t*>(data[0]);
  // Copied out of data/strides: a vector store may alias any memory, so read through
  // them, each pointer and stride was reloaded and tested for every vector. Locals stay
  // in registers and the tests are hoisted.
  const std::array<const scalar_t*, sizeof...(I)> in{
      reinterpret_cast<const scalar_t*>(data[I + 1])...};
  const std::array<bool, sizeof...(I)> broadcast{(strides[I + 1] == 0)...};
  const auto load = [&](size_t k, int64_t i) {
    return broadcast[k] ? Vec(*in[k]) : Vec::loadu(in[k] + i);
  };
  const auto put = [&](const Vec& v, int64_t i) { store_vector(v, out + i, kWidth, kStream); };
  int64_t i = begin;
  for (; i + 2 * kWidth <= n; i += 2 * kWidth) {
    const Vec first = body(load(I, i)...);
    const Vec second = body(load(I, i + kWidth)...);
    put(first, i);
    put(second, i + kWidth);
  }
  for (; i + kWidth <= n; i += kWidth) put(body(load(I, i)...), i);
  return i;
}

// Whether an inner loop's operands are dense: output and inputs contiguous, or inputs
// broadcast (stride 0).
template <typename scalar_t, size_t... I>
bool dense_inner(const int64_t* strides, std::index_sequence<I...>) {
  constexpr int64_t kSize = sizeof(scalar_t);
  return strides[0] == kSize && ((strides[I + 1] == kSize || strides[I + 1] == 0) && ...);
}

// One inner loop of n elements: data[0] the output, data[1 + k] input k; `dense` as
// dense_inner says of `strides`. `stream` (never without kMayStream, which instantiates
// the streaming loop): a dense output is streamed from its first aligned element on, the
// elements before it go through one partial vector (an element's result does not depend
// on its lane).
template <bool kMayStream, typename scalar_t, typename Body, size_t... I>
void vector_loop(const Body& body, char* const* data, const int64_t* strides, int64_t n, bool dense,
                 bool stream, std::index_sequence<I...> inputs) {
  constexpr int64_t kWidth = at::vec::Vectorized<scalar_t>::size();
  int64_t i = 0;
  if (dense) {
    int64_t head = -1;
    if constexpr (kMayStream) {
      if (stream) head = elements_before_alignment(reinterpret_cast<scalar_t*>(data[0]), n);
    }
    if (kMayStream && head >= 0) {
      if (head > 0) vector_step<scalar_t>(body, data, strides, 0, head, inputs);
      i = dense_vectors<kMayStream, scalar_t>(body, data, strides, head, n, inputs);
    } else {
      i = dense_vectors<false, scalar_t>(body, data, strides, 0, n, inputs);
    }
  }
  for (; i < n; i += kWidth) {
    vector_step<scalar_t>(body, data, strides, i, std::min(kWidth, n - i), inputs);
  }
}

// All `rows` rows of a dense 2-D loop written with normal stores, in one function whose
// pointers, strides and broadcast flags stay in registers: per row only its whole vectors
// and a partial last vector (loaded masked, as vector_step does). Row by row through
// vector_loop, PReLU on [16384, 16] (one vector a row) took about twice native's time and
// on [4096, 64] 1.25-1.4x, in set-up per row. kTwoAtATime: long rows take two vectors per
// iteration (the ELU family 3-7% faster: the exp's chains overlap); short rows one, in
// a loop of its own (with the two-vector loop beside it, unused, GCC's code for rows of
// 8-16 float32 elements ran 1.5-2.3x slower).
template <bool kTwoAtATime, typename scalar_t, typename Body, size_t... I>
__attribute__((flatten)) void dense_rows(const Body& body, char** base, const int64_t* strides,
                                         int64_t n, int64_t rows, std::index_sequence<I...>) {
  using Vec = at::vec::Vectorized<scalar_t>;
  constexpr int64_t kWidth = Vec::size();
  constexpr size_t kTensors = sizeof...(I) + 1;
  char* const out = base[0];
  const std::array<const char*, sizeof...(I)> in{base[I + 1]...};
  const std::array<bool, sizeof...(I)> broadcast{(strides[I + 1] == 0)...};
  const int64_t out_step = strides[kTensors];
  const std::array<int64_t, sizeof...(I)> in_step{strides[kTensors + I + 1]...};
  const int64_t whole = n / kWidth * kWidth;  // elements in whole vectors, in every row
  for (int64_t r = 0; r < rows; ++r) {
    // Each row's pointers from r, not advanced in place: no chain from one row to the next.
    auto* y = reinterpret_cast<scalar_t*>(out + r * out_step);
    const std::array<const scalar_t*, sizeof...(I)> x{
        reinterpret_cast<const scalar_t*>(in[I] + r * in_step[I])...};
    const auto load = [&](size_t k, int64_t i, int64_t m) {
      if (broadcast[k]) return Vec(*x[k]);
      return m == kWidth ? Vec::loadu(x[k] + i) : Vec::loadu(x[k] + i, m);
    };
    int64_t i = 0;
    if constexpr (kTwoAtATime) {
      for (; i + 2 * kWidth <= whole; i += 2 * kWidth) {
        const Vec first = body(load(I, i, kWidth)...);
        const Vec second = body(load(I, i + kWidth, kWidth)...);
        first.store(y + i);
        second.store(y + i + kWidth);
      }
    }
    for (; i < whole; i += kWidth) body(load(I, i, kWidth)...).store(y + i);
    if (whole < n) body(load(I, whole, n - whole)...).store(y + whole, n - whole);
  }
}

// The 2-D loop TensorIterator::for_each runs: `rows` inner loops of `n` elements, each
// operand's pointer advanced by its outer stride (strides[ntensors + k]) between rows.
// Written out rather than a 1-D loop through TensorIterator's loop_2d_from_1d, whose
// SmallVector GCC flags with -Wmaybe-uninitialized in the AVX2 build. Dense rows with
// normal stores go to dense_rows; strided or streamed ones row by row.
template <bool kMayStream, typename scalar_t, typename Body, size_t... I>
void vector_loop_2d(const Body& body, char** base, const int64_t* strides, int64_t n, int64_t rows,
                    bool stream, std::index_sequence<I...> inputs) {
  constexpr size_t kTensors = sizeof...(I) + 1;
  std::array<char*, kTensors> data;
  std::array<int64_t, kTensors> outer;
  std::copy_n(base, kTensors, data.begin());
  std::copy_n(strides + kTensors, kTensors, outer.begin());
  const bool dense = dense_inner<scalar_t>(strides, inputs);
  if (dense && !stream) {
    constexpr int64_t kLongRow = 4 * at::vec::Vectorized<scalar_t>::size();
    if (n >= kLongRow) {
      dense_rows<true, scalar_t>(body, base, strides, n, rows, inputs);
    } else {
      dense_rows<false, scalar_t>(body, base, strides, n, rows, inputs);
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (r > 0) {
      for (size_t k = 0; k < kTensors; ++k) data[k] += outer[k];
    }
    vector_loop<kMayStream, scalar_t>(body, data.data(), strides, n, dense, stream, inputs);
  }
}

// Whether the iterator's one output is streamed (streaming.h): written densely, out of
// place (no input starts inside it: the in-place forms pass it as their input) and at least
// streaming_min_bytes() of it. Inputs are seen through their data pointers only: the
// iterator does not own every input tensor it was given.
inline bool streams_output(const at::TensorIteratorBase& iter) {
  const at::TensorBase& out = iter.tensor_base(0);
  const auto bytes = static_cast<int64_t>(out.nbytes());
  if (!out.is_non_overlapping_and_dense() || !streams(bytes)) return false;
  const auto* begin = static_cast<const char*>(out.const_data_ptr());
  for (int k = 1; k < iter.ntensors(); ++k) {
    const auto* in = static_cast<const char*>(iter.data_ptr(k));
    if (in >= begin && in < begin + bytes) return false;
  }
  return true;
}

// Which outputs past the last-level cache a loop streams. kFullWidth: float and double only,
// for the ELU family's backward, whose bfloat16/float16 loops are bound by the exp rather
// than by their 4-6 bytes of traffic per element, and ran 4-15% slower streamed
// (bench_ops.py --sweep, AVX-512); streaming gains their float32 backward 1.1-1.3x. kNone:
// the ELU family's forward, bound by its expm1 in every dtype, ran 1.2x slower streamed in
// float32 too (2^24 elements, 1 and 2 threads, three runs). A loop that never streams is not
// compiled with streaming stores.
enum class Streams { kAll, kFullWidth, kNone };

template <Streams kWhich, typename scalar_t>
constexpr bool kMayStream = kWhich == Streams::kAll || (kWhich == Streams::kFullWidth &&
                                                        !at::is_reduced_floating_point_v<scalar_t>);

// Whether the thread running this keeps denormal operands and results: neither FTZ nor
// DAZ set in MXCSR (elsewhere not known: no). torch.set_flush_denormal sets them on its
// own thread only, and a new thread (an at::parallel_for worker) inherits its creator's
// mode at creation, so threads of one op may differ.
inline bool denormals_kept() {
#if defined(__x86_64__) || defined(_M_X64)
  constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x40;
  return (_mm_getcsr() & (kFlushToZero | kDenormalsAreZero)) == 0;
#else
  return false;
#endif
}

// Every chunk of `iter` through the vector loop of the element function `pick` chooses:
// pick(run) calls run(f) with one, on the thread that runs the chunk.
template <size_t N, Streams kWhich, typename Pick>
void for_each_chunk(at::TensorIteratorBase& iter, const Pick& pick) {
  TORCH_INTERNAL_ASSERT(iter.ninputs() == static_cast<int>(N) && iter.noutputs() == 1);
  const bool may_stream = kWhich != Streams::kNone && streams_output(iter);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, iter.common_dtype(), "torch_ext_elementwise", [&] {
        using Indices = std::make_index_sequence<N>;
        constexpr bool kMay = kMayStream<kWhich, scalar_t>;
        const bool stream = kMay && may_stream;
        iter.for_each([&](char** base, const int64_t* strides, int64_t n, int64_t rows) {
          pick([&](const auto& f) {
            const VectorBody<scalar_t, std::decay_t<decltype(f)>, Indices> body{f};
            vector_loop_2d<kMay, scalar_t>(body, base, strides, n, rows, stream, Indices{});
          });
          if (stream) stream_fence();
        });
      });
}

template <size_t N, Streams kWhich = Streams::kAll, typename F>
void for_each_element(at::TensorIteratorBase& iter, const F& f) {
  for_each_chunk<N, kWhich>(iter, [&](const auto& run) { run(f); });
}

// `kept` on the chunks run by a thread that keeps denormals, `flushed` on the others: a
// body that leaves out a multiply by 1 (which flushes a denormal where the thread flushes
// them) gives the same bits as one that does not where the thread keeps them.
template <size_t N, Streams kWhich, typename Kept, typename Flushed>
void for_each_element(at::TensorIteratorBase& iter, const Kept& kept, const Flushed& flushed) {
  for_each_chunk<N, kWhich>(iter, [&](const auto& run) {
    if (denormals_kept()) {
      run(kept);
    } else {
      run(flushed);
    }
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
