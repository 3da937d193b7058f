#pragma once
// The TensorIterator every elementwise op (CPU and CUDA) runs its loop over: one preallocated
// output, inputs of the output's dtype, broadcast to its shape.

#include <ATen/native/TensorIterator.h>

namespace torch_ext {

template <typename... Inputs>
at::TensorIterator elementwise_iterator(const at::TensorBase& out, const Inputs&... inputs) {
  at::TensorIteratorConfig config;
  config.add_output(out);
  (config.add_const_input(inputs), ...);
  return config.build();
}

}  // namespace torch_ext
