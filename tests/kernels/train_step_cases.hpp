// Checks of the fused training step, written once for both backends (the
// kernels emulated on the CPU, or run on a GPU). A Backend provides
//
//   BatchOut  batch(seed, step, n, T, data)            kernel 1
//   RowsOut   rows(RowsIn)                              kernel 2
//   AdamOut   adam(AdamIn)                              kernel 3
//   vector<float> train(sched, config, state)           config.steps whole steps; state updated
//
// The references: the CPU backend's batch (draw_batch_rows, batch_stats), a
// double-precision forward and backward pass written here from the equations
// (independent of both the kernels and the CPU backend's fused code), the CPU
// backend's loss_and_grad, Adam in double, and the CPU's train().
// Every output is poisoned (NaN) before a run and every element is checked.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ddpm/math.hpp"
#include "ddpm/params.hpp"
#include "host/cpu/batch.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "kernels/train_step.hpp"
#include "tests/cpu/reference.hpp"

namespace ddpm::kernels::train_cases {

inline uint64_t fresh_seed() {
  const uint64_t seed = (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
  return seed;
}

// ---- Inputs and outputs of the three kernels ----

struct BatchOut {
  std::vector<float> x0, eps;  // raw rows, before normalization
  std::vector<int> t;
  TrainBatchStats stats;
};

struct RowsIn {
  std::vector<float> params;   // laid out as model.net()
  std::vector<float> x0, eps;  // raw rows, normalized by `stats` inside the kernel
  std::vector<int> t;
  TrainBatchStats stats;
  const Schedule* sched;
  int n, grid;
  ModelConfig model{};               // the kernel's instantiation
  XEmbeddingFrequencies x_freq{};    // TrainNetView::x_freq (the host's, or a planted table)
};
struct RowsOut {
  std::vector<float> grad_partial;   // [grid][model.net().param_count]
  std::vector<double> loss_partial;  // [grid]
  std::vector<float> activations;    // [n][3 * 128 + 2]
};

struct OptBuffers {
  std::vector<float> params, wt0, wt1, wt2, m, v, ema;  // ema empty: not kept
};
struct AdamIn {
  OptBuffers opt;
  float ema_decay = 0, ema_one_minus_decay = 0;
  std::vector<float> grad_partial;  // [partials][kParamCount]
  std::vector<double> loss_partial;  // [partials]
  int partials = 0, n = 0;
  int64_t first_step = 0, step = 0;  // the clock: table[step - first_step] is this step's
  std::vector<AdamStep> table;
};
struct AdamOut {
  OptBuffers opt;
  std::vector<float> grad, losses;
  int64_t step = 0;
};

// ---- Comparisons ----

// Every element: |got - want| <= tol * scale[i]; reports the first few misses by name.
inline int count_misses(const char* what, const std::vector<float>& got, const std::vector<double>& want,
                        const std::vector<double>& scale, double tol) {
  EXPECT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (std::size_t i = 0; i < std::min(got.size(), want.size()); ++i)
    if (!(std::abs(double(got[i]) - want[i]) <= tol * scale[i]) && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i] << " (allowed "
                    << tol * scale[i] << ")";
  return bad;
}
inline std::vector<double> one_plus_abs(const std::vector<double>& v) {
  std::vector<double> s(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) s[i] = 1 + std::abs(v[i]);
  return s;
}
inline std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// ---- The double-precision reference of one batch ----

// The network's input is defined in float, as the seed computes it: the
// normalized row (normalize_rows: float((x - mean) * inv_std)), q_sample with
// the schedule's float coefficients, and the float embedding
// (timestep_embedding, whose float argument t * freq is itself ~1e-5 off
// the exact one); with the x encoding, each coordinate of that float x_t
// encoded with the float argument (s x_t) freq_j (ref::x_embedding, freq_j
// from x_freq). From there on everything is in double.
struct RefBatch {
  int n;
  std::vector<double> h[3], g[3];   // silu and silu' of the hidden layers, [n][128]
  std::vector<double> out;          // [n][2]
  double loss = 0;
  // dL/dp, and its error scale sum_r |term_r| (the magnitude at which float
  // summation cancels, whatever the order).
  std::vector<double> grad, grad_scale;
};

inline float normalized(float x, double mean, double inv_std) { return float((double(x) - mean) * inv_std); }

inline RefBatch reference_step(const std::vector<float>& params, const Schedule& s, const std::vector<float>& x0,
                               const std::vector<float>& eps, const std::vector<int>& t, const TrainBatchStats& st,
                               int n, const ModelConfig& model = {}, const float* x_freq = nullptr) {
  const NetLayout& net = model.net();
  const LayerShape *L0 = &net.layers[0], *L1 = &net.layers[1], *L2 = &net.layers[2], *L3 = &net.layers[3];
  const bool encoded = model.x_embedding == XEmbedding::kSinusoidal;
  RefBatch R;
  R.n = n;
  for (int l = 0; l < 3; ++l) {
    R.h[l].assign(std::size_t(n) * kHidden, 0);
    R.g[l].assign(std::size_t(n) * kHidden, 0);
  }
  R.out.assign(2 * std::size_t(n), 0);
  R.grad.assign(net.param_count, 0);
  R.grad_scale.assign(net.param_count, 0);
  auto P = [&](std::size_t i) { return double(params[i]); };
  std::vector<double> a(net.in0()), dout(2), dz3(kHidden), dz2(kHidden), dz1(kHidden);
  for (int r = 0; r < n; ++r) {
    for (int d = 0; d < 2; ++d) {
      const float xt = q_sample(normalized(x0[2 * r + d], st.mean[d], st.inv_std[d]), eps[2 * r + d], s.forward[t[r]]);
      if (encoded)
        for (int k = 0; k < kEmbDim; ++k) a[d * kEmbDim + k] = ref::x_embedding(xt, model.x_scale, k, x_freq);
      else
        a[d] = xt;
    }
    for (int k = 0; k < kEmbDim; ++k) a[net.x_inputs + k] = timestep_embedding(t[r], k);
    // forward
    const double* in = a.data();
    for (int l = 0; l < 3; ++l) {
      const LayerShape& L = net.layers[l];
      for (int o = 0; o < kHidden; ++o) {
        double z = P(L.bias + o);
        for (int k = 0; k < L.in; ++k) z += P(L.weight + std::size_t(o) * L.in + k) * in[k];
        const double sg = 1 / (1 + std::exp(-z));
        R.h[l][std::size_t(r) * kHidden + o] = z * sg;
        R.g[l][std::size_t(r) * kHidden + o] = sg * (1 + z * (1 - sg));
      }
      in = &R.h[l][std::size_t(r) * kHidden];
    }
    for (int c = 0; c < 2; ++c) {
      double o = P(L3->bias + c);
      for (int k = 0; k < kHidden; ++k) o += P(L3->weight + std::size_t(c) * kHidden + k) * in[k];
      R.out[2 * r + c] = o;
      const double d = o - eps[2 * r + c];
      R.loss += d * d;
      dout[c] = 2 * d / (2.0 * n);  // d/d out of sum (out - eps)^2 / (2n)
    }
    // backward: dz_l = (dz_{l+1} W_{l+1}) * silu'(z_l)
    const double* h1 = &R.h[0][std::size_t(r) * kHidden];
    const double* h2 = &R.h[1][std::size_t(r) * kHidden];
    const double* h3 = &R.h[2][std::size_t(r) * kHidden];
    for (int k = 0; k < kHidden; ++k)
      dz3[k] = (dout[0] * P(L3->weight + k) + dout[1] * P(L3->weight + kHidden + k)) *
               R.g[2][std::size_t(r) * kHidden + k];
    for (int k = 0; k < kHidden; ++k) {
      double sum = 0;
      for (int o = 0; o < kHidden; ++o) sum += dz3[o] * P(L2->weight + std::size_t(o) * kHidden + k);
      dz2[k] = sum * R.g[1][std::size_t(r) * kHidden + k];
    }
    for (int k = 0; k < kHidden; ++k) {
      double sum = 0;
      for (int o = 0; o < kHidden; ++o) sum += dz2[o] * P(L1->weight + std::size_t(o) * kHidden + k);
      dz1[k] = sum * R.g[0][std::size_t(r) * kHidden + k];
    }
    // dW[o][k] += dz[o] A[k], db[o] += dz[o]
    auto accumulate = [&](const LayerShape& L, const double* dz, const double* A) {
      for (int o = 0; o < L.out; ++o) {
        for (int k = 0; k < L.in; ++k) {
          R.grad[L.weight + std::size_t(o) * L.in + k] += dz[o] * A[k];
          R.grad_scale[L.weight + std::size_t(o) * L.in + k] += std::abs(dz[o] * A[k]);
        }
        R.grad[L.bias + o] += dz[o];
        R.grad_scale[L.bias + o] += std::abs(dz[o]);
      }
    };
    accumulate(*L3, dout.data(), h3);
    accumulate(*L2, dz3.data(), h2);
    accumulate(*L1, dz2.data(), h1);
    accumulate(*L0, dz1.data(), a.data());
  }
  R.loss /= 2.0 * n;
  return R;
}

// Parameters that look trained: the initialization scaled up, so that
// activations leave SiLU's linear part and every layer matters.
inline std::vector<float> test_params(uint64_t seed, const ModelConfig& model = {}) {
  std::vector<float> p = cpu::init_params(seed, model);
  for (float& v : p) v *= 3.f;
  return p;
}

// ---- Kernel 1: the batch and its statistics ----

// The raw rows are the CPU's draw_batch_rows to the bit (emulation) or to
// `row_tol` (a GPU's curand_normal4 uses its own log and sincos); t is
// always exact; the statistics match batch_stats to 1e-12 relative, and the
// normalized rows to `norm_tol`. Several blocks with a partial last one, and
// a batch inside one block.
template <class Backend>
void batch_matches_the_cpu_draw(Backend& b, Dataset dataset, double row_tol, double norm_tol) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + ", dataset " + dataset_name(dataset));
  std::mt19937_64 gen(seed);
  std::vector<float> points;
  if (dataset == Dataset::kFile) {
    std::normal_distribution<float> normal(0.f, 3.f);
    points.resize(2 * 1000);
    for (float& v : points) v = normal(gen) + 5.f;
  }
  const DataSource data{dataset, points.data(), int64_t(points.size() / 2)};
  for (const int n : {700, 100}) {
    SCOPED_TRACE("n " + std::to_string(n));
    const int T = 1 + int(gen() % 1000);
    const uint64_t step = gen() % 100000;
    const BatchOut got = b.batch(seed, step, n, T, data);
    std::vector<float> x0(2 * n), eps(2 * n);
    std::vector<int> t(n);
    cpu::draw_batch_rows(seed, step, n, T, 0, n, x0.data(), eps.data(), t.data(), data);
    const cpu::BatchStats st = cpu::batch_stats(x0.data(), n);
    if (row_tol == 0) {
      EXPECT_EQ(0, std::memcmp(got.x0.data(), x0.data(), x0.size() * sizeof(float))) << "x0 differs";
      EXPECT_EQ(0, std::memcmp(got.eps.data(), eps.data(), eps.size() * sizeof(float))) << "eps differs";
    } else {
      EXPECT_EQ(0, count_misses("x0", got.x0, widen(x0), one_plus_abs(widen(x0)), row_tol));
      EXPECT_EQ(0, count_misses("eps", got.eps, widen(eps), one_plus_abs(widen(eps)), row_tol));
    }
    EXPECT_EQ(got.t, t);
    for (int d = 0; d < 2; ++d) {
      const double stat_tol = row_tol == 0 ? 1e-12 : 10 * row_tol;
      EXPECT_NEAR(got.stats.mean[d], st.mean[d], stat_tol * (1 + std::abs(st.mean[d]))) << "coordinate " << d;
      EXPECT_NEAR(got.stats.inv_std[d], st.inv_std[d], stat_tol * st.inv_std[d]) << "coordinate " << d;
    }
    std::vector<float> got_norm(2 * n);
    std::vector<double> want_norm(2 * n);
    for (int i = 0; i < 2 * n; ++i) got_norm[i] = normalized(got.x0[i], got.stats.mean[i % 2], got.stats.inv_std[i % 2]);
    cpu::normalize_rows(st, 0, n, x0.data());
    for (int i = 0; i < 2 * n; ++i) want_norm[i] = x0[i];
    EXPECT_EQ(0, count_misses("normalized x0", got_norm, want_norm, one_plus_abs(want_norm), norm_tol));
  }
}

