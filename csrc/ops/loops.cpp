#include "ops/loops.h"

#include <c10/util/Exception.h>

namespace torch_ext {

void fail_missing_loop() {
  TORCH_CHECK(false,
              "torch_ext: this device's kernels lack a loop this op needs (a torch_ext bug)");
}

const Loops& loops_for(const char* op, const at::TensorBase& t) {
  switch (t.device().type()) {
    case c10::DeviceType::CPU:
      return cpu::loops();
#ifdef TORCH_EXT_WITH_CUDA
    case c10::DeviceType::CUDA:
      return cuda::loops();
#else
    case c10::DeviceType::CUDA:
      TORCH_CHECK(false, op,
                  ": this build of torch_ext has no CUDA kernels; rebuild it where nvcc and a "
                  "CUDA build of torch are found (TORCH_EXT_CUDA=1)");
#endif
    default:
      TORCH_CHECK(false, op, ": expected a CPU or CUDA tensor, but got one on ", t.device());
  }
}

}  // namespace torch_ext
