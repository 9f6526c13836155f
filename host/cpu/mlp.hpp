// What every backend needs of EpsNet's weights: W^T of the hidden-input
// layers and the time terms of layer 0, computed once per weight update or
// sampling run (the same for every instruction set; the GPU driver uses them
// too). The layers themselves are in layers.hpp. Internal header.
#pragma once

#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/likelihood.hpp"
#include "ddpm/params.hpp"

namespace ddpm::cpu {

// W^T of the three hidden-input layers ([in][out], the micro-kernel's B operand),
// refreshed from the flat buffer (laid out as `net`) after every optimizer step.
// wt0 is [net.in0()][128]: the x part's rows first, emb(t)'s last.
struct TransposedWeights {
  const NetLayout& net;
  std::vector<float> wt0, wt1, wt2;
  explicit TransposedWeights(const NetLayout& net);
  void refresh(const float* params);
  // Row o (0 <= o < 3 * 128) of the three layers' W: layer o / 128, output o % 128.
  void refresh_row(const float* params, int o);
  static constexpr int kRows = 3 * kHidden;
};

// Embedding table emb[t][k] for t = 0..T.
std::vector<float> embedding_table(int T);

// The time-dependent part of layer 0 for every step, e[t] = W0[:, x_inputs:] emb(t) + b0,
// t = 0..T ([T + 1][128]; row 0 unused): computed once for all points of a sampling run.
std::vector<float> layer0_time_terms(const NetLayout& net, const float* params, int T);

// The same at one real time tau (the probability-flow ODE's stages), into out[128].
void layer0_time_term(const NetLayout& net, const float* params, float tau, float* out);

// The time term of every stage of an ODE table, [stages][128]: every point
// meets the same stages, so both backends compute these once per table.
std::vector<float> ode_time_terms(const NetLayout& net, const float* params, const OdeTable& table);

}  // namespace ddpm::cpu
