// The one flat float32 parameter buffer shared by the CPU backend, the CUDA
// kernels, Adam (whose moments use the same layout) and the checkpoints.
//
// Layout: the four Linear layers of the seed's EpsNet in order, each as
// PyTorch stores it: the weight row-major [out, in], then the bias [out].
// The model comes in two variants, each with its compile-time layout
// (NetLayout): the seed's, below, and the one with a sinusoidal encoding of x
// (--x-embedding sinusoidal), whose layer 0 reads [emb(s x0), emb(s x1), emb(t)],
// 3 x 64 = 192 inputs, so that net.0.weight is [128, 192] and every later
// tensor moves up by 128 x 126 = 16,128 floats (57,986 in all). Layer 0's
// input is always the x part first, then emb(t) in its last 64 columns.
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

// The four layers of one model variant, and where layer 0's inputs lie.
struct NetLayout {
  int x_inputs;  // layer 0's columns from x: 2 (raw) or 128 (embedded); emb(t) follows
  std::array<LayerShape, kNumLayers> layers;
  std::size_t param_count;
  constexpr int in0() const { return x_inputs + kEmbDim; }
};

namespace detail {
constexpr LayerShape layer_at(std::size_t offset, int in, int out, const char* w, const char* b) {
  return {in, out, offset, offset + std::size_t(in) * std::size_t(out), w, b};
}
constexpr std::size_t end_of(const LayerShape& l) { return l.bias + std::size_t(l.out); }
constexpr NetLayout net_layout(int x_inputs) {
  const LayerShape l0 = layer_at(0, x_inputs + kEmbDim, kHidden, "net.0.weight", "net.0.bias");
  const LayerShape l1 = layer_at(end_of(l0), kHidden, kHidden, "net.2.weight", "net.2.bias");
  const LayerShape l2 = layer_at(end_of(l1), kHidden, kHidden, "net.4.weight", "net.4.bias");
  const LayerShape l3 = layer_at(end_of(l2), kHidden, kDataDim, "net.6.weight", "net.6.bias");
  return {x_inputs, {l0, l1, l2, l3}, end_of(l3)};
}
}  // namespace detail

// ---- The model variants ----
// How layer 0 sees x: as the two raw coordinates (the seed's model), or each
// coordinate through the timestep embedding's sin/cos of x_scale * x (Fourier
// features, math.hpp's x_embedding), which lets the network bend sharply in x.
enum class XEmbedding { kNone, kSinusoidal };
inline const char* name_of(XEmbedding e) { return e == XEmbedding::kSinusoidal ? "sinusoidal" : "none"; }
inline constexpr int kXEmbInputs = kDataDim * kEmbDim;  // 128: emb(s x0), emb(s x1)
inline constexpr float kXScale = 25.f;                  // --x-scale's default, as tiny-diffusion's

inline constexpr NetLayout kSeedNet = detail::net_layout(kDataDim);
inline constexpr NetLayout kXEmbNet = detail::net_layout(kXEmbInputs);

// The seed's layout under the names most of the code uses.
inline constexpr LayerShape kLayer0 = kSeedNet.layers[0];
inline constexpr LayerShape kLayer1 = kSeedNet.layers[1];
inline constexpr LayerShape kLayer2 = kSeedNet.layers[2];
inline constexpr LayerShape kLayer3 = kSeedNet.layers[3];
inline constexpr std::array<LayerShape, kNumLayers> kLayers = kSeedNet.layers;
inline constexpr std::size_t kParamCount = kSeedNet.param_count;

static_assert(kLayer0.in == kInDim && kLayer1.weight == 8576 && kLayer3.bias == 41856 && kParamCount == 41858,
              "parameter layout changed: update the table above and the checkpoint format");
static_assert(kXEmbNet.in0() == 192 && kXEmbNet.layers[1].weight == 24704 && kXEmbNet.param_count == 57986,
              "parameter layout changed: update the table above and the checkpoint format");

// The layout of a variant.
constexpr const NetLayout& net_of(XEmbedding e) { return e == XEmbedding::kSinusoidal ? kXEmbNet : kSeedNet; }

// The model a set of weights belongs to: its variant and, for the encoding, the scale.
struct ModelConfig {
  XEmbedding x_embedding = XEmbedding::kNone;
  float x_scale = kXScale;  // read only with kSinusoidal
  constexpr const NetLayout& net() const { return net_of(x_embedding); }
};

}  // namespace ddpm
