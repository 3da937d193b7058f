// The ops called from 8 threads at once give the same results as ATen.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <thread>
#include <vector>

#include "torch_ext/ops.h"

namespace {

TEST(Threads, EightThreadsAtOnce) {
  constexpr int kThreads = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      auto generator = at::make_generator<at::CPUGeneratorImpl>(t);
      for (int iteration = 0; iteration < 20; ++iteration) {
        auto x = at::randn({64, 33}, generator, at::kFloat).requires_grad_(true);
        auto w = at::full({33}, 0.1 * t, at::kFloat);
        auto ours = torch_ext::selu(torch_ext::prelu(torch_ext::leaky_relu(x, 0.01 * t), w));
        auto native = at::selu(at::prelu(at::leaky_relu(x, 0.01 * t), w));
        auto g_ours = torch::autograd::grad({ours.sum()}, {x})[0];
        auto g_native = torch::autograd::grad({native.sum()}, {x})[0];
        auto y = x.detach().clone();
        torch_ext::elu_(y, 0.5 + t);
        if (!at::allclose(ours, native) || !at::allclose(g_ours, g_native) ||
            !at::allclose(y, at::elu(x.detach(), 0.5 + t))) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
