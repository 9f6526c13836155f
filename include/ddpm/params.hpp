// The one flat float32 parameter buffer shared by the CPU backend, the CUDA
// kernels, Adam (whose moments use the same layout) and the checkpoints.
//
// Layout: the four Linear layers of the seed's EpsNet in order, each as
// PyTorch stores it: the weight row-major [out, in], then the bias [out].
//
//   name          shape      offset   count
//   net.0.weight  [128, 66]       0    8448   (input: x0, x1, emb_0..emb_63)
//   net.0.bias    [128]        8448     128
//   net.2.weight  [128, 128]   8576   16384
//   net.2.bias    [128]       24960     128
//   net.4.weight  [128, 128]  25088   16384
//   net.4.bias    [128]       41472     128
//   net.6.weight  [2, 128]    41600     256
//   net.6.bias    [2]         41856       2
//   total                             41858
#pragma once

#include <array>
#include <cstddef>

#include "ddpm/config.hpp"

namespace ddpm {

struct LayerShape {
  int in, out;
  std::size_t weight;  // offset of W[out][in]
  std::size_t bias;    // offset of b[out]
  const char* weight_name;
  const char* bias_name;
};

namespace detail {
constexpr LayerShape layer_at(std::size_t offset, int in, int out, const char* w, const char* b) {
  return {in, out, offset, offset + std::size_t(in) * std::size_t(out), w, b};
}
constexpr std::size_t end_of(const LayerShape& l) { return l.bias + std::size_t(l.out); }
}  // namespace detail

inline constexpr LayerShape kLayer0 = detail::layer_at(0, kInDim, kHidden, "net.0.weight", "net.0.bias");
inline constexpr LayerShape kLayer1 =
    detail::layer_at(detail::end_of(kLayer0), kHidden, kHidden, "net.2.weight", "net.2.bias");
inline constexpr LayerShape kLayer2 =
    detail::layer_at(detail::end_of(kLayer1), kHidden, kHidden, "net.4.weight", "net.4.bias");
inline constexpr LayerShape kLayer3 =
    detail::layer_at(detail::end_of(kLayer2), kHidden, kDataDim, "net.6.weight", "net.6.bias");
inline constexpr std::array<LayerShape, kNumLayers> kLayers = {kLayer0, kLayer1, kLayer2, kLayer3};
inline constexpr std::size_t kParamCount = detail::end_of(kLayer3);

static_assert(kLayer1.weight == 8576 && kLayer3.bias == 41856 && kParamCount == 41858,
              "parameter layout changed: update the table above and the checkpoint format");

}  // namespace ddpm