// ---- Kernel 2: forward, loss and every gradient of one batch ----

inline RowsIn random_rows_input(uint64_t seed, const Schedule& s, int n, int grid, const ModelConfig& model = {}) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<double> uni(-1, 1);
  RowsIn in;
  in.model = model;
  in.x_freq = x_embedding_frequencies();
  in.params = test_params(seed, model);
  in.x0.resize(2 * n);
  in.eps.resize(2 * n);
  in.t.resize(n);
  for (float& v : in.x0) v = 2.f * normal(gen) + 0.5f;
  for (float& v : in.eps) v = normal(gen);
  for (int& v : in.t) v = 1 + int(gen() % uint64_t(s.T));
  for (int d = 0; d < 2; ++d) {
    in.stats.mean[d] = 0.5 + 0.1 * uni(gen);
    in.stats.inv_std[d] = 0.5 * (1 + 0.1 * uni(gen));
  }
  in.sched = &s;
  in.n = n;
  in.grid = grid;
  return in;
}

// Activations, loss and the gradient of every parameter against the double
// reference, every element; and the CPU backend's loss_and_grad against the
// same reference and tolerance. Tolerances: an activation is a chain of <= 4
// float dot products of <= 128 terms, so |error| <= act_tol (1 + |h|); a
// gradient element is a sum over rows of products whose factors carry such
// errors, held to grad_tol times sum_r |term_r| (RefBatch::grad_scale), in
// any summation order; the largest error / scale seen is printed. `model`
// picks the kernel's instantiation; `planted`: the x encoding's frequencies
// handed to the kernel and the reference in place of the host's (the CPU
// backend, which computes its own, is then left out).
template <class Backend>
void rows_match_the_reference(Backend& b, int n, int grid, double act_tol, double grad_tol,
                              const ModelConfig& model = {}, const XEmbeddingFrequencies* planted = nullptr) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + ", n " + std::to_string(n) + ", grid " + std::to_string(grid));
  const Schedule s = Schedule::linear(200);
  const NetLayout& net = model.net();
  const std::size_t count = net.param_count;
  RowsIn in = random_rows_input(seed, s, n, grid, model);
  if (planted != nullptr) in.x_freq = *planted;
  const RowsOut got = b.rows(in);
  const RefBatch R = reference_step(in.params, s, in.x0, in.eps, in.t, in.stats, n, model, in.x_freq.freq);

  // Activations: h1, h2, h3, out of every row.
  const int width = 3 * kHidden + 2;
  std::vector<double> want(std::size_t(n) * width);
  for (int r = 0; r < n; ++r) {
    for (int l = 0; l < 3; ++l)
      for (int k = 0; k < kHidden; ++k)
        want[std::size_t(r) * width + l * kHidden + k] = R.h[l][std::size_t(r) * kHidden + k];
    want[std::size_t(r) * width + 3 * kHidden] = R.out[2 * r];
    want[std::size_t(r) * width + 3 * kHidden + 1] = R.out[2 * r + 1];
  }
  EXPECT_EQ(0, count_misses("activations", got.activations, want, one_plus_abs(want), act_tol));

  // Loss: the partials' sum / (2n).
  ASSERT_EQ(got.loss_partial.size(), std::size_t(grid));
  double loss = 0;
  for (double l : got.loss_partial) loss += l;
  loss /= 2.0 * n;
  EXPECT_NEAR(loss, R.loss, act_tol * 10 * R.loss);

  // Gradient: the partials summed (in double here; the Adam test checks the kernel's sum).
  ASSERT_EQ(got.grad_partial.size(), std::size_t(grid) * count);
  std::vector<float> grad(count);
  for (std::size_t i = 0; i < count; ++i) {
    double g = 0;
    for (int blk = 0; blk < grid; ++blk) g += got.grad_partial[std::size_t(blk) * count + i];
    grad[i] = float(g);
  }
  std::vector<double> scale(count);
  for (std::size_t i = 0; i < count; ++i) scale[i] = R.grad_scale[i] + 1e-30;
  auto worst = [&](const std::vector<float>& g) {
    double w = 0;
    for (std::size_t i = 0; i < count; ++i) w = std::max(w, std::abs(g[i] - R.grad[i]) / scale[i]);
    return w;
  };
  for (const LayerShape& L : net.layers) {
    SCOPED_TRACE(L.weight_name);
    const std::size_t end = L.bias + L.out;
    auto part = [&](const auto& v) { return std::vector<typename std::decay_t<decltype(v)>::value_type>(v.begin() + L.weight, v.begin() + end); };
    EXPECT_EQ(0, count_misses("grad", part(grad), part(R.grad), part(scale), grad_tol));
  }
  if (planted != nullptr) {
    std::printf("n %d: largest gradient error / scale: kernel %.3g (allowed %.3g)\n", n, worst(grad), grad_tol);
    return;
  }

  // The CPU backend on the same normalized batch, held to the same reference.
  std::vector<float> x0n(2 * n);
  for (int i = 0; i < 2 * n; ++i) x0n[i] = normalized(in.x0[i], in.stats.mean[i % 2], in.stats.inv_std[i % 2]);
  std::vector<float> cpu_grad(count, std::nanf(""));
  const float cpu_loss = cpu::loss_and_grad(s, in.params.data(), x0n.data(), in.eps.data(), in.t.data(), n,
                                            cpu_grad.data(), model);
  EXPECT_NEAR(cpu_loss, R.loss, act_tol * 10 * R.loss);
  EXPECT_EQ(0, count_misses("cpu grad", cpu_grad, R.grad, scale, grad_tol));
  std::printf("n %d: largest gradient error / scale: kernel %.3g, CPU backend %.3g (allowed %.3g)\n", n,
              worst(grad), worst(cpu_grad), grad_tol);
}

