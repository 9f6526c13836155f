// The variance schedule and the per-step coefficients derived from it.
//
//   beta_t    linear from beta_1 to beta_T over t = 1..T, or the cosine
//             schedule (Nichol & Dhariwal 2021), see Schedule::cosine
//   alpha_t   = 1 - beta_t
//   alpha_bar_t = prod_{i<=t} alpha_i,  alpha_bar_0 = 1
//   gamma_t   = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t   (posterior variance)
//
// Tables are indexed by t = 0..T; entry 0 holds beta = 0, alpha = 1,
// alpha_bar = 1 so that index t always means timestep t. The products are
// accumulated in double and stored as float32.
//
// Also the samplers' coefficient tables: the ancestral step with either
// variance, and DDIM (Song et al. 2021) on a subsequence of the timesteps.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"

namespace ddpm {

namespace schedule_detail {
// A double as %g prints it, for one-line error messages.
inline std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace schedule_detail

// beta_t of the linear schedule, t in 1..T (torch.linspace(beta_1, beta_T, T)[t-1]).
DDPM_HD double linear_beta(int t, int T, double beta_1, double beta_T) {
  return T == 1 ? beta_1 : beta_1 + (beta_T - beta_1) * double(t - 1) / double(T - 1);
}

// The cosine schedule (Nichol & Dhariwal 2021, eq. 17):
//   alpha_bar(t) = f(t) / f(0),  f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2),  s = 0.008
//   beta_t = min(1 - alpha_bar(t) / alpha_bar(t-1), 0.999)
// The clip matters at t = T, where f(T) = cos^2(pi / 2) = 0 would give beta_T = 1
// (alpha_T = 0, and 1 / sqrt(alpha_T) in the reverse step).
inline constexpr double kCosineOffset = 0.008;   // s: keeps beta_1 from being too small
inline constexpr double kCosineMaxBeta = 0.999;  // the clip

inline double cosine_f(int t, int T) {
  const double c = std::cos((double(t) / double(T) + kCosineOffset) / (1.0 + kCosineOffset) * (std::numbers::pi / 2));
  return c * c;
}

// beta_t of the cosine schedule, t in 1..T; alpha_bar(t) / alpha_bar(t-1) = f(t) / f(t-1).
inline double cosine_beta(int t, int T) {
  return std::min(1.0 - cosine_f(t, T) / cosine_f(t - 1, T), kCosineMaxBeta);
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
  std::string name;  // "linear" or "cosine"
  int T = 0;
  // linear: its two parameters; cosine: its own first and last beta (the last is the clip, 0.999).
  double beta_1 = 0, beta_T = 0;
  std::vector<float> beta, alpha, alpha_bar, posterior_variance;  // t = 0..T
  // beta_t and alpha_bar_t in double, before rounding to float: what later
  // coefficient tables (DDIM, the beta variance) are computed from, since
  // 1 - alpha_bar_t loses most of its digits in float near t = 1.
  std::vector<double> beta_double, alpha_bar_double;  // t = 0..T
  std::vector<ForwardCoef> forward;                   // t = 0..T
  std::vector<ReverseCoef> reverse;                   // t = 0..T (entry 0 unused)

  static Schedule linear(int T = kT, double beta_1 = kBeta1, double beta_T = kBetaT) {
    std::vector<double> betas(std::size_t(std::max(T, 0)) + 1, 0.0);
    for (int t = 1; t <= T; ++t) betas[t] = linear_beta(t, T, beta_1, beta_T);
    Schedule s = from_betas(betas);
    s.name = "linear";
    s.beta_1 = beta_1;
    s.beta_T = beta_T;
    return s;
  }

  // The cosine schedule with T steps; alpha, alpha_bar and gamma follow from
  // the clipped betas exactly as for the linear one, so alpha_bar_t equals
  // f(t) / f(0) up to t = T - 1 and alpha_bar_T = 0.001 alpha_bar_{T-1}.
  static Schedule cosine(int T = kT) {
    std::vector<double> betas(std::size_t(std::max(T, 0)) + 1, 0.0);
    for (int t = 1; t <= T; ++t) betas[t] = cosine_beta(t, T);
    Schedule s = from_betas(betas);
    s.name = "cosine";
    if (T >= 1) {
      s.beta_1 = betas[1];
      s.beta_T = betas[T];
    }
    return s;
  }

  // "linear" (with beta_1, beta_T) or "cosine" (which has no parameters
  // besides T). Throws ddpm::Error on an unknown name, T outside 1..kMaxT, or
  // linear betas outside 0 < beta_1 <= beta_T < 1.
  static Schedule by_name(std::string_view name, int T = kT, double beta_1 = kBeta1, double beta_T = kBetaT) {
    using schedule_detail::number;
    if (T < 1 || T > kMaxT)
      throw Error("schedule: T " + std::to_string(T) + " not in 1.." + std::to_string(kMaxT));
    if (name == "cosine") return cosine(T);
    if (name != "linear") throw Error("schedule: unknown name \"" + std::string(name) + "\" (linear or cosine)");
    if (!(0 < beta_1 && beta_1 <= beta_T && beta_T < 1))  // also false for NaN
      throw Error("schedule: beta_1 " + number(beta_1) + ", beta_T " + number(beta_T) +
                  " not 0 < beta_1 <= beta_T < 1");
    return linear(T, beta_1, beta_T);
  }

  // The tables from betas[1..T] (betas[0] is ignored), T = betas.size() - 1.
  static Schedule from_betas(const std::vector<double>& betas) {
    const int T = int(betas.size()) - 1;
    Schedule s;
    s.T = T;
    s.beta.assign(T + 1, 0.f);
    s.alpha.assign(T + 1, 1.f);
    s.alpha_bar.assign(T + 1, 1.f);
    s.posterior_variance.assign(T + 1, 0.f);
    s.beta_double.assign(T + 1, 0.0);
    s.alpha_bar_double.assign(T + 1, 1.0);
    s.forward.assign(T + 1, ForwardCoef{1.f, 0.f});
    s.reverse.assign(T + 1, ReverseCoef{1.f, 0.f, 0.f});
    double ab = 1.0;
    for (int t = 1; t <= T; ++t) {
      const double b = betas[t];
      const double ab_prev = ab;
      ab *= 1.0 - b;
      const double gamma = (1.0 - ab_prev) / (1.0 - ab) * b;
      s.beta[t] = float(b);
      s.alpha[t] = float(1.0 - b);
      s.alpha_bar[t] = float(ab);
      s.posterior_variance[t] = float(gamma);
      s.beta_double[t] = b;
      s.alpha_bar_double[t] = ab;
      s.forward[t] = {float(std::sqrt(ab)), float(std::sqrt(1.0 - ab))};
      s.reverse[t] = {float(1.0 / std::sqrt(1.0 - b)), float(b / std::sqrt(1.0 - ab)),
                      t > 1 ? float(std::sqrt(gamma)) : 0.f};
    }
    return s;
  }
};

// ---- Samplers ----

enum class SamplerKind {
  kDdpm,  // ancestral sampling through all T steps (Ho et al. 2020, Algorithm 2)
  kDdim,  // DDIM (Song et al. 2021) on S <= T steps
};

// sigma_t^2 of the ancestral step. Ho et al. found both choices to give
// similar samples: gamma_t is optimal for x_0 a single point, beta_t for x_0 ~ N(0, I).
enum class Variance {
  kPosterior,  // gamma_t, the seed's
  kBeta,       // beta_t
};

struct SamplerConfig {
  SamplerKind kind = SamplerKind::kDdpm;
  // DDIM's number of steps S in 1..T; 0 means T. The ancestral sampler
  // always takes all T steps, so for it only 0 and T are accepted.
  int steps = 0;
  // DDIM's noise scale: 0 (the default, as customary) is deterministic given
  // x_T; 1 with S = T is the ancestral sampler. DDIM only (0 for ddpm).
  double eta = 0.0;
  Variance variance = Variance::kPosterior;  // ancestral sampler only
};

inline const char* name_of(SamplerKind k) { return k == SamplerKind::kDdim ? "ddim" : "ddpm"; }
inline const char* name_of(Variance v) { return v == Variance::kBeta ? "beta" : "posterior"; }

// "ddpm" | "ddim"; throws ddpm::Error otherwise.
inline SamplerKind sampler_kind_from_name(std::string_view name) {
  if (name == "ddpm") return SamplerKind::kDdpm;
  if (name == "ddim") return SamplerKind::kDdim;
  throw Error("sampler: unknown kind \"" + std::string(name) + "\" (ddpm or ddim)");
}

// "posterior" | "beta"; throws ddpm::Error otherwise.
inline Variance variance_from_name(std::string_view name) {
  if (name == "posterior") return Variance::kPosterior;
  if (name == "beta") return Variance::kBeta;
  throw Error("sampler: unknown variance \"" + std::string(name) + "\" (posterior or beta)");
}

// The number of reverse steps the configuration takes.
inline int sampler_steps(const SamplerConfig& c, int T) { return c.steps == 0 ? T : c.steps; }

// The ancestral step's coefficients for t = 0..T with sigma_t^2 = gamma_t
// (Schedule::reverse itself) or beta_t; either way no noise at t = 1.
inline std::vector<ReverseCoef> reverse_coefs(const Schedule& s, Variance v) {
  std::vector<ReverseCoef> c = s.reverse;
  if (v == Variance::kBeta)
    for (int t = 2; t <= s.T; ++t) c[t].sigma = float(std::sqrt(s.beta_double[t]));
  return c;
}

// DDIM's timesteps tau_S = T > tau_{S-1} > ... > tau_1 >= 1, in the order the
// sampler visits them: tau_i = round(i T / S), i = 1..S, halves rounded up,
// i.e. floor((2 i T + S) / (2 S)). For S <= T consecutive values differ by
// T / S >= 1 before rounding, so they are distinct and tau_S = T exactly;
// S = T gives every timestep. Throws ddpm::Error unless 1 <= S <= T.
inline std::vector<int> ddim_timesteps(int T, int S) {
  if (S < 1 || S > T)
    throw Error("sampler: steps " + std::to_string(S) + " not in 1.." + std::to_string(T));
  std::vector<int> tau(S);
  for (int i = S; i >= 1; --i)
    tau[S - i] = int((2 * int64_t(i) * T + S) / (2 * int64_t(S)));
  return tau;
}

// DDIM's update from timestep t to prev < t (Song et al. 2021, eq. 12), with
// a_t = alpha_bar_t, a_p = alpha_bar_prev (alpha_bar_0 = 1 at the last step):
//   x0_pred = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)
//   sigma   = eta sqrt((1 - a_p) / (1 - a_t)) sqrt(1 - a_t / a_p)
//   x_prev  = sqrt(a_p) x0_pred + sqrt(1 - a_p - sigma^2) eps + sigma z
// folded into x_prev = x_coef x_t + eps_coef eps + sigma z. With eta = 1 and
// prev = t - 1, sigma^2 = gamma_t, x_coef = 1 / sqrt(alpha_t) and
// eps_coef = -beta_t / (sqrt(alpha_t) sqrt(1 - a_t)): the ancestral step.
struct DdimCoef {
  float x_coef;    // sqrt(a_p / a_t)
  float eps_coef;  // sqrt(1 - a_p - sigma^2) - sqrt(a_p (1 - a_t) / a_t)
  float sigma;     // 0 at eta = 0 and at prev = 0

