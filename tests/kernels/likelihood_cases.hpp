// Checks of the likelihood's kernels, written once for both backends:
//   Backend::vlb(params, sched, table, seed, first, n, x0, run) -> n VlbSums
//   Backend::ode(params, sched, table, n, x0, run)              -> n x 3 floats (y_T0, y_T1, l)
// each with its outputs poisoned (NaN) before the kernels write them. The
// references: the CPU backend (cpu::vlb_sums, cpu::ode_end_states, the
// contract: same draws, same order of sums), and, independent of it, the bound
// and the RK4 table in double over a double network (tests/cpu/reference.hpp)
// with the divergence by central differences.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ddpm/likelihood.hpp"
#include "ddpm/params.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "kernels/likelihood.hpp"
#include "tests/cpu/reference.hpp"

namespace ddpm::kernels::likelihood_cases {

struct Run {
  ModelConfig model{};
  int grid = 2;  // persistent blocks (emulation; the driver picks its own)
};

// A fresh seed for the weights, the points and the draws, printed (and in every failure's trace).
inline uint64_t fresh_seed() {
  const uint64_t seed = std::random_device{}();
  std::printf("  seed %llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

// Held-out points: N(0, 1.5^2 I) in the model's normalized units, from the test's seed.
inline std::vector<float> held_out_points(uint64_t seed, int64_t n) {
  std::mt19937_64 gen(seed ^ 0x9e3779b97f4a7c15ull);
  std::normal_distribution<float> z(0.f, 1.5f);
  std::vector<float> x(2 * std::size_t(n));
  for (float& v : x) v = z(gen);
  return x;
}

// Random weights (PyTorch's init from the seed), scaled up so that the
// activations leave SiLU's linear part and every layer's error shows.
inline std::vector<float> strong_params(uint64_t seed, const ModelConfig& model, float scale = 3.f) {
  std::vector<float> p = cpu::init_params(seed, model);
  for (float& v : p) v *= scale;
  return p;
}

// Betas from 1e-3 to 0.2 over 20 steps: alpha_bar_T = 0.13, so the bound's
// x_t and the ODE's states range from the data to mostly noise in few evaluations.
inline Schedule short_schedule() { return Schedule::linear(20, 1e-3, 0.2); }

// ---- References ----

inline std::vector<VlbSums> cpu_vlb(const std::vector<float>& p, const Schedule& s, const VlbTable& table,
                                    uint64_t seed, int64_t first, int64_t n, const float* x0, const ModelConfig& model) {
  std::vector<VlbSums> out(std::size_t(n), VlbSums{NAN, NAN});
  cpu::vlb_sums(s, p.data(), table, seed, first, n, x0, out.data(), model);
  return out;
}

inline std::vector<float> cpu_ode(const std::vector<float>& p, const OdeTable& table, int64_t n, const float* x0,
                                  const ModelConfig& model) {
  std::vector<float> out(3 * std::size_t(n), NAN);
  cpu::ode_end_states(p.data(), table, n, x0, out.data(), model);
  return out;
}

// The bound in double: the same eps (pair t - 1 of the point's stream) and
// the table's coefficients, x_t and eps_theta in double, the sums in double.
inline std::vector<double> double_vlb(const std::vector<float>& p, const VlbTable& table, int T, uint64_t seed,
                                      int64_t first, int64_t n, const float* x0, const ModelConfig& model) {
  std::vector<double> out(2 * std::size_t(n));  // (steps, decoder) per point
  for (int64_t i = 0; i < n; ++i) {
    NormalPairs rng{};
    philox_init(&rng.state, seed, Stream::kLikelihood, uint64_t(first + i));
    double steps = 0, decoder = 0;
    for (int t = 1; t <= T; ++t) {
      float e[2];
      rng.next(e[0], e[1]);
      const ForwardCoef& c = table.terms[t].forward;
      double xt[2], pred[2];
      for (int d = 0; d < 2; ++d)
        xt[d] = double(c.sqrt_alpha_bar) * x0[2 * i + d] + double(c.sqrt_one_minus_alpha_bar) * e[d];
      ref::eps_theta(p.data(), xt[0], xt[1], double(t), pred, model);
      const double err = double(table.terms[t].weight) * ((e[0] - pred[0]) * (e[0] - pred[0]) + (e[1] - pred[1]) * (e[1] - pred[1]));
      (t == 1 ? decoder : steps) += err;
    }
    out[2 * i] = steps;
    out[2 * i + 1] = decoder;
  }
  return out;
}

// The RK4 table in double (the table's float coefficients, everything else in
// double) over the double network of the seed's model, whose input is x
// itself; the divergence by central differences (h = 1e-5: truncation
// ~h^2 |eps'''| and cancellation ~1e-16 / h, both far below the kernels' float rounding).
inline std::vector<double> double_ode(const std::vector<float>& p, const OdeTable& table, int64_t n, const float* x0) {
  std::vector<double> out(3 * std::size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    double y[2] = {x0[2 * i], x0[2 * i + 1]}, l = 0, acc[3] = {0, 0, 0}, g[3] = {0, 0, 0};
    for (const OdeStage& st : table.stages) {
      const double x[2] = {st.x_scale * (y[0] + double(st.in_coef) * g[0]), st.x_scale * (y[1] + double(st.in_coef) * g[1])};
      double eps[2], plus[2], minus[2], div = 0;
      ref::eps_theta(p.data(), x[0], x[1], double(st.tau), eps);
      const double h = 1e-5;
      for (int b = 0; b < 2; ++b) {
        double xp[2] = {x[0], x[1]}, xm[2] = {x[0], x[1]};
        xp[b] += h;
        xm[b] -= h;
        ref::eps_theta(p.data(), xp[0], xp[1], double(st.tau), plus);
        ref::eps_theta(p.data(), xm[0], xm[1], double(st.tau), minus);
        div += (plus[b] - minus[b]) / (2 * h);
      }
      g[0] = eps[0];
      g[1] = eps[1];
      g[2] = st.x_scale * div;
      for (int k = 0; k < 3; ++k) acc[k] += double(st.out_coef) * g[k];
      if (st.ends_step) {
        y[0] += acc[0];
        y[1] += acc[1];
        l += acc[2];
        acc[0] = acc[1] = acc[2] = 0;
      }
    }
    out[3 * i] = y[0];
    out[3 * i + 1] = y[1];
    out[3 * i + 2] = l;
  }
  return out;
}

// ---- Comparisons, every element; each prints its largest error ----

// A sum of weighted squared errors, sum_t w_t |eps_t - pred_t|^2, moves by
// 2 w_t |eps_t - pred_t| |d pred_t| <= w_t (|eps_t - pred_t|^2 + 1) delta when
// each prediction moves by delta (float rounding: a few 1e-7 of |pred| ~ 1):
// so |got - want| <= tol (|want| + sum_t w_t), the floor keeping a term whose
// error happens to be near 0 from counting as a large relative error.
inline void expect_sums_close(const std::vector<VlbSums>& got, const std::vector<double>& want, const VlbTable& table,
                              int T, double tol, const char* against) {
  ASSERT_EQ(2 * got.size(), want.size());
  double w_steps = 0;
  for (int t = 2; t <= T; ++t) w_steps += table.terms[t].weight;
  const double w_decoder = table.terms[1].weight;
  double worst = 0;
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double e_steps = std::abs(got[i].steps - want[2 * i]) / (std::abs(want[2 * i]) + w_steps);
    const double e_decoder = std::abs(got[i].decoder - want[2 * i + 1]) / (std::abs(want[2 * i + 1]) + w_decoder);
    // !(e <= tol) also catches NaN: a point the kernel never wrote.
    if (!(e_steps <= tol && e_decoder <= tol) && ++bad <= 5)
      ADD_FAILURE() << "point " << i << ": got (" << got[i].steps << ", " << got[i].decoder << "), want ("
                    << want[2 * i] << ", " << want[2 * i + 1] << ")";
    worst = std::max({worst, e_steps, e_decoder});
  }
  std::printf("  bound against %s: max |got - want| / (|want| + sum w) = %.3g (tolerance %.3g)\n", against, worst, tol);
  EXPECT_EQ(bad, 0);
}

inline std::vector<double> to_double(const std::vector<VlbSums>& s) {
  std::vector<double> v(2 * s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    v[2 * i] = s[i].steps;
    v[2 * i + 1] = s[i].decoder;
  }
  return v;
}

// |got - want| <= tol (1 + |want|), every element (NaN fails); or tol scale[i]
// where the caller knows an element's scale better than its value.
inline void expect_states_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                                const char* against, const std::vector<double>& scale = {}) {
  ASSERT_EQ(got.size(), want.size());
  double worst = 0;
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double e = std::abs(got[i] - want[i]) / (scale.empty() ? 1 + std::abs(want[i]) : scale[i]);
    if (!(e <= tol) && ++bad <= 5)
      ADD_FAILURE() << "point " << i / 3 << " component " << i % 3 << ": got " << got[i] << ", want " << want[i];
    worst = std::max(worst, e);
  }
  std::printf("  ODE end states against %s: max |got - want| / %s = %.3g (tolerance %.3g)\n", against,
              scale.empty() ? "(1 + |want|)" : "scale", worst, tol);
  EXPECT_EQ(bad, 0);
}

