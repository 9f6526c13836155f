// The model's likelihood of data, in the two forms of the seed's theory:
//
// ---- The variational bound (Ho et al. 2020, eq. 5) ----
//   -log p(x_0) <= L_T + sum_{t=2}^T L_{t-1} + L_0
//   L_T     = KL(q(x_T | x_0) || N(0, I))
//           = d/2 (-alpha_bar_T - log(1 - alpha_bar_T)) + alpha_bar_T |x_0|^2 / 2
//   L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)),  t = 2..T
//   L_0     = -log p(x_0 | x_1),  p(x_0 | x_1) = N(mu_theta(x_1, 1), sigma_1^2 I)
// with x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. The posterior
// q(x_{t-1} | x_t, x_0) = N(mu_q, gamma_t I), mu_q = (x_t - beta_t / sqrt(1 -
// alpha_bar_t) eps) / sqrt(alpha_t), and the model's step (the seed's sample())
// N(mu_theta, sigma_t^2 I) differs from it only in eps_theta for eps, so
//   |mu_q - mu_theta|^2 = beta_t^2 / (alpha_t (1 - alpha_bar_t)) |eps - eps_theta(x_t, t)|^2
// and every term is a constant plus a weight times that squared error:
//   L_{t-1} = d/2 (gamma_t / sigma_t^2 - 1 + log(sigma_t^2 / gamma_t)) + w_t |eps - eps_theta|^2
//   L_0     = d/2 log(2 pi sigma_1^2)                                    + w_1 |eps - eps_theta|^2
//   w_t     = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t))
// sigma_t^2 is the sampler's variance: gamma_t (the seed's) or beta_t.
//
// L_0's variance. With alpha_bar_0 = 1 the posterior variance gamma_1 is 0: a
// decoder with it would be a point mass. The decoder takes sigma_1^2 = beta_1
// under either variance, as improved-diffusion's fixed-large variance does at
// t = 1 (and as the beta variance does anyway); then w_1 = 1 / (2 alpha_1) and
// L_0 is the continuous Gaussian density of x_0, in the data's (normalized)
// units. The data are continuous, so no discretization as for images.
//
// Every point takes T evaluations, one per t, with eps of step t the pair t - 1
// of its own Philox stream (Stream::kLikelihood, item = the point's index), in
// order t = 1..T: the sum over t is exact, not sampled, and a point's terms do
// not depend on chunking or threads.
//
// ---- The exact likelihood (Song et al. 2021, the probability-flow ODE) ----
// In Karras et al.'s variables sigma = sqrt((1 - alpha_bar) / alpha_bar) and
// y = x / sqrt(alpha_bar) = x sqrt(1 + sigma^2) the ODE of the schedule is
//   dy/dsigma = eps_theta(x, tau(sigma)),  x = y / sqrt(1 + sigma^2)
// from y = x_0 at sigma = 0 to sigma_T, and the change of variables gives
//   log p(x_0) = log N(x_T; 0, I) - d/2 log(1 + sigma_T^2)
//                + int_0^sigma_T div_x eps_theta(x, tau(sigma)) / sqrt(1 + sigma^2) dsigma
// (d/dsigma log det dy/dy_0 = div_y dy/dsigma = div_x eps / sqrt(1 + sigma^2)).
// The divergence is exact: the 2 x 2 Jacobian of eps_theta by forward-mode
// tangents along x_0 and x_1 through the same MLP, no Hutchinson estimate.
// tau(sigma) is the network's time input: the discrete schedule's t where
// sigma = sigma_t, linear in log sigma between whole steps, and (sigma /
// sigma_1)^2 below sigma_1 (where sigma^2 ~ beta_1 tau); the embedding takes a
// real t. The integration variable is r in [0, 1] with sigma = sigma_T r^rho
// (rho = kOdeRho): uniform steps in r are Karras et al.'s steps from sigma_T to
// 0, dense where the data's fine structure is, and the integrand stays smooth
// at sigma = 0 where the score would not (x_t's score diverges there).
//
// The fixed-step RK4 is a table of stages (OdeStage), as the samplers are a
// table of steps: the CPU loop and the fused GPU kernel run the same table.
#pragma once

