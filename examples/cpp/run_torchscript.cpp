// Loads a TorchScript model saved in Python (examples/torchscript/save_models.py) and
// runs it on a fixed input: torch::linspace(-3, 3, batch * features) shaped
// {batch, features}. Prints one output value per line, to full float precision.
//
//   ./run_torchscript model.pt [batch=4] [features=16]
//
// It calls no torch_ext function itself: linking TorchExt::torch_ext registers the ops.

#include <torch/script.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s model.pt [batch] [features]\n", argv[0]);
    return EXIT_FAILURE;
  }
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 4;
  const int64_t features = argc > 3 ? std::atoll(argv[3]) : 16;
  torch::jit::Module model = torch::jit::load(argv[1]);
  model.eval();
  auto input = torch::linspace(-3, 3, batch * features).reshape({batch, features});
  torch::NoGradGuard no_grad;
  auto output = model.forward({input}).toTensor().contiguous().to(torch::kDouble);
  const double* values = output.data_ptr<double>();
  for (int64_t i = 0; i < output.numel(); ++i) std::printf("%.9g\n", values[i]);
  return EXIT_SUCCESS;
}