// ---- The cases ----

// Three block tiles on two persistent blocks (a block takes two tiles), the
// last partial, from a first point far into the set; both variances (their
// weights differ from t to t). Against the CPU backend and, for the seed's
// model, against the bound in double.
template <class Backend>
void bound_matches_the_references(Backend& b, const ModelConfig& model, double tol_cpu, double tol_double) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = short_schedule();
  const std::vector<float> p = strong_params(seed, model);
  const int64_t n = 2 * kVlbShape.points_per_block + 22, first = 5000 + int64_t(seed % 1000);
  const std::vector<float> x0 = held_out_points(seed, n);
  for (const Variance variance : {Variance::kPosterior, Variance::kBeta}) {
    SCOPED_TRACE(name_of(variance));
    const VlbTable table = vlb_table(s, variance);
    const std::vector<VlbSums> got = b.vlb(p, s, table, seed, first, n, x0.data(), Run{model});
    expect_sums_close(got, to_double(cpu_vlb(p, s, table, seed, first, n, x0.data(), model)), table, s.T, tol_cpu,
                      "the CPU backend");
    if (model.x_embedding == XEmbedding::kNone)
      expect_sums_close(got, double_vlb(p, table, s.T, seed, first, n, x0.data(), model), table, s.T, tol_double,
                        "double");
  }
}

