// Each op called from C++ through the dispatcher (torch_ext/ops.h), forward and backward
// (autograd), against ATen's own at::leaky_relu, at::prelu, at::elu and at::selu.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <functional>

#include "torch_ext/ops.h"

namespace {

using UnaryOp = std::function<at::Tensor(const at::Tensor&)>;

struct Case {
  const char* name;
  UnaryOp ours;
  UnaryOp native;
};

std::vector<Case> cases() {
  return {
      {"leaky_relu", [](const at::Tensor& x) { return torch_ext::leaky_relu(x, 0.1); },
       [](const at::Tensor& x) { return at::leaky_relu(x, 0.1); }},
      {"leaky_relu_negative_slope",
       [](const at::Tensor& x) { return torch_ext::leaky_relu(x, -0.2); },
       [](const at::Tensor& x) { return at::leaky_relu(x, -0.2); }},
      {"elu", [](const at::Tensor& x) { return torch_ext::elu(x, 2.0); },
       [](const at::Tensor& x) { return at::elu(x, 2.0); }},
      {"selu", [](const at::Tensor& x) { return torch_ext::selu(x); },
       [](const at::Tensor& x) { return at::selu(x); }},
      {"celu", [](const at::Tensor& x) { return torch_ext::celu(x, 0.5); },
       [](const at::Tensor& x) { return at::celu(x, 0.5); }},
      {"celu_negative_alpha", [](const at::Tensor& x) { return torch_ext::celu(x, -1.5); },
       [](const at::Tensor& x) { return at::celu(x, -1.5); }},
  };
}

// Input with both signs, exact zeros, and a non-contiguous (transposed) layout.
at::Tensor sample_input(at::ScalarType dtype) {
  auto x = at::randn({37, 65}, at::TensorOptions().dtype(at::kDouble)).t();
  x.index_put_({at::indexing::Slice(0, 5), 0}, 0.0);
  return x.to(dtype).detach().requires_grad_(true);
}

std::pair<at::Tensor, at::Tensor> value_and_grad(const UnaryOp& op, const at::Tensor& x,
                                                 const at::Tensor& grad_output) {
  auto x_leaf = x.detach().requires_grad_(true);
  auto y = op(x_leaf);
  auto grads = torch::autograd::grad({y}, {x_leaf}, {grad_output});
  return {y.detach(), grads[0]};
}

TEST(Ops, ForwardAndBackwardMatchATen) {
  at::manual_seed(0);
  for (auto dtype : {at::kFloat, at::kDouble}) {
    for (const auto& c : cases()) {
      SCOPED_TRACE(std::string(c.name) + " " + c10::toString(dtype));
      auto x = sample_input(dtype);
      auto g = at::randn_like(x);
      auto [ours_y, ours_g] = value_and_grad(c.ours, x, g);
      auto [native_y, native_g] = value_and_grad(c.native, x, g);
      EXPECT_TRUE(at::allclose(ours_y, native_y, 1e-6, 1e-6));
      EXPECT_TRUE(at::allclose(ours_g, native_g, 1e-6, 1e-6));
    }
  }
}

// As ATen's: EluBackward0 for elu and selu, CeluBackward0, PreluKernelBackward0, ...
TEST(Ops, NodesAreNamedAsATens) {
  const auto x = sample_input(at::kDouble);
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.ours(x).grad_fn()->name(), c.native(x).grad_fn()->name());
  }
  const auto w = at::full({37}, 0.25, at::kDouble).requires_grad_(true);
  EXPECT_EQ(torch_ext::prelu(x, w).grad_fn()->name(), at::prelu(x, w).grad_fn()->name());
  auto ours = x * 1.0;
  auto native = x * 1.0;
  EXPECT_EQ(torch_ext::celu_(ours, 2.0).grad_fn()->name(),
            at::celu_(native, 2.0).grad_fn()->name());
}

