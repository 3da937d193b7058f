#pragma once
// The TensorIterator every elementwise op (CPU and CUDA) runs its loop over: one preallocated
// output, inputs of the output's dtype, broadcast to its shape. It borrows the output and
// the inputs: pass tensors that outlive it, not temporaries.

#include <ATen/native/TensorIterator.h>

namespace torch_ext {

template <typename... Inputs>
at::TensorIterator elementwise_iterator(const at::TensorBase& out, const Inputs&... inputs) {
  at::TensorIteratorConfig config;
  config.add_output(out);
  (config.add_const_input(inputs), ...);
  return config.build();
}

// The same, with each input first converted to the output's dtype (a backward op's promoted
// operands); the iterator owns the converted copies, so they live as long as it does.
template <typename... Inputs>
at::TensorIterator promoted_iterator(const at::TensorBase& out, const Inputs&... inputs) {
  at::TensorIteratorConfig config;
  config.add_output(out);
  (config.add_owned_const_input(inputs.to(out.scalar_type())), ...);
  return config.build();
}

}  // namespace torch_ext