#include <cmath>
#include <numbers>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm {

// ---- The bound ----

// Step t's forward coefficients and weight w_t (see above), t = 1..T.
struct VlbTerm {
  ForwardCoef forward;  // x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
  float weight;         // w_t
};

// The per-step table and the constants of the bound for a schedule and variance.
struct VlbTable {
  std::vector<VlbTerm> terms;  // t = 0..T (entry 0 unused)
  double step_constant = 0;    // sum_{t=2}^T d/2 (gamma_t / sigma_t^2 - 1 + log(sigma_t^2 / gamma_t))
  double decoder_constant = 0; // d/2 log(2 pi sigma_1^2), sigma_1^2 = beta_1
  double alpha_bar_T = 0;
  // L_T of a point x_0 (in double).
  double prior_kl(double x0, double x1) const {
    return 0.5 * kDataDim * (-alpha_bar_T - std::log1p(-alpha_bar_T)) + 0.5 * alpha_bar_T * (x0 * x0 + x1 * x1);
  }
};

inline VlbTable vlb_table(const Schedule& s, Variance variance) {
  VlbTable v;
  v.terms.assign(std::size_t(s.T) + 1, VlbTerm{{1.f, 0.f}, 0.f});
  for (int t = 1; t <= s.T; ++t) {
    const double beta = s.beta_double[t], alpha = 1.0 - beta, ab = s.alpha_bar_double[t];
    const double ab_prev = s.alpha_bar_double[t - 1];
    const double gamma = (1.0 - ab_prev) / (1.0 - ab) * beta;
    const double var = t == 1 || variance == Variance::kBeta ? beta : gamma;  // sigma_t^2 (sigma_1^2 = beta_1)
    v.terms[t] = {s.forward[t], float(beta * beta / (2.0 * var * alpha * (1.0 - ab)))};
    if (t >= 2) v.step_constant += 0.5 * kDataDim * (gamma / var - 1.0 + std::log(var / gamma));
  }
  v.decoder_constant = 0.5 * kDataDim * std::log(2.0 * std::numbers::pi * s.beta_double[1]);
  v.alpha_bar_T = s.alpha_bar_double[s.T];
  return v;
}

// What a point's chain of T evaluations sums, in float, t = 1 apart and then
// t = 2..T in order: w_1 |eps_1 - eps_theta|^2 and sum_{t>=2} w_t |eps_t - eps_theta|^2.
struct VlbSums {
  float steps;    // the weighted squared errors of L_{t-1}, t = 2..T
  float decoder;  // that of L_0
};

// One term's weighted squared error, accumulated: the one formula of both backends.
DDPM_HD float vlb_weighted_error(float eps0, float eps1, float pred0, float pred1, float weight) {
  const float d0 = eps0 - pred0, d1 = eps1 - pred1;
  return weight * (d0 * d0 + d1 * d1);
}

// ---- The ODE ----

inline constexpr double kOdeRho = 7.0;
inline constexpr int kOdeDefaultSteps = 64;   // RK4 steps (4 evaluations each)

// sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t), in double, t = 0..T.
inline double schedule_sigma(const Schedule& s, int t) {
  return std::sqrt((1.0 - s.alpha_bar_double[t]) / s.alpha_bar_double[t]);
}

// The network's time input tau at a noise level sigma in [0, sigma_T] (see above).
inline double timestep_of_sigma(const Schedule& s, double sigma) {
  const double s1 = schedule_sigma(s, 1);
  if (sigma <= s1) return (sigma / s1) * (sigma / s1);
  int lo = 1, hi = s.T;  // sigma_lo <= sigma <= sigma_hi
  if (sigma >= schedule_sigma(s, hi)) return double(hi);
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (schedule_sigma(s, mid) <= sigma ? lo : hi) = mid;
  }
  const double a = std::log(schedule_sigma(s, lo)), b = std::log(schedule_sigma(s, hi));
  return lo + (std::log(sigma) - a) / (b - a);
}

