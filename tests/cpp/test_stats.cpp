// The counting op from C++, and the stats Recorder that torch_ext::nn modules report into:
// killed units reported dead, counts equal to a float64 reference, reset, detach.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "torch_ext/nn.h"
#include "torch_ext/ops.h"
#include "torch_ext/stats.h"

namespace {

TEST(CountActive, MatchesReferenceForRowsAndPlanes) {
  torch::manual_seed(0);
  for (auto [z, dim] :
       {std::pair{torch::randn({37, 11}), int64_t{1}},
        std::pair{torch::randn({3, 11, 6, 5}), int64_t{1}},
        std::pair{torch::randn({3, 11, 6, 5}).contiguous(at::MemoryFormat::ChannelsLast),
                  int64_t{1}}}) {
    auto threshold = torch::linspace(-1, 0, 11);
    auto counts = torch::zeros({2, 11}, torch::kLong);
    torch_ext::count_active_(z, counts, dim, threshold);
    auto rows = z.to(torch::kDouble).movedim(dim, -1).reshape({-1, 11});
    EXPECT_TRUE(torch::equal(counts[0], (rows > 0).sum(0)));
    EXPECT_TRUE(torch::equal(counts[1], (rows > threshold.to(torch::kDouble)).sum(0)));
  }
}

TEST(CountActive, IntervalRuleMatchesReference) {
  torch::manual_seed(0);
  auto z = torch::randn({3, 11, 6, 5});
  // Rows lo, hi, band_lo, band_hi per unit; unit 0 has no band (band_lo > band_hi).
  auto bounds = torch::stack({torch::linspace(-2, -0.5, 11), torch::linspace(0.5, 2, 11),
                              torch::linspace(-0.3, 0, 11), torch::linspace(0, 0.3, 11)});
  bounds.index_put_({2, 0}, 1.0);
  bounds.index_put_({3, 0}, -1.0);
  auto counts = torch::zeros({2, 11}, torch::kLong);
  torch_ext::count_active_(z, counts, 1, bounds);
  auto rows = z.to(torch::kDouble).movedim(1, -1).reshape({-1, 11});
  auto b = bounds.to(torch::kDouble);
  auto alive = (rows > b[0]) & (rows < b[1]) & ~((rows >= b[2]) & (rows <= b[3]));
  EXPECT_TRUE(torch::equal(counts[0], (rows > 0).sum(0)));
  EXPECT_TRUE(torch::equal(counts[1], alive.sum(0)));
}

TEST(AbsSum, MatchesReferenceAndTheCountedForwardsSumTheirOutput) {
  torch::manual_seed(0);
  auto z = torch::randn({37, 11});
  auto sums = torch::zeros({11}, torch::kDouble);
  torch_ext::abs_sum_(z, sums, -1);
  EXPECT_TRUE(torch::allclose(sums, z.to(torch::kDouble).abs().sum(0), 1e-12, 0));

  auto counts = torch::zeros({2, 11}, torch::kLong);
  auto threshold = torch::zeros({11});
  std::optional<at::Tensor> out_sums = torch::zeros({11}, torch::kDouble);
  auto y = torch_ext::leaky_relu_counted(z, 0.1, counts, 1, threshold, out_sums);
  auto expected = torch::zeros({11}, torch::kDouble);
  torch_ext::abs_sum_(y, expected, 1);
  EXPECT_TRUE(torch::equal(*out_sums, expected));
  // Without abs_sum (the default): counted as before, nothing summed.
  auto again = torch::zeros({2, 11}, torch::kLong);
  torch_ext::elu_counted(z, 1.0, 1.0, again, 1, threshold);
  EXPECT_TRUE(torch::equal(again, counts));
}

TEST(Recorder, ReportsKilledUnitsDeadAndCountsLikeTheReference) {
  torch::manual_seed(0);
  torch::nn::Linear linear(5, 8);
  {
    torch::NoGradGuard no_grad;
    linear->bias.index_put_({torch::tensor({1, 4, 6})}, -100.0);
  }
  torch::nn::Sequential net(
      linear, torch_ext::nn::ELU(), torch::nn::Linear(8, 8), torch_ext::nn::LeakyReLU(),
      torch::nn::Linear(8, 8),
      torch_ext::nn::PReLU(torch_ext::nn::PReLUOptions().num_parameters(8).init(0.0)));
  auto recorder = std::make_shared<torch_ext::stats::Recorder>(1e-3);
  EXPECT_EQ(recorder->attach(*net), 3u);
  auto x = torch::randn({64, 5});
  for (int step = 0; step < 2; ++step) net->forward(x).sum().backward();

  auto report = recorder->report();
  ASSERT_EQ(report.size(), 3u);
  const auto& elu = report.at("1");
  EXPECT_EQ(elu.activation, "ELU");
  EXPECT_EQ(elu.samples, 128);
  EXPECT_EQ(elu.dead_units(), (std::vector<int64_t>{1, 4, 6}));
  EXPECT_EQ(report.at("3").dead_units().size(), 0u);  // Leaky ReLU: never dead

  // Counts of the ELU layer against its pre-activations, in float64.
  auto z = linear->forward(x).detach().to(torch::kDouble);
  auto expected_active = (z > 0).sum(0) * 2;
  EXPECT_EQ(elu.active, std::vector<int64_t>(expected_active.data_ptr<int64_t>(),
                                             expected_active.data_ptr<int64_t>() + 8));

  // Eval mode is not counted; reset clears; detach stops reporting.
  net->eval();
  net->forward(x);
  EXPECT_EQ(recorder->report().at("1").samples, 128);
  net->train();
  recorder->reset();
  EXPECT_EQ(recorder->report().at("1").samples, 0);
  recorder->detach(*net);
  net->forward(x);
  EXPECT_EQ(recorder->report().at("1").samples, 0);
}

TEST(Recorder, InPlaceModulesAreCountedOnTheirInput) {
  torch::manual_seed(1);
  torch_ext::nn::ELU elu(torch_ext::nn::ELUOptions().inplace(true));
  torch::nn::Sequential net(elu);
  auto recorder = std::make_shared<torch_ext::stats::Recorder>();
  recorder->attach(*net);
  auto x = torch::randn({16, 4});
  auto expected = (x > 0).sum(0);
  net->forward(x.clone());
  const auto report = recorder->report();  // the map outlives the reference into it
  const auto& layer = report.at("0");
  EXPECT_EQ(layer.active,
            std::vector<int64_t>(expected.data_ptr<int64_t>(), expected.data_ptr<int64_t>() + 4));
}

// CELU's alive rule: |f'(z)| = e^(z / alpha) > grad_eps, so z > alpha * log(grad_eps).
TEST(Recorder, CeluCountsAliveByItsOwnRule) {
  torch::manual_seed(2);
  torch::nn::Sequential net(torch_ext::nn::CELU(torch_ext::nn::CELUOptions().alpha(0.5)));
  auto recorder = std::make_shared<torch_ext::stats::Recorder>(1e-3);
  recorder->attach(*net);
  auto x = torch::randn({64, 6}) * 4;
  net->forward(x);
  const auto report = recorder->report();
  const auto& layer = report.at("0");
  EXPECT_EQ(layer.activation, "CELU");
  const auto z = x.to(torch::kDouble);
  const auto expected_alive = (z > 0.5 * std::log(1e-3)).sum(0);
  const auto expected_active = (z > 0).sum(0);
  EXPECT_EQ(layer.alive, std::vector<int64_t>(expected_alive.data_ptr<int64_t>(),
                                              expected_alive.data_ptr<int64_t>() + 6));
  EXPECT_EQ(layer.active, std::vector<int64_t>(expected_active.data_ptr<int64_t>(),
                                               expected_active.data_ptr<int64_t>() + 6));
  EXPECT_TRUE(torch::allclose(net->forward(x), torch::celu(x, 0.5)));
}

}  // namespace

namespace {

// A 0-wide layer (a Linear with no outputs) and an empty batch count nothing, and do not
// divide by zero.
TEST(Recorder, ZeroUnitsAndEmptyBatchesCountNothing) {
  torch::nn::Sequential net{torch_ext::nn::ELU(), torch_ext::nn::LeakyReLU()};
  auto recorder = std::make_shared<torch_ext::stats::Recorder>();
  recorder->attach(*net);
  net->forward(torch::randn({4, 0}));
  auto report = recorder->report();
  EXPECT_EQ(report.at("0").units, 0);
  EXPECT_EQ(report.at("0").samples, 0);
  EXPECT_EQ(report.at("0").dead_fraction(), 0.0);
  EXPECT_TRUE(report.at("0").dead_units().empty());

  recorder = std::make_shared<torch_ext::stats::Recorder>();
  recorder->attach(*net);
  net->forward(torch::randn({0, 3}));
  report = recorder->report();
  EXPECT_EQ(report.at("1").units, 3);
  EXPECT_EQ(report.at("1").samples, 0);
  EXPECT_TRUE(report.at("1").dead_units().empty());
  EXPECT_EQ(report.at("1").dormant(), 0);
}

}  // namespace