TEST(Ops, InPlaceMatchesATenAndReturnsSelf) {
  auto x = at::randn({4, 8});
  auto expected = at::elu(x, 0.5);
  auto y = x.clone();
  auto& returned = torch_ext::elu_(y, 0.5);
  EXPECT_TRUE(returned.is_same(y));
  EXPECT_TRUE(at::allclose(y, expected));

  auto z = x.clone();
  torch_ext::leaky_relu_(z, 0.3);
  EXPECT_TRUE(at::allclose(z, at::leaky_relu(x, 0.3)));

  auto s = x.clone();
  torch_ext::selu_(s);
  EXPECT_TRUE(at::allclose(s, at::selu(x)));
  auto c = x.clone();
  torch_ext::celu_(c, 2.0);
  EXPECT_TRUE(at::allclose(c, at::celu(x, 2.0)));
}

TEST(Ops, PreluForwardAndBackwardMatchATen) {
  at::manual_seed(1);
  auto x = at::randn({3, 5, 4, 4}, at::kDouble).contiguous(at::MemoryFormat::ChannelsLast);
  auto w = at::rand({5}, at::kDouble);
  auto g = at::randn_like(x);

  auto run = [&](auto prelu) {
    auto xl = x.detach().requires_grad_(true);
    auto wl = w.detach().requires_grad_(true);
    auto y = prelu(xl, wl);
    auto grads = torch::autograd::grad({y}, {xl, wl}, {g});
    return std::make_tuple(y.detach(), grads[0], grads[1]);
  };
  auto [oy, ogx, ogw] =
      run([](const at::Tensor& a, const at::Tensor& b) { return torch_ext::prelu(a, b); });
  auto [ny, ngx, ngw] =
      run([](const at::Tensor& a, const at::Tensor& b) { return at::prelu(a, b); });
  EXPECT_TRUE(at::allclose(oy, ny));
  EXPECT_TRUE(at::allclose(ogx, ngx));
  EXPECT_TRUE(at::allclose(ogw, ngw));
}

TEST(Ops, BackwardOpsMatchATenBackward) {
  auto x = at::randn({64}, at::kDouble);
  auto g = at::randn({64}, at::kDouble);
  EXPECT_TRUE(at::allclose(torch_ext::leaky_relu_backward(g, x, 0.2, false),
                           at::leaky_relu_backward(g, x, 0.2, false)));
  EXPECT_TRUE(at::allclose(torch_ext::elu_backward(g, x, 1.5, 1.0, false),
                           at::elu_backward(g, 1.5, 1.0, 1.0, false, x)));
  // CELU's parameters (alpha, 1, 1 / alpha), from the input and from the result.
  EXPECT_TRUE(at::allclose(torch_ext::elu_backward(g, x, 0.5, 1.0, false, 2.0),
                           at::elu_backward(g, 0.5, 1.0, 2.0, false, x)));
  const auto y = at::celu(x, 0.5);
  EXPECT_TRUE(at::allclose(torch_ext::elu_backward(g, y, 0.5, 1.0, true, 2.0),
                           at::elu_backward(g, 0.5, 1.0, 2.0, true, y)));
  auto [gx, gw] =
      torch_ext::prelu_backward(g.view({8, 8}), x.view({8, 8}), at::full({8}, 0.25, at::kDouble));
  auto [ngx, ngw] =
      at::_prelu_kernel_backward(g.view({8, 8}), x.view({8, 8}), at::full({8}, 0.25, at::kDouble));
  EXPECT_TRUE(at::allclose(gx, ngx));
  EXPECT_TRUE(at::allclose(gw, ngw.sum(0)));
}

TEST(Ops, CeluRefusesZeroAlphaBeforeWriting) {
  const auto x = at::randn({5}, at::kDouble);
  auto y = x.clone();
  for (const char* op : {"torch_ext::celu", "torch_ext::celu_"}) {
    try {
      if (std::string(op) == "torch_ext::celu") {
        torch_ext::celu(x, 0.0);
      } else {
        torch_ext::celu_(y, 0.0);
      }
      FAIL() << "expected an error from " << op;
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(op) + ": alpha cannot be 0"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_TRUE(at::equal(y, x));
}

TEST(Ops, BadInputNamesOpAndArgument) {
  auto ints = at::arange(4);
  try {
    torch_ext::selu(ints);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("torch_ext::selu"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'self'"), std::string::npos);
  }
}

}  // namespace