  // Computed in double. 1 - a_p - sigma^2 >= 0 holds for every eta <= 1 and
  // fails for eta large enough; ddim_steps rejects that.
  static DdimCoef at(double ab_t, double ab_prev, double eta) {
    const double sigma = eta * std::sqrt((1.0 - ab_prev) / (1.0 - ab_t)) * std::sqrt(1.0 - ab_t / ab_prev);
    const double dir = std::sqrt(std::max(0.0, 1.0 - ab_prev - sigma * sigma));
    return {float(std::sqrt(ab_prev / ab_t)), float(dir - std::sqrt(ab_prev * (1.0 - ab_t) / ab_t)),
            float(sigma)};
  }
};

// One step of the DDIM chain. Noise: x_T is pair 0 of the point's Philox
// stream (Stream::kSample), and the k-th step (k = 1..S, counted from t = T)
// draws pair k when `noise` is set: on every step but the last (prev = 0,
// where sigma = 0), and never at eta = 0. With S = T the k-th step starts at
// t = T - k + 1 and its pair T - t + 1 is the ancestral sampler's
// (sample_noise_pair), so eta = 1 adds the very same z at each t.
struct DdimStep {
  int t, prev;
  DdimCoef coef;
  bool noise;
};

// The S steps of DDIM with noise scale eta, in order. Throws ddpm::Error
// unless 1 <= S <= T and eta is a finite number >= 0 small enough that
// sigma^2 <= 1 - alpha_bar_prev at every step.
inline std::vector<DdimStep> ddim_steps(const Schedule& s, int S, double eta) {
  using schedule_detail::number;
  if (!(std::isfinite(eta) && eta >= 0))
    throw Error("sampler: eta " + number(eta) + " is not a finite number >= 0");
  const std::vector<int> tau = ddim_timesteps(s.T, S);
  std::vector<DdimStep> steps(S);
  for (int k = 0; k < S; ++k) {
    const int t = tau[k], prev = k + 1 < S ? tau[k + 1] : 0;
    const double ab_t = s.alpha_bar_double[t], ab_prev = s.alpha_bar_double[prev];
    // sigma^2 <= 1 - a_p  <=>  a_p = 1 (prev = 0, sigma = 0) or eta^2 <= (1 - a_t) / (1 - a_t / a_p),
    // a bound >= 1.
    if (eta > 1 && prev > 0 && eta * eta * (1.0 - ab_t / ab_prev) > 1.0 - ab_t)
      throw Error("sampler: eta " + number(eta) + " too large: sigma^2 > 1 - alpha_bar at the step from t = " +
                  std::to_string(t) + " to " + std::to_string(prev));
    steps[k] = {t, prev, DdimCoef::at(ab_t, ab_prev, eta), eta > 0 && prev > 0};
  }
  return steps;
}

// Throws ddpm::Error naming the first bad value: steps outside 0..T; eta not a
// finite number >= 0, or too large for DDIM (see ddim_steps); for ddpm, steps
// other than 0 or T, or a nonzero eta; for ddim, the beta variance.
inline void validate_sampler(const SamplerConfig& c, const Schedule& s) {
  using schedule_detail::number;
  if (c.steps < 0 || c.steps > s.T)
    throw Error("sampler: steps " + std::to_string(c.steps) + " not in 1.." + std::to_string(s.T) + " (0 means T)");
  if (!(std::isfinite(c.eta) && c.eta >= 0))
    throw Error("sampler: eta " + number(c.eta) + " is not a finite number >= 0");
  if (c.kind == SamplerKind::kDdim) {
    if (c.variance != Variance::kPosterior)
      throw Error(std::string("sampler: variance ") + name_of(c.variance) +
                  " applies to ddpm only (ddim's variance is set by eta)");
    ddim_steps(s, sampler_steps(c, s.T), c.eta);
  } else if (c.kind == SamplerKind::kDdpm) {
    if (sampler_steps(c, s.T) != s.T)
      throw Error("sampler: steps " + std::to_string(c.steps) + " needs ddim (ddpm takes all " +
                  std::to_string(s.T) + " steps)");
    if (c.eta != 0) throw Error("sampler: eta " + number(c.eta) + " applies to ddim only");
  } else {
    throw Error("sampler: unknown kind " + std::to_string(int(c.kind)));
  }
}

// One step of either sampler as the CPU and the GPU samplers run it: evaluate
// eps_theta(x, t), then the ancestral update (reverse_step with `reverse`) or
// DDIM's (ddim_step with `ddim_coef`), adding the point's next noise pair when
// `noise` is set. The ancestral chain draws on every step but t = 1 (pair
// T - t + 1 at step t), DDIM as DdimStep says.
struct SampleStep {
  int t;
  bool ddim;
  bool noise;
  ReverseCoef reverse;
  DdimCoef ddim_coef;
};

// The steps of the configured sampler, in the order they run (t descending).
// Throws ddpm::Error as validate_sampler does.
inline std::vector<SampleStep> sample_steps(const Schedule& s, const SamplerConfig& c) {
  validate_sampler(c, s);
  std::vector<SampleStep> steps;
  if (c.kind == SamplerKind::kDdim) {
    for (const DdimStep& d : ddim_steps(s, sampler_steps(c, s.T), c.eta))
      steps.push_back({d.t, true, d.noise, ReverseCoef{}, d.coef});
  } else {
    const std::vector<ReverseCoef> reverse = reverse_coefs(s, c.variance);
    for (int t = s.T; t >= 1; --t) steps.push_back({t, false, t > 1, reverse[t], DdimCoef{}});
  }
  return steps;
}

}  // namespace ddpm