// The x encoding's frequencies are the host's, handed to the rows kernel in
// its parameters (TrainNetView::x_freq; the device's expf may be 2 ulp from
// the host's, CUDA's bound, which at s |x_t| ~ 100 moves the encoding's
// arguments by ~1e-5). Emulation's expf is the host's, so only a table the
// host could not have computed tells whether the kernel reads it: every
// frequency scaled by 0.75, planted in the parameters, and the reference
// encoding with that same table. A kernel computing its own frequencies misses
// every activation by O(1).
template <class Backend>
void x_encoding_rows_read_the_hosts_frequencies(Backend& b, int n, int grid, double act_tol, double grad_tol) {
  XEmbeddingFrequencies planted = x_embedding_frequencies();
  for (float& f : planted.freq) f *= 0.75f;
  rows_match_the_reference(b, n, grid, act_tol, grad_tol, ModelConfig{XEmbedding::kSinusoidal, kXScale}, &planted);
}

// The block partials do not depend on anything but the grid: two runs give the same bytes.
template <class Backend>
void rows_are_deterministic(Backend& b, int n, int grid) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear(50);
  const RowsIn in = random_rows_input(seed, s, n, grid);
  const RowsOut a = b.rows(in), c = b.rows(in);
  EXPECT_EQ(0, std::memcmp(a.grad_partial.data(), c.grad_partial.data(), a.grad_partial.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(a.loss_partial.data(), c.loss_partial.data(), a.loss_partial.size() * sizeof(double)));
}

