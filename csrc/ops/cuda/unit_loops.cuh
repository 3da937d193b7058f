#pragma once
// The CUDA per-unit loops: the dead-neuron counting (count_active_ and the counted
// forwards) and PReLU's weight gradient reduce per unit inside the kernel. Each block walks
// a slice of one unit's elements (planes) or of a tile of 32 units (rows), sums a per-thread
// accumulator across the block in shared memory, and hands the block's total to `commit`
// (an atomic add of counts, or a per-block partial sum): no full-size temporary, no host
// sync. The CUDA twin of ops/cpu/unit_loops.h.

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdint>

#include "ops/unit_view.h"

namespace torch_ext::cuda {

constexpr int kPlaneThreads = 256;
constexpr int64_t kPlaneChunk = 16 * kPlaneThreads;
constexpr int kRowUnits = 32;  // a warp reads 32 consecutive units of a row: coalesced
constexpr int kRowLanes = 8;   // rows a block walks at once
constexpr int kMaxGridY = 65535;

// Sums, per result, kTerms of the block's kThreads values (Acc: an aggregate with
// operator+), the terms of one result kThreads / kTerms threads apart; each result lands in
// the threads below kThreads / kTerms. Planes: one result (thread 0); rows: one per unit of
// the tile (row lane 0).
template <typename Acc, int kThreads, int kTerms>
__device__ Acc block_sum(Acc value, int thread) {
  __shared__ Acc shared[kThreads];
  shared[thread] = value;
  __syncthreads();
  constexpr int kStride = kThreads / kTerms;
  for (int half = kTerms / 2; half > 0; half /= 2) {
    if (thread / kStride < half) shared[thread] = shared[thread] + shared[thread + half * kStride];
    __syncthreads();
  }
  Acc total = shared[thread];
  __syncthreads();  // the next call may reuse `shared`
  return total;
}

// Planes: grid (slices, units). A unit's elements are split into items: a chunk of at most
// kPlaneChunk elements of one plane (so that a few large planes still fill the GPU); block
// x walks items x, x + slices, ... with all its threads along the chunk.
template <typename Acc, typename Step, typename Commit>
__global__ void reduce_planes(UnitView v, Step step, Commit commit) {
  const int64_t chunks = (v.inner + kPlaneChunk - 1) / kPlaneChunk;
  for (int64_t u = blockIdx.y; u < v.units; u += gridDim.y) {
    Acc acc{};
    for (int64_t item = blockIdx.x; item < v.outer * chunks; item += gridDim.x) {
      const int64_t o = item / chunks, begin = (item - o * chunks) * kPlaneChunk;
      const int64_t end = begin + kPlaneChunk < v.inner ? begin + kPlaneChunk : v.inner;
      const int64_t plane = o * v.outer_stride + u * v.unit_stride;
#pragma unroll 4  // several loads in flight per thread
      for (int64_t i = begin + threadIdx.x; i < end; i += kPlaneThreads)
        acc = acc + step(plane + i, u);
    }
    acc = block_sum<Acc, kPlaneThreads, kPlaneThreads>(acc, threadIdx.x);
    if (threadIdx.x == 0) commit(u, blockIdx.x, acc);
  }
}

// Rows: grid (slices, unit tiles), block (kRowUnits, kRowLanes); thread (x, y) of block
// (s, t) walks unit t * kRowUnits + x over rows s * kRowLanes + y, stepping by
// slices * kRowLanes.
template <typename Acc, typename Step, typename Commit>
__global__ void reduce_rows(UnitView v, Step step, Commit commit) {
  const int thread = threadIdx.y * kRowUnits + threadIdx.x;
  for (int64_t tile = blockIdx.y; tile * kRowUnits < v.units; tile += gridDim.y) {
    const int64_t u = tile * kRowUnits + threadIdx.x;
    Acc acc{};
    if (u < v.units) {
#pragma unroll 4  // several loads in flight per thread
      for (int64_t o = int64_t{blockIdx.x} * kRowLanes + threadIdx.y; o < v.outer;
           o += int64_t{gridDim.x} * kRowLanes) {
        acc = acc + step(o * v.outer_stride + u * v.unit_stride, u);
      }
    }
    acc = block_sum<Acc, kRowUnits * kRowLanes, kRowLanes>(acc, thread);
    if (threadIdx.y == 0 && u < v.units) commit(u, blockIdx.x, acc);
  }
}

// Grid y of `reduce_units`: one block row per unit (planes) or tile of kRowUnits units (rows).
inline int64_t unit_blocks(const UnitView& v) {
  const int64_t blocks = v.inner == 1 ? (v.units + kRowUnits - 1) / kRowUnits : v.units;
  return std::min<int64_t>(blocks, kMaxGridY);
}

// Grid x of `reduce_units`: slices of each unit's (or tile's) elements, enough for about 8
// resident blocks per SM overall, and no more than there are rows (of kRowLanes) or plane
// chunks to walk.
inline int64_t reduce_slices(const UnitView& v) {
  const int64_t items = v.inner == 1 ? (v.outer + kRowLanes - 1) / kRowLanes
                                     : v.outer * ((v.inner + kPlaneChunk - 1) / kPlaneChunk);
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t wanted = (8 * sms + unit_blocks(v) - 1) / unit_blocks(v);
  return std::max<int64_t>(1, std::min(wanted, items));
}

// Runs step(offset, unit) -> Acc over every element of v on the current stream, then
// commit(unit, slice, block_total) once per block and unit; slices = reduce_slices(v).
template <typename Acc, typename Step, typename Commit>
void reduce_units(const UnitView& v, const Step& step, const Commit& commit) {
  if (v.outer == 0 || v.units == 0 || v.inner == 0) return;
  const auto stream = at::cuda::getCurrentCUDAStream();
  const dim3 grid(reduce_slices(v), unit_blocks(v));
  if (v.inner == 1) {
    reduce_rows<Acc><<<grid, dim3(kRowUnits, kRowLanes), 0, stream>>>(v, step, commit);
  } else {
    reduce_planes<Acc><<<grid, kPlaneThreads, 0, stream>>>(v, step, commit);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace torch_ext::cuda
