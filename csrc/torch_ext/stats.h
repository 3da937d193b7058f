#pragma once
// Dead-neuron statistics for LibTorch programs. C++ modules have no forward hooks, so the
// torch_ext::nn modules report into a Recorder themselves, counting inside their own
// forward kernel (the counted ops), as Python's torch_ext.DeadNeuronMonitor does:
//
//   auto recorder = std::make_shared<torch_ext::stats::Recorder>(/*grad_eps=*/1e-3);
//   recorder->attach(*net);                 // every torch_ext::nn module inside net
//   ... train (modules in training mode are counted) ...
//   for (const auto& [name, layer] : recorder->report())
//     std::cout << name << ": " << layer.dead_units().size() << " dead\n";
//   recorder->reset();                      // start the next window
//
// Definitions as in Python: a unit is a feature of the last dim (1-D/2-D inputs) or a
// channel (dim 1) otherwise; active: z > 0; gradient-alive: |f'(z)| > grad_eps; a dead
// unit was never gradient-alive, a dormant one never active.

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace torch_ext::stats {

struct LayerStats {
  std::string activation;
  int64_t units = 0;
  int64_t samples = 0;          // per unit, since the last reset
  std::vector<int64_t> active;  // per unit: samples with z > 0
  std::vector<int64_t> alive;   // per unit: samples with |f'(z)| > grad_eps

  std::vector<int64_t> dead_units() const;  // never gradient-alive
  int64_t dormant() const;                  // units never active
  double dead_fraction() const;
};

// The count_active_ arguments of one counted call.
struct Counting {
  at::Tensor counts;
  int64_t unit_dim;
  at::Tensor alive_threshold;
};

class Recorder : public std::enable_shared_from_this<Recorder> {
 public:
  explicit Recorder(double grad_eps = 1e-3);

  // Makes every torch_ext::nn module inside `model` report here, under its name in
  // model.named_modules(). Returns how many. The recorder must be held by a shared_ptr.
  size_t attach(torch::nn::Module& model);
  void detach(torch::nn::Module& model);

  // Per layer, the statistics since the last reset (reads the counts: a host sync).
  std::map<std::string, LayerStats> report() const;
  void reset();
  double grad_eps() const { return grad_eps_; }

  // For the modules: counts this call's samples of layer `name`; returns the counted op's
  // arguments. `threshold(units)` gives the layer's alive_threshold.
  Counting counting(const std::string& name, const std::string& activation, const at::Tensor& z,
                    const std::function<at::Tensor(int64_t units)>& threshold);

 private:
  struct Layer {
    std::string activation;
    at::Tensor counts;  // int64 {2, units}
    int64_t samples = 0;
  };
  double grad_eps_;
  mutable std::mutex mutex_;
  std::map<std::string, Layer> layers_;
};

// Base of the torch_ext::nn modules: the recorder they report into, if any.
class Recorded {
 public:
  virtual ~Recorded() = default;
  void record_into(const std::shared_ptr<Recorder>& recorder, std::string name);
  void stop_recording();

 protected:
  // This forward's counted-op arguments, or nullopt when not recording (no recorder, or
  // the module in eval mode). `threshold(grad_eps, units)` gives the alive threshold.
  std::optional<Counting> counting(
      bool training, const at::Tensor& input, const char* activation,
      const std::function<at::Tensor(double grad_eps, int64_t units)>& threshold) const;

 private:
  std::weak_ptr<Recorder> recorder_;
  std::string name_;
};

}  // namespace torch_ext::stats