// ---- Kernel 3: reduction, Adam, EMA, transposes, loss, step ----

// Against Adam in double from the same float scalars: |error| <= 1e-6
// (|p| + step_size) for p (float rounding of p and of the update), 1e-5
// relative for m and v (the kernel sums the partials in float: its gradient
// is within ~partials ulps of the double sum), and the EMA likewise; the
// transposed copies equal the new weights bit for bit; the loss is the
// partials' sum / 2n; the step advances by one.
template <class Backend>
void adam_matches_the_reference(Backend& b, bool ema) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + (ema ? ", with EMA" : ""));
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  AdamIn in;
  in.partials = 3;
  in.n = 512;
  in.opt.params = test_params(seed);
  in.opt.m.resize(kParamCount);
  in.opt.v.resize(kParamCount);
  in.grad_partial.resize(std::size_t(in.partials) * kParamCount);
  for (float& g : in.grad_partial) g = 0.01f * normal(gen);
  for (std::size_t i = 0; i < kParamCount; ++i) {
    in.opt.m[i] = 0.01f * normal(gen);
    in.opt.v[i] = 1e-4f * (0.5f + uni(gen));
  }
  for (int l = 0; l < in.partials; ++l) in.loss_partial.push_back(100.0 * uni(gen));
  in.opt.wt0.assign(std::size_t(kInDim) * kHidden, std::nanf(""));
  in.opt.wt1.assign(std::size_t(kHidden) * kHidden, std::nanf(""));
  in.opt.wt2.assign(std::size_t(kHidden) * kHidden, std::nanf(""));
  if (ema) {
    in.opt.ema = test_params(seed ^ 1);
    in.ema_decay = 0.995f;
    in.ema_one_minus_decay = float(1.0 - 0.995);
  }
  in.first_step = int64_t(gen() % 1000);
  in.step = in.first_step + 3;
  for (int64_t k = in.first_step + 1; k <= in.first_step + 5; ++k)
    in.table.push_back(AdamStep::at(k, 1e-3 * (1 + uni(gen))));
  const AdamOut got = b.adam(in);

  const AdamStep& s = in.table[std::size_t(in.step - in.first_step)];
  std::vector<double> p(kParamCount), m(kParamCount), v(kParamCount), g(kParamCount), e(kParamCount);
  std::vector<double> p_scale(kParamCount), m_scale(kParamCount), v_scale(kParamCount), g_scale(kParamCount);
  for (std::size_t i = 0; i < kParamCount; ++i) {
    double gs = 0, ga = 0;
    for (int l = 0; l < in.partials; ++l) {
      gs += in.grad_partial[std::size_t(l) * kParamCount + i];
      ga += std::abs(in.grad_partial[std::size_t(l) * kParamCount + i]);
    }
    g[i] = gs;
    g_scale[i] = ga;
    m[i] = double(s.beta1) * in.opt.m[i] + double(s.one_minus_beta1) * gs;
    v[i] = double(s.beta2) * in.opt.v[i] + double(s.one_minus_beta2) * gs * gs;
    p[i] = in.opt.params[i] - double(s.step_size) * m[i] / (std::sqrt(v[i]) * double(s.inv_sqrt_bc2) + double(s.eps));
    p_scale[i] = std::abs(p[i]) + s.step_size;
    m_scale[i] = std::abs(m[i]) + 1e-2 * g_scale[i];
    v_scale[i] = v[i];
    if (ema) e[i] = double(in.ema_decay) * in.opt.ema[i] + double(in.ema_one_minus_decay) * got.opt.params[i];
  }
  EXPECT_EQ(0, count_misses("grad", got.grad, g, g_scale, 1e-6));
  EXPECT_EQ(0, count_misses("params", got.opt.params, p, p_scale, 1e-6));
  EXPECT_EQ(0, count_misses("adam_m", got.opt.m, m, m_scale, 1e-5));
  EXPECT_EQ(0, count_misses("adam_v", got.opt.v, v, v_scale, 1e-5));
  if (ema) {
    EXPECT_EQ(0, count_misses("ema", got.opt.ema, e, one_plus_abs(e), 1e-6));
  }

  // The transposes, bit for bit.
  int wrong = 0;
  for (int l = 0; l < 3; ++l) {
    const LayerShape& L = kLayers[l];
    const std::vector<float>& wt = l == 0 ? got.opt.wt0 : l == 1 ? got.opt.wt1 : got.opt.wt2;
    for (int o = 0; o < L.out; ++o)
      for (int k = 0; k < L.in; ++k)
        if (std::memcmp(&wt[std::size_t(k) * kHidden + o], &got.opt.params[L.weight + std::size_t(o) * L.in + k],
                        sizeof(float)) != 0 &&
            ++wrong <= 5)
          ADD_FAILURE() << L.weight_name << "^T[" << k << "][" << o << "] differs from the weight";
  }
  EXPECT_EQ(wrong, 0);

  // The loss slot of this step, and only it, and the step counter.
  double loss = 0;
  for (double l : in.loss_partial) loss += l;
  ASSERT_EQ(got.losses.size(), in.table.size());
  for (std::size_t j = 0; j < got.losses.size(); ++j) {
    if (int64_t(j) == in.step - in.first_step)
      EXPECT_EQ(got.losses[j], float(loss / (2.0 * in.n)));
    else
      EXPECT_TRUE(std::isnan(got.losses[j])) << "loss slot " << j << " was written";
  }
  EXPECT_EQ(got.step, in.step + 1);
}

