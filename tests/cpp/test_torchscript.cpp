// A TorchScript module that calls torch_ext ops, saved to a file and loaded back with
// torch::jit::load, runs with the same values and gradients as the C++ API.

#include <gtest/gtest.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "torch_ext/ops.h"

namespace {

using torch::jit::SugaredValue;

// C++'s default TorchScript resolver knows `torch` (aten) only. This one also resolves
// `ops.<namespace>.<op>`, the form TorchScript itself serializes custom op calls in.
struct OpNamespaces : SugaredValue {
  std::string kind() const override { return "op namespaces"; }
  std::shared_ptr<SugaredValue> attr(const torch::jit::SourceRange&, torch::jit::GraphFunction&,
                                     const std::string& name) override {
    return std::make_shared<torch::jit::BuiltinModule>(name);
  }
};

struct OpsResolver : torch::jit::Resolver {
  std::shared_ptr<SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction& m,
                                             const torch::jit::SourceRange& loc) override {
    if (name == "ops") return std::make_shared<OpNamespaces>();
    return torch::jit::nativeResolver()->resolveValue(name, m, loc);
  }
  c10::TypePtr resolveType(const std::string& name, const torch::jit::SourceRange& loc) override {
    return torch::jit::nativeResolver()->resolveType(name, loc);
  }
};

TEST(TorchScript, SavedModuleLoadsAndRunsTheOps) {
  torch::jit::Module module("TorchExtModel");
  module.define(R"JIT(
def forward(self, x, w):
    h = ops.torch_ext.leaky_relu(x, 0.1)
    h = ops.torch_ext.prelu(h, w)
    h = ops.torch_ext.elu(h, 1.5)
    return ops.torch_ext.selu(h)
)JIT",
                std::make_shared<OpsResolver>());
  const auto path = std::filesystem::temp_directory_path() /
                    ("torch_ext_gtest_" + std::to_string(::getpid()) + ".pt");
  module.save(path.string());
  auto loaded = torch::jit::load(path.string());
  std::filesystem::remove(path);

  torch::manual_seed(0);
  auto x = torch::randn({4, 3, 5}, torch::kDouble).requires_grad_(true);
  auto w = torch::full({3}, 0.25, torch::kDouble).requires_grad_(true);
  auto y = loaded.forward({x, w}).toTensor();
  auto grads = torch::autograd::grad({y.sum()}, {x, w});

  auto x2 = x.detach().requires_grad_(true);
  auto w2 = w.detach().requires_grad_(true);
  auto expected =
      torch_ext::selu(torch_ext::elu(torch_ext::prelu(torch_ext::leaky_relu(x2, 0.1), w2), 1.5));
  auto expected_grads = torch::autograd::grad({expected.sum()}, {x2, w2});
  EXPECT_TRUE(torch::allclose(y, expected));
  EXPECT_TRUE(torch::allclose(grads[0], expected_grads[0]));
  EXPECT_TRUE(torch::allclose(grads[1], expected_grads[1]));
  // And against ATen, independently.
  EXPECT_TRUE(
      torch::allclose(y, torch::selu(torch::elu(torch::prelu(torch::leaky_relu(x, 0.1), w), 1.5))));
}

}  // namespace
