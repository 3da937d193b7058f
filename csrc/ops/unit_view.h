#pragma once
// A tensor seen per unit (a neuron, a channel) for the dead-neuron statistics and PReLU's
// weight gradient: the layout every backend's per-unit loops walk.

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <optional>

namespace torch_ext {

// z seen as [outer, units, inner], inner contiguous: element (o, u, i) lies at
// data + o * outer_stride + u * unit_stride + i. inner == 1 is the "rows" layout (Linear
// outputs, channels_last), inner > 1 the "planes" layout (NCHW).
struct UnitView {
  const void* data;
  c10::ScalarType dtype;
  int64_t outer, units, inner;
  int64_t outer_stride, unit_stride;
};

// z's view along `dim`, if its layout has one: units innermost in memory give rows, a
// contiguous tensor gives planes; other layouts have none.
std::optional<UnitView> unit_view(const at::Tensor& z, int64_t dim);

// z's view along `dim`; a layout without one is first copied contiguous into `storage`
// (which must outlive the view's use).
UnitView unit_view_or_copy(const at::Tensor& z, int64_t dim, at::Tensor& storage);

}  // namespace torch_ext