// With the output layer zeroed, eps_theta = 0 exactly, and the sums are
// sum_t w_t |eps_t|^2 of the draws alone: here with eps_t drawn by
// normal_pair_at (Philox's skip-ahead to pair t - 1 of item first + i), not by
// the sequential stream the kernel and the CPU backend both use, in the same
// float operations and order. Fails for the wrong stream, item, pair or order.
template <class Backend>
void bound_draws_pair_t_minus_1_of_the_points_stream(Backend& b, double tol) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = short_schedule();
  std::vector<float> p = cpu::init_params(seed);
  const LayerShape& out = ModelConfig{}.net().layers[3];
  std::fill(p.begin() + out.weight, p.begin() + out.bias + out.out, 0.f);
  const VlbTable table = vlb_table(s, Variance::kPosterior);
  const int64_t n = kVlbShape.points_per_block + 7, first = 123456789;
  const std::vector<float> x0 = held_out_points(seed, n);
  const std::vector<VlbSums> got = b.vlb(p, s, table, seed, first, n, x0.data(), Run{});
  std::vector<double> want(2 * std::size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    float steps = 0.f, decoder = 0.f;
    for (int t = 1; t <= s.T; ++t) {
      float e0, e1;
      normal_pair_at(seed, Stream::kLikelihood, uint64_t(first + i), uint64_t(t - 1), e0, e1);
      const float err = vlb_weighted_error(e0, e1, 0.f, 0.f, table.terms[t].weight);
      if (t == 1) decoder = err;
      else steps += err;
    }
    want[2 * i] = steps;
    want[2 * i + 1] = decoder;
  }
  expect_sums_close(got, want, table, s.T, tol, "the skip-ahead draws");
}

// 37 points: three tiles of 16 on two blocks, the last with 5 points (a warp
// with one real point beside a padding one, and five warps with none); three
// RK4 steps (12 stages). Against the CPU backend and, for the seed's model,
// against the table in double with central-difference divergences.
template <class Backend>
void ode_matches_the_references(Backend& b, const ModelConfig& model, double tol_cpu, double tol_double,
                                float weight_scale = 3.f) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = short_schedule();
  const std::vector<float> p = strong_params(seed, model, weight_scale);
  const OdeTable table = ode_rk4_table(s, 3);
  const int64_t n = 2 * kOdeShape.points_per_block + 5;
  const std::vector<float> x0 = held_out_points(seed, n);
  const std::vector<float> got = b.ode(p, s, table, n, x0.data(), Run{model});
  const std::vector<float> cpu = cpu_ode(p, table, n, x0.data(), model);
  expect_states_close(got, std::vector<double>(cpu.begin(), cpu.end()), tol_cpu, "the CPU backend");
  if (model.x_embedding == XEmbedding::kNone) expect_states_close(got, double_ode(p, table, n, x0.data()), tol_double, "double");
}

