#pragma once
// Looks a torch_ext op up in the dispatcher once; the C++ API calls go through it.

#include <ATen/core/dispatch/Dispatcher.h>

namespace torch_ext::detail {

template <typename Signature>
c10::TypedOperatorHandle<Signature> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

}  // namespace torch_ext::detail
