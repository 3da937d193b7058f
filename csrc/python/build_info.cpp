// torch_ext._C: how the extension was built. Deliberately links no torch library, so that
// `import torch_ext` can read it and refuse a mismatched torch with a clear message before
// loading the ops library (which would otherwise fail with an undefined symbol).

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#ifndef TORCH_EXT_TORCH_VERSION
#error "TORCH_EXT_TORCH_VERSION must be defined by the build"
#endif

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : text) {
    if (c == ';' || c == ' ') {
      if (!part.empty()) parts.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  if (!part.empty()) parts.push_back(part);
  return parts;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Build information of the torch_ext extension.";
  m.attr("torch_version") = TORCH_EXT_TORCH_VERSION;
  m.attr("with_cuda") = static_cast<bool>(TORCH_EXT_WITH_CUDA);
  m.attr("cuda_version") = TORCH_EXT_CUDA_VERSION;
  m.attr("cuda_arch_list") = split(TORCH_EXT_CUDA_ARCH_LIST);
  m.attr("cpu_isas") = split(TORCH_EXT_CPU_ISAS);
  m.attr("library_name") = TORCH_EXT_LIBRARY_NAME;
}
