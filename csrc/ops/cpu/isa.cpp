// Picks, at run time, the copy of loops.cpp compiled for the running CPU.

#include <ATen/Version.h>

#include <string>

#include "ops/loops.h"

namespace torch_ext::cpu {

// One declaration per ISA copy of loops.cpp; TORCH_EXT_HAVE_<ISA> says which were built.
namespace DEFAULT {
const Loops& isa_loops();
}
#ifdef TORCH_EXT_HAVE_AVX2
namespace AVX2 {
const Loops& isa_loops();
}
#endif
#ifdef TORCH_EXT_HAVE_AVX512
namespace AVX512 {
const Loops& isa_loops();
}
#endif

namespace {

struct Choice {
  const Loops* loops;
  const char* isa;
};

Choice choose() {
  // ATen's choice: "DEFAULT", "AVX2", "AVX512" on x86 (others elsewhere).
  [[maybe_unused]] const std::string capability = at::get_cpu_capability();
#ifdef TORCH_EXT_HAVE_AVX512
  if (capability == "AVX512") {
    return {&AVX512::isa_loops(), "AVX512"};
  }
#endif
#ifdef TORCH_EXT_HAVE_AVX2
  if (capability == "AVX2" || capability == "AVX512") {
    return {&AVX2::isa_loops(), "AVX2"};
  }
#endif
  return {&DEFAULT::isa_loops(), "DEFAULT"};
}

const Choice& choice() {
  static const Choice chosen = choose();
  return chosen;
}

}  // namespace

const Loops& loops() { return *choice().loops; }

const char* loops_isa() { return choice().isa; }

}  // namespace torch_ext::cpu