// One evaluation of the RK4 table. The point's state is y (2), the integral l
// (1), the step's accumulated increment acc (3) and the previous stage's
// derivative g = (eps, div / sqrt(1 + sigma^2)) (3), per unit sigma. A stage:
//   input  = y + in_coef g_prev  (l likewise, though the network never reads it)
//   x      = x_scale input,  eps, div = eps_theta(x, tau) and its divergence
//   g      = (eps, x_scale div)
//   acc   += out_coef g;  at a step's last stage: y += acc, l += acc, acc = 0
// in_coef = a_j h dsigma/dr of the previous stage, out_coef = b_j h dsigma/dr,
// with RK4's a = (0, 1/2, 1/2, 1), b = (1/6, 1/3, 1/3, 1/6).
struct OdeStage {
  float tau;       // the network's time input (the row of the stage's time terms)
  float sigma;     // the stage's noise level (what an analytic eps_theta of a test reads)
  float x_scale;   // 1 / sqrt(1 + sigma^2)
  float in_coef;
  float out_coef;
  bool ends_step;
};

struct OdeTable {
  std::vector<OdeStage> stages;  // 4 per step
  double sigma_T = 0;
};

// The fixed-step RK4 over r in [0, 1], `steps` steps.
inline OdeTable ode_rk4_table(const Schedule& s, int steps) {
  if (steps < 1) throw Error("likelihood: ode steps " + std::to_string(steps) + " not >= 1");
  OdeTable table;
  table.sigma_T = schedule_sigma(s, s.T);
  const double h = 1.0 / steps;
  const double a[4] = {0.0, 0.5, 0.5, 1.0}, b[4] = {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6};
  double prev_dsigma = 0;
  for (int i = 0; i < steps; ++i)
    for (int j = 0; j < 4; ++j) {
      const double r = (i + a[j]) * h;
      const double sigma = table.sigma_T * std::pow(r, kOdeRho);
      const double dsigma = table.sigma_T * kOdeRho * std::pow(r, kOdeRho - 1);
      table.stages.push_back({float(timestep_of_sigma(s, sigma)), float(sigma), float(1.0 / std::sqrt(1.0 + sigma * sigma)),
                              float(a[j] * h * prev_dsigma), float(b[j] * h * dsigma), j == 3});
      prev_dsigma = dsigma;
    }
  return table;
}

// The ODE's log p(x_0) from its end state: y_T and the integral l.
inline double ode_log_likelihood(double yT0, double yT1, double l, double sigma_T) {
  const double scale2 = 1.0 + sigma_T * sigma_T;
  const double x0 = yT0 / std::sqrt(scale2), x1 = yT1 / std::sqrt(scale2);
  return -0.5 * (x0 * x0 + x1 * x1) - kDataDim * 0.5 * std::log(2.0 * std::numbers::pi) - 0.5 * kDataDim * std::log(scale2) + l;
}

// The point state of the RK4 table, and one stage's two halves: the network's
// input before the evaluation, the update after it.
struct OdeState {
  float y[2], l, acc[3], g[3];
};
DDPM_HD void ode_stage_input(const OdeState& s, const OdeStage& st, float& x0, float& x1) {
  x0 = st.x_scale * (s.y[0] + st.in_coef * s.g[0]);
  x1 = st.x_scale * (s.y[1] + st.in_coef * s.g[1]);
}
DDPM_HD void ode_stage_update(OdeState& s, const OdeStage& st, float eps0, float eps1, float div) {
  s.g[0] = eps0;
  s.g[1] = eps1;
  s.g[2] = st.x_scale * div;
  for (int k = 0; k < 3; ++k) s.acc[k] += st.out_coef * s.g[k];
  if (st.ends_step) {
    s.y[0] += s.acc[0];
    s.y[1] += s.acc[1];
    s.l += s.acc[2];
    s.acc[0] = s.acc[1] = s.acc[2] = 0.f;
  }
}

}  // namespace ddpm
