// torch_ext::nn modules against torch::nn's: outputs, gradients, parameters, printing,
// use inside torch::nn::Sequential, and a PReLU slope that trains.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "torch_ext/nn.h"

namespace {

template <typename Ours, typename Native>
void expect_same_as_native(Ours ours, Native native, torch::Tensor x) {
  auto x1 = x.clone().requires_grad_(true);
  auto x2 = x.clone().requires_grad_(true);
  auto y1 = ours->forward(x1 * 1.0);
  auto y2 = native->forward(x2 * 1.0);
  y1.pow(2).sum().backward();
  y2.pow(2).sum().backward();
  EXPECT_TRUE(torch::allclose(y1, y2));
  EXPECT_TRUE(torch::allclose(x1.grad(), x2.grad()));
}

TEST(Modules, MatchTorchNN) {
  torch::manual_seed(0);
  auto x = torch::randn({6, 4, 3}, torch::kDouble);
  expect_same_as_native(
      torch_ext::nn::LeakyReLU(torch_ext::nn::LeakyReLUOptions().negative_slope(0.2)),
      torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)), x);
  expect_same_as_native(torch_ext::nn::LeakyReLU(torch_ext::nn::LeakyReLUOptions().inplace(true)),
                        torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().inplace(true)), x);
  expect_same_as_native(torch_ext::nn::ELU(torch_ext::nn::ELUOptions().alpha(0.5)),
                        torch::nn::ELU(torch::nn::ELUOptions().alpha(0.5)), x);
  expect_same_as_native(torch_ext::nn::ELU(torch_ext::nn::ELUOptions().inplace(true)),
                        torch::nn::ELU(torch::nn::ELUOptions().inplace(true)), x);
  expect_same_as_native(torch_ext::nn::SELU(), torch::nn::SELU(), x);
  expect_same_as_native(torch_ext::nn::SELU(torch_ext::nn::SELUOptions(true)),
                        torch::nn::SELU(torch::nn::SELUOptions(true)), x);
  expect_same_as_native(torch_ext::nn::CELU(torch_ext::nn::CELUOptions().alpha(0.5)),
                        torch::nn::CELU(torch::nn::CELUOptions().alpha(0.5)), x);
  expect_same_as_native(torch_ext::nn::CELU(torch_ext::nn::CELUOptions().inplace(true)),
                        torch::nn::CELU(torch::nn::CELUOptions().inplace(true)), x);
}

TEST(Modules, PReLUMatchesTorchNNIncludingWeightGradient) {
  torch::manual_seed(0);
  torch_ext::nn::PReLU ours(torch_ext::nn::PReLUOptions().num_parameters(4).init(0.1));
  torch::nn::PReLU native(torch::nn::PReLUOptions().num_parameters(4).init(0.1));
  ours->to(torch::kDouble);
  native->to(torch::kDouble);
  auto x = torch::randn({5, 4, 3}, torch::kDouble);
  auto y1 = ours->forward(x);
  auto y2 = native->forward(x);
  y1.pow(2).sum().backward();
  y2.pow(2).sum().backward();
  EXPECT_TRUE(torch::allclose(y1, y2));
  EXPECT_TRUE(torch::allclose(ours->weight.grad(), native->weight.grad()));
  auto params = ours->named_parameters();
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params.begin()->key(), "weight");
  EXPECT_EQ(params["weight"].sizes(), torch::IntArrayRef({4}));
}

TEST(Modules, PrettyPrint) {
  std::ostringstream out;
  out << *torch_ext::nn::PReLU(torch_ext::nn::PReLUOptions().num_parameters(3));
  EXPECT_EQ(out.str(), "torch_ext::nn::PReLU(num_parameters=3)");
  out.str("");
  out << *torch_ext::nn::LeakyReLU(torch_ext::nn::LeakyReLUOptions().negative_slope(0.25));
  EXPECT_EQ(out.str(), "torch_ext::nn::LeakyReLU(negative_slope=0.25)");
}

TEST(Modules, SequentialTrainsAndPReLUSlopeLearns) {
  torch::manual_seed(0);
  // Target: y = x for x > 0, y = -x for x <= 0 (|x|). A PReLU slope of -1 solves it.
  torch_ext::nn::PReLU prelu;
  torch::nn::Sequential net(prelu);
  torch::optim::SGD optimizer(net->parameters(), torch::optim::SGDOptions(0.1));
  auto x = torch::linspace(-2, 2, 101);
  auto target = x.abs();
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 300; ++step) {
    optimizer.zero_grad();
    auto loss = torch::mse_loss(net->forward(x), target);
    loss.backward();
    optimizer.step();
    (step == 0 ? first_loss : last_loss) = loss.item<double>();
  }
  EXPECT_LT(last_loss, first_loss * 1e-3);
  EXPECT_NEAR(prelu->weight.item<double>(), -1.0, 1e-2);
}

TEST(Modules, CloneIsDeep) {
  torch_ext::nn::PReLU prelu(torch_ext::nn::PReLUOptions().num_parameters(2));
  auto copy = std::dynamic_pointer_cast<torch_ext::nn::PReLUImpl>(prelu->clone());
  ASSERT_TRUE(copy);
  EXPECT_NE(copy->weight.data_ptr(), prelu->weight.data_ptr());
  EXPECT_TRUE(torch::equal(copy->weight, prelu->weight));
}

}  // namespace