// One evaluation alone: a table of a single stage (in_coef 0, x_scale 1,
// out_coef 1, ending its step) leaves y = x_0 + eps_theta(x_0, tau) and
// l = div eps_theta(x_0, tau), so the network and its tangents are seen
// without a chain that would amplify rounding. At several times tau (between
// whole steps too), 37 points (the last tile partial). Against the CPU
// backend's eps_jacobian and, for the seed's model, the double network with
// central differences.
template <class Backend>
void one_evaluation_gives_eps_and_the_divergence(Backend& b, const ModelConfig& model, double tol_cpu,
                                                 double tol_double) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = short_schedule();
  const std::vector<float> p = strong_params(seed, model);
  const int64_t n = 2 * kOdeShape.points_per_block + 5;
  const std::vector<float> x0 = held_out_points(seed, n);
  for (const float tau : {0.37f, 1.f, 7.5f, 20.f}) {
    SCOPED_TRACE("tau " + std::to_string(tau));
    OdeStage stage{};  // by name: the kernels read tau, x_scale, in_coef, out_coef and ends_step
    stage.tau = tau;
    stage.x_scale = 1.f;
    stage.in_coef = 0.f;
    stage.out_coef = 1.f;
    stage.ends_step = true;
    OdeTable table;
    table.stages = {stage};
    const std::vector<float> got = b.ode(p, s, table, n, x0.data(), Run{model});
    std::vector<float> eps(2 * std::size_t(n), NAN), jac(4 * std::size_t(n), NAN);
    cpu::eps_jacobian(p.data(), x0.data(), tau, int(n), eps.data(), jac.data(), model);
    // The divergence J_00 + J_11 is held to its terms' size, 1 + |J_00| + |J_11|
    // (their rounding does not shrink when they cancel); y to 1 + |y|.
    std::vector<double> want(3 * std::size_t(n)), scale(3 * std::size_t(n));
    for (int64_t i = 0; i < n; ++i) {
      want[3 * i] = double(x0[2 * i]) + eps[2 * i];
      want[3 * i + 1] = double(x0[2 * i + 1]) + eps[2 * i + 1];
      want[3 * i + 2] = double(jac[4 * i]) + jac[4 * i + 3];
      scale[3 * i] = 1 + std::abs(want[3 * i]);
      scale[3 * i + 1] = 1 + std::abs(want[3 * i + 1]);
      scale[3 * i + 2] = 1 + std::abs(jac[4 * i]) + std::abs(jac[4 * i + 3]);
    }
    expect_states_close(got, want, tol_cpu, "eps_jacobian", scale);
    if (model.x_embedding == XEmbedding::kNone)
      expect_states_close(got, double_ode(p, table, n, x0.data()), tol_double, "double", scale);
  }
}

// Point i's result does not depend on the launch it is in: a range starting
// mid-tile, on another grid, gives the same bytes as the same points inside a
// larger range; for the bound, with its first point moved along (the draws
// follow the point's index, first + i).
template <class Backend>
void any_range_gives_the_same_bytes(Backend& b, const ModelConfig& model) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = short_schedule();
  const std::vector<float> p = strong_params(seed, model);
  {
    const VlbTable table = vlb_table(s, Variance::kPosterior);
    const int64_t per = kVlbShape.points_per_block, n = 3 * per, first = 1000;
    const std::vector<float> x0 = held_out_points(seed, n);
    const std::vector<VlbSums> whole = b.vlb(p, s, table, seed, first, n, x0.data(), Run{model, 2});
    const int64_t skip = per + 5, len = per + 9;
    const std::vector<VlbSums> part = b.vlb(p, s, table, seed, first + skip, len, x0.data() + 2 * skip, Run{model, 1});
    EXPECT_EQ(0, std::memcmp(part.data(), whole.data() + skip, std::size_t(len) * sizeof(VlbSums)));
    // The same points one index further on: other streams, other sums.
    const std::vector<VlbSums> moved = b.vlb(p, s, table, seed, first + skip + 1, len, x0.data() + 2 * skip, Run{model, 1});
    for (int64_t i = 0; i < len; ++i) EXPECT_NE(moved[i].steps, part[i].steps) << "point " << i;
  }
  {
    const OdeTable table = ode_rk4_table(s, 2);
    const int64_t per = kOdeShape.points_per_block, n = 3 * per;
    const std::vector<float> x0 = held_out_points(seed + 1, n);
    const std::vector<float> whole = b.ode(p, s, table, n, x0.data(), Run{model, 2});
    const int64_t skip = per + 5, len = per + 9;
    const std::vector<float> part = b.ode(p, s, table, len, x0.data() + 2 * skip, Run{model, 1});
    EXPECT_EQ(0, std::memcmp(part.data(), whole.data() + 3 * skip, 3 * std::size_t(len) * sizeof(float)));
  }
}

}  // namespace ddpm::kernels::likelihood_cases
