#pragma once
// PReLU's backward in one pass on CUDA: grad_input written elementwise, the weight gradient
// reduced per channel inside the kernel into per-block partial sums ([channels, blocks],
// summed afterwards in a fixed order: deterministic, unlike atomic float adds), never a
// full-size temporary. On the per-unit skeleton of unit_loops.cuh.

#include <ATen/OpMathType.h>

#include <cstdint>

#include "activations/leaky_relu.h"
#include "ops/cuda/unit_loops.cuh"

namespace torch_ext::cuda {

// One element: writes grad_input, returns the element's weight-gradient term (in
// opmath_t), which reduce_units sums per channel.
template <typename scalar_t>
struct PreluBackwardStep {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* x;
  const scalar_t* g;
  scalar_t* grad_input;
  const scalar_t* slopes;  // one per channel
  __device__ opmath_t operator()(int64_t offset, int64_t u) const {
    const opmath_t xv = static_cast<opmath_t>(x[offset]), gv = static_cast<opmath_t>(g[offset]);
    const act::LeakyRelu<opmath_t> f{static_cast<opmath_t>(slopes[u])};
    grad_input[offset] = static_cast<scalar_t>(f.backward(gv, xv));
    return f.slope_backward(gv, xv);
  }
};

// The block's sum for channel u: partials[u, slice].
template <typename opmath_t>
struct WritePartial {
  opmath_t* partials;
  int64_t slices;
  __device__ void operator()(int64_t u, int64_t slice, opmath_t sum) const {
    partials[u * slices + slice] = sum;
  }
};

}  // namespace torch_ext::cuda
