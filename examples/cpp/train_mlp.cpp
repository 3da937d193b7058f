// Trains a small MLP built from torch_ext::nn modules, in pure C++, on synthetic data:
// classify points of two interleaved spirals. Prints the loss as it falls; exits non-zero
// if it did not fall.
//
//   ./train_mlp [steps=400]

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "torch_ext/nn.h"

namespace {

// Two spirals of n points each, labels 0 and 1.
std::pair<torch::Tensor, torch::Tensor> spirals(int64_t n) {
  auto t = torch::linspace(0.25, 3 * M_PI, n);
  auto a = torch::stack({t * torch::cos(t), t * torch::sin(t)}, 1) / (3 * M_PI);
  auto x = torch::cat({a, -a}) + 0.02 * torch::randn({2 * n, 2});
  auto y = torch::cat({torch::zeros({n}, torch::kLong), torch::ones({n}, torch::kLong)});
  return {x, y};
}

torch::nn::Sequential make_mlp(int64_t width) {
  namespace xnn = torch_ext::nn;
  return torch::nn::Sequential(
      torch::nn::Linear(2, width), xnn::PReLU(xnn::PReLUOptions().num_parameters(width)),
      torch::nn::Linear(width, width), xnn::LeakyReLU(xnn::LeakyReLUOptions().negative_slope(0.1)),
      torch::nn::Linear(width, width), xnn::ELU(), torch::nn::Linear(width, width), xnn::SELU(),
      torch::nn::Linear(width, 2));
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 400;
  torch::manual_seed(0);
  auto [x, y] = spirals(256);
  auto model = make_mlp(32);
  std::cout << model << "\n";
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-2));

  double first = 0, last = 0;
  for (int step = 0; step <= steps; ++step) {
    optimizer.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.item<double>();
    if (step % 100 == 0) std::printf("step %4d  loss %.4f\n", step, loss.item<double>());
  }
  const double accuracy =
      (model->forward(x).argmax(1) == y).to(torch::kDouble).mean().item<double>();
  std::printf("loss %.4f -> %.4f, train accuracy %.3f\n", first, last, accuracy);
  return last < 0.5 * first ? EXIT_SUCCESS : EXIT_FAILURE;
}