// ---- End to end: whole steps against the CPU's train() ----

// `steps` steps of both from the same fresh state, with the EMA and a cosine
// learning-rate schedule with warm-up (so every per-step scalar differs). The
// batches are the same (same Philox streams); the arithmetic differs in float
// rounding (SiLU's exp, summation orders), and Adam's first steps, which move
// each weight by about lr * sign(g), turn that into weight differences that
// grow with the steps; so the check is on the loss of every step (relative
// loss_tol) and on the weights and EMA after the run (|dp| <= param_tol,
// every element).
template <class Backend>
void steps_match_the_cpu_trainer(Backend& b, int n, int64_t steps, double loss_tol, double param_tol,
                                 const ModelConfig& model = {}) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + ", n " + std::to_string(n) + ", steps " + std::to_string(steps));
  const Schedule s = Schedule::linear();
  cpu::TrainConfig config;
  config.steps = steps;
  config.batch = n;
  config.seed = seed;
  config.ema_decay = 0.9;
  config.model = model;
  cpu::TrainState start = cpu::TrainState::fresh(seed, model);
  start.step = int64_t(seed % 1000);  // not from 0: the clock and the streams continue from state.step
  config.lr_schedule.cosine = true;
  config.lr_schedule.warmup_steps = start.step + steps / 5;
  config.lr_schedule.total_steps = start.step + 3 * steps;
  config.lr_schedule.final_fraction = 0.1;

  cpu::TrainState gpu_state = start, cpu_state = start;
  const std::vector<float> got = b.train(s, config, gpu_state);
  std::vector<float> want;
  cpu::train(s, config, cpu_state, [&](int64_t, float loss) { want.push_back(loss); });

  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (std::size_t j = 0; j < got.size(); ++j)
    if (!(std::abs(got[j] - want[j]) <= loss_tol * want[j]) && ++bad <= 5)
      ADD_FAILURE() << "loss of step " << j + 1 << ": got " << got[j] << ", want " << want[j];
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(gpu_state.step, cpu_state.step);
  const std::vector<double> ones(model.net().param_count, 1.0);
  EXPECT_EQ(0, count_misses("params", gpu_state.params, widen(cpu_state.params), ones, param_tol));
  EXPECT_EQ(0, count_misses("ema", gpu_state.ema, widen(cpu_state.ema), ones, param_tol));
  double max_diff = 0;
  for (std::size_t i = 0; i < kParamCount; ++i)
    max_diff = std::max(max_diff, double(std::abs(gpu_state.params[i] - cpu_state.params[i])));
  std::printf("after %lld steps: final loss %.6f vs %.6f, max |dp| %.3g\n", static_cast<long long>(steps),
              double(got.back()), double(want.back()), max_diff);
}

}  // namespace ddpm::kernels::train_cases
