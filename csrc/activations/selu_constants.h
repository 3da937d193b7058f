#pragma once

namespace torch_ext::act {

// SELU's constants (Klambauer et al. 2017) to full double precision, the values of ATen's
// SELU_ALPHA and SELU_SCALE. selu(x) = kSeluScale * elu(x, kSeluAlpha).
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

}  // namespace torch_ext::act
