#pragma once
// The CPU loops of the per-unit statistics (count_active_, abs_sum_, the counted forwards),
// for the loops table (ops/cpu/loops.cpp); see ops/loops.h for what each does. Compiled
// once per CPU ISA in a file of their own (counting_loops.cpp): their many instantiations
// (rule x abs sums x dtype x activation) would otherwise spend the compiler's inlining
// budget for loops.cpp and slow its elementwise loops.

#include <cstdint>

#include "activations/elu_family.h"
#include "ops/loops.h"
#include "ops/unit_view.h"

namespace torch_ext::cpu {
inline namespace CPU_CAPABILITY {

void count_active(const UnitView& v, const UnitStats& stats);
void abs_sum(const UnitView& v, double* sums);
void leaky_relu_counted(const UnitView& v, void* out, double negative_slope,
                        const UnitStats& stats);
void prelu_counted(const UnitView& v, void* out, const void* slopes, const UnitStats& stats);
void elu_counted(const UnitView& v, void* out, const act::EluParams& p, const UnitStats& stats);

}  // namespace CPU_CAPABILITY
}  // namespace torch_ext::cpu
