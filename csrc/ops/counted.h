#pragma once
// The counted forwards (leaky_relu_counted, prelu_counted, elu_counted) of every backend: an
// activation and count_active_ (and, when asked, abs_sum_ of its output) in one pass over z
// where z's layout allows.

#include <ATen/core/Tensor.h>

#include <functional>
#include <optional>

#include "ops/loops.h"
#include "ops/unit_view.h"

namespace torch_ext {

// Checks the arguments, allocates the output (laid out as z) and runs `fused(view, out,
// stats)` when z has a unit view and `fusable`; otherwise the plain forward `plain(out)`,
// then count_active_ and (with abs_sum) abs_sum_ of out through the dispatcher.
at::Tensor counted_forward(
    const char* op, const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
    const at::Tensor& alive_threshold, const std::optional<at::Tensor>& abs_sum,
    const std::function<void(const UnitView&, void*, const UnitStats&)>& fused,
    const std::function<void(at::Tensor&)>& plain, bool fusable = true);

// prelu_counted for every backend: PReLU's argument checks, then counted_forward, fused only
// where each unit has one slope (shared, or per channel with the channels as units);
// `fused` also gets the slopes, one per unit, of z's dtype.
at::Tensor prelu_counted_forward(
    const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts, int64_t unit_dim,
    const at::Tensor& alive_threshold, const std::optional<at::Tensor>& abs_sum,
    const std::function<void(const UnitView&, void*, const void*, const UnitStats&)>& fused,
    const std::function<void(at::Tensor&)>& plain);

}  // namespace torch_ext
