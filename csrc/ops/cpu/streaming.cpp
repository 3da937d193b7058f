// The last-level cache size and the streaming threshold of streaming.h, read once; the
// private ops that report and set them (benchmarks/bench_ops.py's size sweep).

#include "ops/cpu/streaming.h"

#include <c10/util/Exception.h>
#include <torch/library.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <tuple>

namespace torch_ext::cpu {
namespace {

constexpr int64_t kFallbackCacheBytes = int64_t{32} << 20;

// "32768K", "2M", "1024": sysfs's cache sizes. Anything else after the number (a space, a
// second unit) or a value that does not fit int64 once scaled is no size.
std::optional<int64_t> parse_size(const std::string& text) {
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  int shift = 0;
  if (unit == "K") {
    shift = 10;
  } else if (unit == "M") {
    shift = 20;
  } else if (unit == "G") {
    shift = 30;
  } else if (!unit.empty()) {
    return std::nullopt;
  }
  if (value < 0 || value > (std::numeric_limits<int64_t>::max() >> shift)) return std::nullopt;
  return value << shift;
}

std::optional<std::string> read_line(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  if (!file || !std::getline(file, line)) return std::nullopt;
  return line;
}

// Linux's view of CPU 0's caches: index<i>/{level,type,size}; the largest data or unified
// level is the one the tensors go through last. The kernel reads it from the CPU's cache
// descriptors (on AMD, the L3 of CPU 0's core complex: one CCD's, where a CPU has several),
// and a hypervisor passes the host's through.
std::optional<CacheInfo> from_sysfs() {
  std::optional<CacheInfo> best;
  int best_level = 0;
  for (int index = 0; index < 16; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    const auto level = read_line(dir + "/level");
    const auto type = read_line(dir + "/type");
    const auto size = read_line(dir + "/size");
    // Numbered from 0 without gaps on Linux; a gap skips one rather than end the search.
    if (!level || !type || !size) continue;
    if (*type == "Instruction") continue;
    const auto bytes = parse_size(*size);
    const int lvl = std::atoi(level->c_str());
    if (bytes && *bytes > 0 && lvl >= best_level) {
      best_level = lvl;
      best = CacheInfo{*bytes, "sysfs cpu0 cache/index" + std::to_string(index) + " (L" +
                                   std::to_string(lvl) + " " + *type + ", " + *size + ")"};
    }
  }
  return best;
}

// glibc's reading of CPUID. Second choice: under a hypervisor it can be far off (a 2-core
// EPYC VM reported 320 MiB of L3 here where sysfs had the 32 MiB the CPU has).
std::optional<CacheInfo> from_sysconf() {
#if defined(_SC_LEVEL3_CACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  for (const auto& [name, label] :
       {std::pair{_SC_LEVEL3_CACHE_SIZE, "L3"}, std::pair{_SC_LEVEL2_CACHE_SIZE, "L2"}}) {
    const long bytes = sysconf(name);
    if (bytes > 0) return CacheInfo{bytes, std::string("sysconf ") + label};
  }
#endif
  return std::nullopt;
}

CacheInfo read_last_level_cache() {
  if (auto info = from_sysfs()) return *info;
  if (auto info = from_sysconf()) return *info;
  return {kFallbackCacheBytes, "default (no cache size found)"};
}

int64_t initial_threshold() {
  const char* text = std::getenv("TORCH_EXT_STREAMING_MIN_BYTES");
  if (text != nullptr && *text != '\0') {
    const auto bytes = parse_size(text);
    if (bytes && *bytes >= 0) return *bytes;
    TORCH_WARN("torch_ext: ignoring TORCH_EXT_STREAMING_MIN_BYTES=", text,
               " (expected a number of bytes, e.g. 0 or 33554432)");
  }
  return last_level_cache().bytes;
}

std::atomic<int64_t>& threshold() {
  static std::atomic<int64_t> value{initial_threshold()};
  return value;
}

}  // namespace

const CacheInfo& last_level_cache() {
  static const CacheInfo info = read_last_level_cache();
  return info;
}

int64_t streaming_min_bytes() { return threshold().load(std::memory_order_relaxed); }

int64_t set_streaming_min_bytes(int64_t bytes) {
  TORCH_CHECK(bytes >= 0, "torch_ext: the streaming threshold must be >= 0 bytes, got ", bytes);
  return threshold().exchange(bytes, std::memory_order_relaxed);
}

}  // namespace torch_ext::cpu

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  // (last-level cache bytes, where they were read, streaming threshold in bytes).
  m.def("_streaming_info() -> (int, str, int)", [] {
    const auto& llc = torch_ext::cpu::last_level_cache();
    return std::make_tuple(llc.bytes, llc.source, torch_ext::cpu::streaming_min_bytes());
  });
  // Sets the threshold (benchmarks); returns the previous one.
  m.def("_set_streaming_min_bytes(int bytes) -> int",
        [](int64_t bytes) { return torch_ext::cpu::set_streaming_min_bytes(bytes); });
}
