// The variance schedule and the per-step coefficients derived from it.
//
//   beta_t    linear from beta_1 to beta_T over t = 1..T
//   alpha_t   = 1 - beta_t
//   alpha_bar_t = prod_{i<=t} alpha_i,  alpha_bar_0 = 1
//   gamma_t   = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t   (posterior variance)
//
// Tables are indexed by t = 0..T; entry 0 holds beta = 0, alpha = 1,
// alpha_bar = 1 so that index t always means timestep t. The products are
// accumulated in double and stored as float32.
#pragma once

#include <cmath>
#include <vector>

#include "ddpm/config.hpp"

namespace ddpm {

// beta_t of the linear schedule, t in 1..T (torch.linspace(beta_1, beta_T, T)[t-1]).
DDPM_HD double linear_beta(int t, int T, double beta_1, double beta_T) {
  return T == 1 ? beta_1 : beta_1 + (beta_T - beta_1) * double(t - 1) / double(T - 1);
}

// Per-step coefficients of the reverse update (the seed's sample()):
//   mean    = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps_theta) / sqrt(alpha_t)
//   x_{t-1} = mean + sqrt(gamma_t) * z    (z ~ N(0, I); no noise at t = 1)
struct ReverseCoef {
  float inv_sqrt_alpha;  // 1 / sqrt(alpha_t)
  float eps_coef;        // beta_t / sqrt(1 - alpha_bar_t)
  float sigma;           // sqrt(gamma_t), 0 at t = 1
};

// Coefficients of q_sample: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
struct ForwardCoef {
  float sqrt_alpha_bar;
  float sqrt_one_minus_alpha_bar;
};

struct Schedule {
  int T = 0;
  double beta_1 = 0, beta_T = 0;
  std::vector<float> beta, alpha, alpha_bar, posterior_variance;  // t = 0..T
  std::vector<ForwardCoef> forward;                                // t = 0..T
  std::vector<ReverseCoef> reverse;                                // t = 0..T (entry 0 unused)

  static Schedule linear(int T = kT, double beta_1 = kBeta1, double beta_T = kBetaT) {
    Schedule s;
    s.T = T;
    s.beta_1 = beta_1;
    s.beta_T = beta_T;
    s.beta.assign(T + 1, 0.f);
    s.alpha.assign(T + 1, 1.f);
    s.alpha_bar.assign(T + 1, 1.f);
    s.posterior_variance.assign(T + 1, 0.f);
    s.forward.assign(T + 1, ForwardCoef{1.f, 0.f});
    s.reverse.assign(T + 1, ReverseCoef{1.f, 0.f, 0.f});
    double ab = 1.0;
    for (int t = 1; t <= T; ++t) {
      const double b = linear_beta(t, T, beta_1, beta_T);
      const double ab_prev = ab;
      ab *= 1.0 - b;
      const double gamma = (1.0 - ab_prev) / (1.0 - ab) * b;
      s.beta[t] = float(b);
      s.alpha[t] = float(1.0 - b);
      s.alpha_bar[t] = float(ab);
      s.posterior_variance[t] = float(gamma);
      s.forward[t] = {float(std::sqrt(ab)), float(std::sqrt(1.0 - ab))};
      s.reverse[t] = {float(1.0 / std::sqrt(1.0 - b)), float(b / std::sqrt(1.0 - ab)),
                      t > 1 ? float(std::sqrt(gamma)) : 0.f};
    }
    return s;
  }
};

}  // namespace ddpm
