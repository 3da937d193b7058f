// Picks, at run time, the copy of loops.cpp compiled for the running CPU.

#include <ATen/Version.h>

#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

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
#ifdef TORCH_EXT_HAVE_AVX512_BF16
namespace AVX512_BF16 {
const Loops& isa_loops();
}
#endif

namespace {

struct Choice {
  const Loops* loops;
  const char* isa;
};

#ifdef TORCH_EXT_HAVE_AVX512_BF16
// Where ATen runs AVX512: the copy that also rounds to bfloat16 with AVX512-BF16's
// instruction (ops/cpu/reduced_float.h, same bits), if the CPU has it (CPUID leaf 7,
// subleaf 1, EAX bit 5) and TORCH_EXT_AVX512_BF16 is not 0 (the tests compare both copies).
bool use_avx512_bf16() {
  const char* env = std::getenv("TORCH_EXT_AVX512_BF16");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && ((eax >> 5) & 1) != 0;
}
#endif

Choice choose() {
  // ATen's choice: "DEFAULT", "AVX2", "AVX512" on x86 (others elsewhere).
  [[maybe_unused]] const std::string capability = at::get_cpu_capability();
#ifdef TORCH_EXT_HAVE_AVX512_BF16
  if (capability == "AVX512" && use_avx512_bf16()) {
    return {&AVX512_BF16::isa_loops(), "AVX512_BF16"};
  }
#endif
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
