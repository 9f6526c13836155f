// The likelihood's per-point loops on the CPU, over any eps-predictor: the
// backend runs them through its network evaluator (likelihood.cpp, per
// instruction set), the tests through analytic predictors whose bound and
// exact likelihood have closed forms (the test seam). Plain C++, no SIMD.
//
// A Net for the bound:   void eps(int n, int t, const float* x, float* out)
// A Net for the table:   void eps_jacobian(int n, int stage, const float* x, float* eps, float* jac)
// A Field for adaptive:  void eval(double sigma, const float x[2], float eps[2], float& div)
// (jac[4 i + 2 a + b] = d eps_a / d x_b, div = d eps_0 / d x_0 + d eps_1 / d x_1).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "ddpm/likelihood.hpp"
#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"

namespace ddpm::cpu {

// The most points one call of the loops below takes.
inline constexpr int kLikelihoodTile = 48;

// The bound's sums of n <= kLikelihoodTile points x0, whose streams are Philox
// items first_item.. of Stream::kLikelihood: t = 1..T, step t's eps the pair
// t - 1, w_1's term into `decoder`, the rest added to `steps` in order.
template <class Net>
void vlb_tile(Net& net, const VlbTable& table, int T, uint64_t seed, uint64_t first_item, int n, const float* x0,
              VlbSums* sums) {
  float xt[2 * kLikelihoodTile], noise[2 * kLikelihoodTile], pred[2 * kLikelihoodTile];
  NormalPairs rng[kLikelihoodTile];
  for (int i = 0; i < n; ++i) {
    philox_init(&rng[i].state, seed, Stream::kLikelihood, first_item + uint64_t(i));
    rng[i].have_second_half = false;
    sums[i] = {0.f, 0.f};
  }
  for (int t = 1; t <= T; ++t) {
    const VlbTerm& term = table.terms[t];
    for (int i = 0; i < n; ++i) {
      rng[i].next(noise[2 * i], noise[2 * i + 1]);
      xt[2 * i] = q_sample(x0[2 * i], noise[2 * i], term.forward);
      xt[2 * i + 1] = q_sample(x0[2 * i + 1], noise[2 * i + 1], term.forward);
    }
    net.eps(n, t, xt, pred);
    for (int i = 0; i < n; ++i) {
      const float err = vlb_weighted_error(noise[2 * i], noise[2 * i + 1], pred[2 * i], pred[2 * i + 1], term.weight);
      (t == 1 ? sums[i].decoder : sums[i].steps) += err;
    }
  }
}

// The RK4 table's end states (y_T0, y_T1, l) of n <= kLikelihoodTile points x0 into out[3 i..].
template <class Net>
void ode_tile(Net& net, const OdeTable& table, int n, const float* x0, float* out) {
  float x[2 * kLikelihoodTile], eps[2 * kLikelihoodTile], jac[4 * kLikelihoodTile];
  OdeState state[kLikelihoodTile];
  for (int i = 0; i < n; ++i) state[i] = OdeState{{x0[2 * i], x0[2 * i + 1]}, 0.f, {}, {}};
  for (int k = 0; k < int(table.stages.size()); ++k) {
    const OdeStage& st = table.stages[k];
    for (int i = 0; i < n; ++i) ode_stage_input(state[i], st, x[2 * i], x[2 * i + 1]);
    net.eps_jacobian(n, k, x, eps, jac);
    for (int i = 0; i < n; ++i) ode_stage_update(state[i], st, eps[2 * i], eps[2 * i + 1], jac[4 * i] + jac[4 * i + 3]);
  }
  for (int i = 0; i < n; ++i) {
    out[3 * i] = state[i].y[0];
    out[3 * i + 1] = state[i].y[1];
    out[3 * i + 2] = state[i].l;
  }
}

// ---- The adaptive ODE: Dormand and Prince's 5(4) pair (the tableau of
// scipy's RK45 and MATLAB's ode45), seven stages, the last the next step's
// first (FSAL), in r as the RK4 table, the state (y, l) in double ----

namespace dopri {
inline constexpr double kC[7] = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1};
inline constexpr double kA[7][6] = {
    {},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
// The 5th-order weights are A's last row; these are the 5th minus the 4th order's.
inline constexpr double kE[7] = {35.0 / 384 - 5179.0 / 57600,      0, 500.0 / 1113 - 7571.0 / 16695,
                                 125.0 / 192 - 393.0 / 640,        -2187.0 / 6784 + 92097.0 / 339200,
                                 11.0 / 84 - 187.0 / 2100,         -1.0 / 40};
inline constexpr double kMinStep = 1e-12;
inline constexpr int64_t kMaxSteps = 100000;  // taken or not, per point
}  // namespace dopri

struct AdaptiveResult {
  float y[2], l;
  int64_t evals;
  bool stalled;  // the step fell below dopri::kMinStep, or dopri::kMaxSteps were tried
};

// One point x0 from sigma = 0 to sigma_T: a step is taken when its error
// estimate in every component is within atol + rtol |state|.
template <class Field>
AdaptiveResult ode_adaptive_point(Field& field, double sigma_T, const float x0[2], double rtol, double atol) {
  using State = std::array<double, 3>;
  AdaptiveResult res{};
  // d(y, l)/dr at (r, s): dsigma/dr (eps, div / sqrt(1 + sigma^2)).
  auto derivative = [&](double r, const State& s) {
    const double sigma = sigma_T * std::pow(r, kOdeRho);
    const double dsigma = sigma_T * kOdeRho * std::pow(r, kOdeRho - 1);
    const double x_scale = 1.0 / std::sqrt(1.0 + sigma * sigma);
    const float x[2] = {float(x_scale * s[0]), float(x_scale * s[1])};
    float eps[2], div;
    field.eval(sigma, x, eps, div);
    ++res.evals;
    return State{dsigma * eps[0], dsigma * eps[1], dsigma * x_scale * div};
  };
  State s = {x0[0], x0[1], 0.0};
  State k[7];
  k[0] = derivative(0.0, s);
  double r = 0.0, h = 1.0 / 64;
  for (int64_t tried = 0; r < 1.0; ++tried) {
    if (tried == dopri::kMaxSteps) {
      res.stalled = true;
      break;
    }
    h = std::min(h, 1.0 - r);
    for (int j = 1; j < 7; ++j) {
      State in = s;
      for (int m = 0; m < j; ++m)
        for (int c = 0; c < 3; ++c) in[c] += h * dopri::kA[j][m] * k[m][c];
      k[j] = derivative(r + dopri::kC[j] * h, in);
    }
    State next = s;
    double err = 0;
    for (int c = 0; c < 3; ++c) {
      double e = 0;
      for (int m = 0; m < 7; ++m) {
        if (m < 6) next[c] += h * dopri::kA[6][m] * k[m][c];
        e += h * dopri::kE[m] * k[m][c];
      }
      err = std::max(err, std::abs(e) / (atol + rtol * std::max(std::abs(s[c]), std::abs(next[c]))));
    }
    if (err <= 1.0) {  // taken: k[6] was evaluated at the new state, the next step's first stage
      r += h;
      s = next;
      k[0] = k[6];
    }
    // The usual control: safety factor 0.9, within 0.2..5x per step.
    h *= std::clamp(err > 0 ? 0.9 * std::pow(err, -0.2) : 5.0, 0.2, 5.0);
    if (!(h >= dopri::kMinStep)) {
      res.stalled = true;
      break;
    }
  }
  res.y[0] = float(s[0]);
  res.y[1] = float(s[1]);
  res.l = float(s[2]);
  return res;
}

}  // namespace ddpm::cpu
