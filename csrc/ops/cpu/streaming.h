#pragma once
// Non-temporal ("streaming") stores, for outputs larger than the last-level cache.
//
// A normal store to a line that is not in cache first reads the line from memory
// (read-for-ownership): an out-of-place float32 forward moves 12 bytes per element (read x,
// read y's line, write y) where 8 would do, a backward from two inputs 16 where 12 would
// do. A non-temporal store writes whole lines through the write-combining buffers, without
// that read and without keeping the line in cache. That only pays where the output would
// not stay in cache anyway: an output at least as large as the last-level cache. Below,
// the next layer reads the output from cache, and streaming it out would cost it those
// hits; in place, the line was just read, so there is no read to save. Neither streams.
//
// The loops (elementwise.h, sign_mask.h, prelu_backward.h) store the elements before the
// first vector-aligned one normally, whole aligned vectors with stream_vector, the last
// partial vector normally, and fence (stream_fence) before their thread's chunk is done.
// Which store writes a value never changes the value: the bits are those of the normal
// path (tests/python/test_build.py compares them with streaming forced).

#include <cstdint>
#include <string>
#include <type_traits>

#if defined(CPU_CAPABILITY)
#include <ATen/cpu/vec/vec.h>
#endif
#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace torch_ext::cpu {

// x86-64 has non-temporal stores on every ISA build (SSE2's on DEFAULT); elsewhere the
// loops keep normal stores.
#if defined(__SSE2__)
constexpr bool kHaveStreamingStores = true;
#else
constexpr bool kHaveStreamingStores = false;
#endif

// The last-level cache, as read once (streaming.cpp): its size in bytes, and where that came from.
struct CacheInfo {
  int64_t bytes;
  std::string source;
};
const CacheInfo& last_level_cache();

// Outputs of at least this many bytes are streamed: the last-level cache's size, or
// TORCH_EXT_STREAMING_MIN_BYTES (read once; 0 streams every out-of-place output, which is
// how the tests check the streaming path on small tensors), or what
// set_streaming_min_bytes last set (the benchmarks compare both paths in one run).
int64_t streaming_min_bytes();
// Sets the threshold; returns the previous one.
int64_t set_streaming_min_bytes(int64_t bytes);

// Whether an out-of-place output of `bytes`, written densely (no gaps, no overlap), streams.
inline bool streams(int64_t bytes) {
  return kHaveStreamingStores && bytes >= streaming_min_bytes();
}

// --- The stores, in the loops compiled per ISA (loops.cpp) ---------------------------------
#if defined(CPU_CAPABILITY)
inline namespace CPU_CAPABILITY {

// A streamed vector's address is a multiple of its size: 64 bytes on AVX-512, 32 on AVX2
// and DEFAULT.
template <typename scalar_t>
constexpr int64_t kStreamAlignment = at::vec::Vectorized<scalar_t>::size() * sizeof(scalar_t);

template <typename scalar_t>
bool stream_aligned(const scalar_t* p) {
  return reinterpret_cast<uintptr_t>(p) % kStreamAlignment<scalar_t> == 0;
}

// The elements of an output at `out` before its first one aligned for stream_vector (at most
// `count`), or -1 where that is not a multiple of `multiple` (the sign mask's loops need
// whole bytes of mask: 8 elements) or no element is aligned.
template <typename scalar_t>
int64_t elements_before_alignment(const scalar_t* out, int64_t count, int64_t multiple = 1) {
  const auto misaligned =
      static_cast<int64_t>(reinterpret_cast<uintptr_t>(out) % kStreamAlignment<scalar_t>);
  if (misaligned % static_cast<int64_t>(sizeof(scalar_t)) != 0) return -1;
  const int64_t head =
      (kStreamAlignment<scalar_t> - misaligned) % kStreamAlignment<scalar_t> / sizeof(scalar_t);
  if (head >= count) return count;
  return head % multiple == 0 ? head : -1;
}

// Stores v at p (aligned: stream_aligned(p)) without reading p's line first.
template <typename scalar_t>
void stream_vector(const at::vec::Vectorized<scalar_t>& v, scalar_t* p) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<scalar_t, float>) {
    _mm512_stream_ps(p, v);
  } else if constexpr (std::is_same_v<scalar_t, double>) {
    _mm512_stream_pd(p, v);
  } else {  // bfloat16, float16: Vectorized holds their bits as integers
    _mm512_stream_si512(reinterpret_cast<__m512i*>(p), v);
  }
#elif defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<scalar_t, float>) {
    _mm256_stream_ps(p, v);
  } else if constexpr (std::is_same_v<scalar_t, double>) {
    _mm256_stream_pd(p, v);
  } else {
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p), v);
  }
#elif defined(__SSE2__)
  // The generic Vectorized is an array: its 32 bytes as two 16-byte streaming stores.
  using Vec = at::vec::Vectorized<scalar_t>;
  static_assert(kStreamAlignment<scalar_t> % 16 == 0);
  alignas(64) scalar_t lanes[Vec::size()];
  v.store(lanes);
  for (int64_t k = 0; k < kStreamAlignment<scalar_t> / 16; ++k) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(p) + k,
                     _mm_load_si128(reinterpret_cast<const __m128i*>(lanes) + k));
  }
#else
  v.store(p);
#endif
}

// Stores the first m lanes of v at p: streamed (a whole vector, stream_aligned(p)) or not.
template <typename scalar_t>
void store_vector(const at::vec::Vectorized<scalar_t>& v, scalar_t* p, int64_t m, bool streamed) {
  if (streamed) {
    stream_vector(v, p);
  } else {
    v.store(p, m);
  }
}

// Streaming stores are weakly ordered: a thread that made some fences before its part of
// the output is handed over (the end of its chunk of a parallel loop).
inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

}  // namespace CPU_CAPABILITY
#endif
}  // namespace torch_ext::cpu
