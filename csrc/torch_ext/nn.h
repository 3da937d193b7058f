#pragma once
// torch_ext's activations as LibTorch modules, in the style of torch::nn: an Impl class,
// a ModuleHolder (TORCH_MODULE), and torch::nn's own Options structs, so a module drops
// into torch::nn::Sequential and swaps with torch::nn::LeakyReLU and friends.
//
//   torch::nn::Sequential net(torch::nn::Linear(4, 8), torch_ext::nn::PReLU(8),
//                             torch::nn::Linear(8, 1), torch_ext::nn::ELU());
//
// Each module reports dead-neuron statistics into a stats::Recorder once attached to one
// (torch_ext/stats.h), counting inside its own forward kernel.

#include <torch/nn/cloneable.h>
#include <torch/nn/options/activation.h>
#include <torch/nn/pimpl.h>

#include <ostream>

#include "torch_ext/stats.h"

namespace torch_ext::nn {

using LeakyReLUOptions = torch::nn::LeakyReLUOptions;  // negative_slope = 0.01, inplace
using PReLUOptions = torch::nn::PReLUOptions;          // num_parameters = 1, init = 0.25
using ELUOptions = torch::nn::ELUOptions;              // alpha = 1.0, inplace
using SELUOptions = torch::nn::SELUOptions;            // inplace
using CELUOptions = torch::nn::CELUOptions;            // alpha = 1.0, inplace

class LeakyReLUImpl : public torch::nn::Cloneable<LeakyReLUImpl>, public stats::Recorded {
 public:
  explicit LeakyReLUImpl(const LeakyReLUOptions& options_ = {});
  at::Tensor forward(at::Tensor input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;

  LeakyReLUOptions options;
};
TORCH_MODULE(LeakyReLU);

// The learned slopes are the parameter "weight", of shape {num_parameters}, as in
// torch::nn::PReLU and Python's torch.nn.PReLU.
class PReLUImpl : public torch::nn::Cloneable<PReLUImpl>, public stats::Recorded {
 public:
  explicit PReLUImpl(const PReLUOptions& options_ = {});
  at::Tensor forward(const at::Tensor& input);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  PReLUOptions options;
  at::Tensor weight;
};
TORCH_MODULE(PReLU);

class ELUImpl : public torch::nn::Cloneable<ELUImpl>, public stats::Recorded {
 public:
  explicit ELUImpl(const ELUOptions& options_ = {});
  at::Tensor forward(at::Tensor input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;

  ELUOptions options;
};
TORCH_MODULE(ELU);

class SELUImpl : public torch::nn::Cloneable<SELUImpl>, public stats::Recorded {
 public:
  explicit SELUImpl(const SELUOptions& options_ = {});
  at::Tensor forward(at::Tensor input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;

  SELUOptions options;
};
TORCH_MODULE(SELU);

class CELUImpl : public torch::nn::Cloneable<CELUImpl>, public stats::Recorded {
 public:
  explicit CELUImpl(const CELUOptions& options_ = {});
  at::Tensor forward(at::Tensor input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;

  CELUOptions options;
};
TORCH_MODULE(CELU);

}  // namespace torch_ext::nn
