#pragma once
// The CPU counted forwards (leaky_relu_counted, prelu_counted, elu_counted): an activation
// and count_active_ in one pass over z.

#include <ATen/core/Tensor.h>

#include <functional>
#include <optional>

#include "ops/cpu/loops.h"

namespace torch_ext::cpu {

// z's [outer, units, inner] view along `dim`, if its layout has one (see UnitView).
std::optional<UnitView> unit_view(const at::Tensor& z, int64_t dim);

// Checks the arguments, allocates the output and runs `fused(view, out, threshold, active,
// alive)` when z has a unit view and `fusable`; otherwise the plain forward `plain(out)`
// and then the counting, one after the other.
at::Tensor counted_forward(
    const char* op, const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
    const at::Tensor& alive_threshold,
    const std::function<void(const UnitView&, void*, const float*, int64_t*, int64_t*)>& fused,
    const std::function<void(at::Tensor&)>& plain, bool fusable = true);

}  // namespace torch_ext::cpu
