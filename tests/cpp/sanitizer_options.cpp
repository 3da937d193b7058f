// Default runtime options of the sanitizers, compiled into the GoogleTest executable only
// in a TORCH_EXT_SANITIZE build (scripts/sanitize.sh). They apply however the tests are
// started (ctest, gtest_discover_tests' listing, by hand); ASAN_OPTIONS / UBSAN_OPTIONS /
// LSAN_OPTIONS in the environment override them one by one.

extern "C" {

// halt_on_error: the first report ends the process with a failure (also the default).
// protect_shadow_gap=0: with a CUDA build of torch on a machine with a GPU, the CUDA driver
// maps memory where ASan would protect its shadow gap and fails to initialise; the gap
// only catches wild accesses far outside any mapping.
const char* __asan_default_options() {
  return "halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:"
         "strict_init_order=1:check_initialization_order=1:protect_shadow_gap=0";
}

// -fno-sanitize-recover=undefined already aborts on the first report; print its stack.
const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

}  // extern "C"
