#include "torch_ext/stats.h"

#include <ATen/ops/zeros.h>
#include <torch/nn/module.h>

#include <algorithm>

namespace torch_ext::stats {

std::vector<int64_t> LayerStats::dead_units() const {
  std::vector<int64_t> dead;
  for (int64_t u = 0; u < units; ++u) {
    if (samples > 0 && alive[u] == 0) dead.push_back(u);
  }
  return dead;
}

int64_t LayerStats::dormant() const {
  if (samples == 0) return 0;
  return std::count(active.begin(), active.end(), int64_t{0});
}

double LayerStats::dead_fraction() const {
  return units == 0 ? 0.0 : static_cast<double>(dead_units().size()) / units;
}

Recorder::Recorder(double grad_eps) : grad_eps_(grad_eps) {
  TORCH_CHECK(grad_eps > 0 && grad_eps < 1,
              "torch_ext::stats::Recorder: expected grad_eps in (0, 1), but got ", grad_eps);
}

size_t Recorder::attach(torch::nn::Module& model) {
  size_t attached = 0;
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    if (auto* recorded = dynamic_cast<Recorded*>(item.value().get())) {
      recorded->record_into(shared_from_this(), item.key());
      ++attached;
    }
  }
  return attached;
}

void Recorder::detach(torch::nn::Module& model) {
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    if (auto* recorded = dynamic_cast<Recorded*>(item.value().get())) recorded->stop_recording();
  }
}

Counting Recorder::counting(const std::string& name, const std::string& activation,
                            const at::Tensor& z,
                            const std::function<at::Tensor(int64_t)>& threshold) {
  TORCH_CHECK(z.dim() >= 1, "torch_ext::stats::Recorder: layer '", name,
              "' got a 0-D input; it has no units");
  const int64_t unit_dim = z.dim() <= 2 ? z.dim() - 1 : 1;  // features, or channels
  const int64_t units = z.size(unit_dim);
  std::lock_guard<std::mutex> lock(mutex_);
  Layer& layer = layers_[name];
  if (!layer.counts.defined()) {
    layer.activation = activation;
    layer.counts = at::zeros({2, units}, z.options().dtype(at::kLong));
  }
  TORCH_CHECK(layer.counts.size(1) == units, "torch_ext::stats::Recorder: layer '", name, "' got ",
              units, " units along dim ", unit_dim, ", but earlier ", layer.counts.size(1));
  layer.samples += units == 0 ? 0 : z.numel() / units;  // a 0-wide layer counts nothing
  return {layer.counts, unit_dim, threshold(units).to(z.device())};
}

std::map<std::string, LayerStats> Recorder::report() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<std::string, LayerStats> result;
  for (const auto& [name, layer] : layers_) {
    const at::Tensor counts = layer.counts.cpu().contiguous();
    const int64_t units = counts.size(1);
    const int64_t* data = counts.const_data_ptr<int64_t>();
    result[name] =
        LayerStats{layer.activation, units, layer.samples, std::vector<int64_t>(data, data + units),
                   std::vector<int64_t>(data + units, data + 2 * units)};
  }
  return result;
}

void Recorder::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [name, layer] : layers_) {
    layer.counts.zero_();
    layer.samples = 0;
  }
}

void Recorded::record_into(const std::shared_ptr<Recorder>& recorder, std::string name) {
  recorder_ = recorder;
  name_ = std::move(name);
}

void Recorded::stop_recording() { recorder_.reset(); }

std::optional<Counting> Recorded::counting(
    bool training, const at::Tensor& input, const char* activation,
    const std::function<at::Tensor(double, int64_t)>& threshold) const {
  const auto recorder = recorder_.lock();
  if (!recorder || !training) return std::nullopt;
  return recorder->counting(name_, activation, input,
                            [&](int64_t units) { return threshold(recorder->grad_eps(), units); });
}

}  // namespace torch_ext::stats
