#include "host/cpu/mlp.hpp"

#include "ddpm/math.hpp"

namespace ddpm::cpu {

TransposedWeights::TransposedWeights(const NetLayout& net)
    : net(net), wt0(std::size_t(net.in0()) * kHidden), wt1(std::size_t(kHidden) * kHidden), wt2(std::size_t(kHidden) * kHidden) {}

void TransposedWeights::refresh_row(const float* params, int row) {
  const int layer = row / kHidden, o = row % kHidden;
  const LayerShape& L = net.layers[layer];
  float* wt = layer == 0 ? wt0.data() : layer == 1 ? wt1.data() : wt2.data();
  const float* w = params + L.weight + std::size_t(o) * L.in;
  for (int k = 0; k < L.in; ++k) wt[std::size_t(k) * kHidden + o] = w[k];
}

void TransposedWeights::refresh(const float* params) {
  for (int row = 0; row < kRows; ++row) refresh_row(params, row);
}

std::vector<float> embedding_table(int T) {
  std::vector<float> table(std::size_t(T + 1) * kEmbDim);
  for (int t = 0; t <= T; ++t)
    for (int k = 0; k < kEmbDim; ++k) table[std::size_t(t) * kEmbDim + k] = timestep_embedding(t, k);
  return table;
}

void layer0_time_term(const NetLayout& net, const float* params, float tau, float* out) {
  float emb[kEmbDim];
  for (int k = 0; k < kEmbDim; ++k) emb[k] = timestep_embedding(tau, k);
  const LayerShape& l0 = net.layers[0];
  const float* w = params + l0.weight;
  for (int o = 0; o < kHidden; ++o) {
    float s = params[l0.bias + o];
    for (int k = 0; k < kEmbDim; ++k) s += w[std::size_t(o) * l0.in + net.x_inputs + k] * emb[k];
    out[o] = s;
  }
}

std::vector<float> ode_time_terms(const NetLayout& net, const float* params, const OdeTable& table) {
  std::vector<float> e(table.stages.size() * kHidden);
  for (std::size_t k = 0; k < table.stages.size(); ++k) layer0_time_term(net, params, table.stages[k].tau, e.data() + k * kHidden);
  return e;
}

// The time-dependent part of layer 0 for every step, computed once for all
// points since it depends only on t:  e[t] = W0[:, x_inputs:] emb(t) + b0.
std::vector<float> layer0_time_terms(const NetLayout& net, const float* params, int T) {
  std::vector<float> e(std::size_t(T + 1) * kHidden);
  for (int t = 1; t <= T; ++t) layer0_time_term(net, params, float(t), e.data() + std::size_t(t) * kHidden);
  return e;
}

}  // namespace ddpm::cpu
