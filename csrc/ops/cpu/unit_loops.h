#pragma once
// The parallel skeleton of every per-unit CPU loop (the dead-neuron counts, the counted
// forwards in counting.h, PReLU's one-pass backward in prelu_backward.h): z is walked as
// rows (units innermost) or as contiguous per-unit planes, in parallel; each chunk keeps
// its own state, merged once. Included by loops.cpp only (per CPU ISA).

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/unit_view.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

// At most this many chunks: enough to keep any thread count busy, few enough that their
// states (one per chunk) stay small.
constexpr int64_t kMaxChunks = 64;

// The parallel skeleton of every per-unit loop: [0, n) in at most kMaxChunks chunks, each of
// at least `grain`; each chunk starts from its own copy of `initial` (per-unit state, sized
// for what the loop keeps) and runs body(state, begin, end);
// then the states are merged by merge(state) in chunk order. Chunks never share a counter or
// a sum, and the partition and the merge order depend only on n and grain, never on the
// thread count or thread timing: floating-point sums (PReLU's weight gradient) have the
// same bits on 1 thread or 64.
template <typename State, typename Body, typename Merge>
void parallel_units(int64_t n, int64_t grain, const State& initial, const Body& body,
                    const Merge& merge) {
  if (n <= 0) return;
  const int64_t size = std::max({int64_t{1}, grain, (n + kMaxChunks - 1) / kMaxChunks});
  const int64_t chunks = (n + size - 1) / size;
  std::vector<State> states(chunks, initial);
  at::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) body(states[c], c * size, std::min(n, (c + 1) * size));
  });
  for (const State& state : states) merge(state);
}

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
