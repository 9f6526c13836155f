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
// Also the samplers' step tables: the ancestral step with either variance,
// DDIM (Song et al. 2021), DPM-Solver++(2M) (Lu et al. 2022) and Heun's
// method (Karras et al. 2022) on a subsequence of the timesteps.
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
//
// Every sampler is a list of model evaluations, each followed by an update of
// the point (SampleStep): the CPU loop and the persistent GPU kernels run any
// list, so a new solver is a new list, not a new kernel. Per point the chain
// carries x, the next evaluation's input, and one more 2-vector a: the
// multistep solver's previous x0 prediction, or the predictor-corrector's
// state between its two evaluations.

enum class SamplerKind {
  kDdpm,     // ancestral sampling through all T steps (Ho et al. 2020, Algorithm 2)
  kDdim,     // DDIM (Song et al. 2021) on S <= T steps
  kDpmpp2m,     // DPM-Solver++(2M) (Lu et al. 2022), multistep, data prediction: S evaluations
  kDpmpp2mSde,  // its SDE variant (Lu et al. 2022, "SDE-DPM-Solver++(2M)"): S evaluations, noise on each but the last
  kHeun,     // Heun's 2nd-order method on the probability-flow ODE (Karras et al. 2022): 2 S - 1 evaluations
};

// sigma_t^2 of the ancestral step. Ho et al. found both choices to give
// similar samples: gamma_t is optimal for x_0 a single point, beta_t for x_0 ~ N(0, I).
enum class Variance {
  kPosterior,  // gamma_t, the seed's
  kBeta,       // beta_t
};

// Where the S timesteps of DDIM, DPM-Solver++ and Heun fall in 1..T (T always first):
enum class Spacing {
  kDefault,  // the sampler's own (default_spacing)
  kUniform,  // evenly in t: tau_i = round(i T / S)
  kKarras,   // Karras et al. (2022) eq. 5 in sigma = sqrt((1 - alpha_bar) / alpha_bar), rho = 7
  kLogSnr,   // evenly in lambda = log(sqrt(alpha_bar / (1 - alpha_bar))), as Lu et al. (2022) suggest
};

// Karras et al.'s rho: the larger, the more steps at small sigma.
inline constexpr double kKarrasRho = 7.0;

struct SamplerConfig {
  SamplerKind kind = SamplerKind::kDdpm;
  // The number of steps S in 1..T; 0 means the sampler's default
  // (default_sampler_steps). The ancestral sampler always takes all T steps,
  // so for it only 0 and T are accepted.
  int steps = 0;
  // DDIM's noise scale: 0 (the default, as customary) is deterministic given
  // x_T; 1 with S = T is the ancestral sampler. DDIM only (0 otherwise).
  double eta = 0.0;
  Variance variance = Variance::kPosterior;  // ancestral sampler only
  Spacing spacing = Spacing::kDefault;       // DDIM, DPM-Solver++ and Heun
};

inline const char* name_of(SamplerKind k) {
  switch (k) {
    case SamplerKind::kDdim: return "ddim";
    case SamplerKind::kDpmpp2m: return "dpmpp-2m";
    case SamplerKind::kDpmpp2mSde: return "dpmpp-2m-sde";
    case SamplerKind::kHeun: return "heun";
    default: return "ddpm";
  }
}
inline const char* name_of(Variance v) { return v == Variance::kBeta ? "beta" : "posterior"; }
inline const char* name_of(Spacing s) {
  return s == Spacing::kKarras ? "karras" : s == Spacing::kLogSnr ? "logsnr" : s == Spacing::kUniform ? "uniform" : "default";
}

// "ddpm" | "ddim" | "dpmpp-2m" | "heun"; throws ddpm::Error otherwise.
inline SamplerKind sampler_kind_from_name(std::string_view name) {
  for (SamplerKind k : {SamplerKind::kDdpm, SamplerKind::kDdim, SamplerKind::kDpmpp2m, SamplerKind::kDpmpp2mSde,
                        SamplerKind::kHeun})
    if (name == name_of(k)) return k;
  throw Error("sampler: unknown kind \"" + std::string(name) + "\" (ddpm, ddim, dpmpp-2m, dpmpp-2m-sde or heun)");
}

// "posterior" | "beta"; throws ddpm::Error otherwise.
inline Variance variance_from_name(std::string_view name) {
  if (name == "posterior") return Variance::kPosterior;
  if (name == "beta") return Variance::kBeta;
  throw Error("sampler: unknown variance \"" + std::string(name) + "\" (posterior or beta)");
}

// "default" | "uniform" | "karras" | "logsnr"; throws ddpm::Error otherwise.
inline Spacing spacing_from_name(std::string_view name) {
  for (Spacing s : {Spacing::kDefault, Spacing::kUniform, Spacing::kKarras, Spacing::kLogSnr})
    if (name == name_of(s)) return s;
  throw Error("sampler: unknown timesteps \"" + std::string(name) + "\" (default, uniform, karras or logsnr)");
}

// The spacing a sampler takes by default: uniform for the ancestral chain and
// DDIM (as Song et al. 2021), log-SNR for DPM-Solver++ (as Lu et al. 2022
// suggest), Karras et al.'s for Heun (their own). The measured choice:
// bench/NOTES.md, "Fast samplers".
inline Spacing default_spacing(SamplerKind k) {
  return k == SamplerKind::kDpmpp2m || k == SamplerKind::kDpmpp2mSde ? Spacing::kLogSnr
         : k == SamplerKind::kHeun                                   ? Spacing::kKarras
                                                                     : Spacing::kUniform;
}
inline Spacing sampler_spacing(const SamplerConfig& c) {
  return c.spacing == Spacing::kDefault ? default_spacing(c.kind) : c.spacing;
}

// S when the configuration leaves it 0: all T steps for the ancestral sampler
// and DDIM; for the ODE solvers the step counts that reach the ancestral
// chain's quality on the seed's model (bench/NOTES.md, "Fast samplers").
inline constexpr int kDpmpp2mDefaultSteps = 20;
inline constexpr int kHeunDefaultSteps = 12;  // 23 evaluations
inline int default_sampler_steps(SamplerKind k, int T) {
  return k == SamplerKind::kDpmpp2m || k == SamplerKind::kDpmpp2mSde ? std::min(kDpmpp2mDefaultSteps, T)
         : k == SamplerKind::kHeun  ? std::min(kHeunDefaultSteps, T)
                                    : T;
}

// The number of steps the configuration takes.
inline int sampler_steps(const SamplerConfig& c, int T) {
  return c.steps == 0 ? default_sampler_steps(c.kind, T) : c.steps;
}

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

// The S timesteps T = t_0 > t_1 > ... > t_{S-1} >= 1 of a spacing, in the
// order a sampler visits them. Karras and log-SNR place S values of a
// continuous quantity q(t) (log sigma or lambda, both monotone in t) between
// q(T) and q(1) and take the timestep whose q is nearest: the model knows only
// whole timesteps. Where two would land on one timestep (the schedule is
// coarse at small t), the later one moves down to keep them distinct, which
// S <= T always allows. Throws ddpm::Error unless 1 <= S <= T.
inline std::vector<int> sampler_timesteps(const Schedule& s, int S, Spacing spacing) {
  if (spacing == Spacing::kUniform || spacing == Spacing::kDefault) return ddim_timesteps(s.T, S);
  if (S < 1 || S > s.T)
    throw Error("sampler: steps " + std::to_string(S) + " not in 1.." + std::to_string(s.T));
  const int T = s.T;
  // q(t) increasing in t: log sigma_t = lambda's negative, up to a factor 2.
  std::vector<double> q(T + 1);
  for (int t = 1; t <= T; ++t)
    q[t] = 0.5 * std::log((1.0 - s.alpha_bar_double[t]) / s.alpha_bar_double[t]);
  std::vector<double> target(S);
  for (int i = 0; i < S; ++i) {
    const double u = S == 1 ? 0.0 : double(i) / double(S - 1);
    if (spacing == Spacing::kKarras) {
      // sigma_i = (sigma_max^(1/rho) + u (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, in log sigma.
      const double hi = std::exp(q[T] / kKarrasRho), lo = std::exp(q[1] / kKarrasRho);
      target[i] = kKarrasRho * std::log(hi + u * (lo - hi));
    } else {
      target[i] = q[T] + u * (q[1] - q[T]);
    }
  }
  std::vector<int> tau(S);
  int t = T;  // the search walks down with the targets
  for (int i = 0; i < S; ++i) {
    while (t > 1 && std::abs(q[t - 1] - target[i]) <= std::abs(q[t] - target[i])) --t;
    // Distinct, descending, with room for the S - 1 - i timesteps after this one.
    const int hi = i == 0 ? T : tau[i - 1] - 1, lo = S - i;
    tau[i] = std::clamp(t, lo, hi);
  }
  return tau;
}

// The update after an evaluation eps = eps_theta(x, t), linear in the point's
// state (x and the carried a; z the point's next noise pair when drawn):
//   x' = x_coef x + eps_coef eps + a_coef a + sigma z
//   a' = carry_x x + carry_eps eps
// DDIM uses the first three terms; the ODE solvers carry a and draw no noise.
struct LinearCoef {
  float x_coef = 0, eps_coef = 0, sigma = 0;
  float a_coef = 0;
  float carry_x = 0, carry_eps = 0;

  // DDIM's update from timestep t to prev < t (Song et al. 2021, eq. 12), with
  // a_t = alpha_bar_t, a_p = alpha_bar_prev (alpha_bar_0 = 1 at the last step):
  //   x0_pred = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)
  //   sigma   = eta sqrt((1 - a_p) / (1 - a_t)) sqrt(1 - a_t / a_p)
  //   x_prev  = sqrt(a_p) x0_pred + sqrt(1 - a_p - sigma^2) eps + sigma z
  // folded into x_prev = x_coef x_t + eps_coef eps + sigma z:
  //   x_coef = sqrt(a_p / a_t),  eps_coef = sqrt(1 - a_p - sigma^2) - sqrt(a_p (1 - a_t) / a_t).
  // With eta = 1 and prev = t - 1, sigma^2 = gamma_t, x_coef = 1 / sqrt(alpha_t)
  // and eps_coef = -beta_t / (sqrt(alpha_t) sqrt(1 - a_t)): the ancestral step.
  // Computed in double. 1 - a_p - sigma^2 >= 0 holds for every eta <= 1 and
  // fails for eta large enough; ddim_steps rejects that.
  static LinearCoef ddim(double ab_t, double ab_prev, double eta) {
    const double sigma = eta * std::sqrt((1.0 - ab_prev) / (1.0 - ab_t)) * std::sqrt(1.0 - ab_t / ab_prev);
    const double dir = std::sqrt(std::max(0.0, 1.0 - ab_prev - sigma * sigma));
    LinearCoef c;
    c.x_coef = float(std::sqrt(ab_prev / ab_t));
    c.eps_coef = float(dir - std::sqrt(ab_prev * (1.0 - ab_t) / ab_t));
    c.sigma = float(sigma);
    return c;
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
  LinearCoef coef;
  bool noise;
};

// The S steps of DDIM with noise scale eta on the given spacing, in order.
// Throws ddpm::Error unless 1 <= S <= T and eta is a finite number >= 0 small
// enough that sigma^2 <= 1 - alpha_bar_prev at every step.
inline std::vector<DdimStep> ddim_steps(const Schedule& s, int S, double eta, Spacing spacing = Spacing::kUniform) {
  using schedule_detail::number;
  if (!(std::isfinite(eta) && eta >= 0))
    throw Error("sampler: eta " + number(eta) + " is not a finite number >= 0");
  const std::vector<int> tau = sampler_timesteps(s, S, spacing);
  std::vector<DdimStep> steps(S);
  for (int k = 0; k < S; ++k) {
    const int t = tau[k], prev = k + 1 < S ? tau[k + 1] : 0;
    const double ab_t = s.alpha_bar_double[t], ab_prev = s.alpha_bar_double[prev];
    // sigma^2 <= 1 - a_p  <=>  a_p = 1 (prev = 0, sigma = 0) or eta^2 <= (1 - a_t) / (1 - a_t / a_p),
    // a bound >= 1.
    if (eta > 1 && prev > 0 && eta * eta * (1.0 - ab_t / ab_prev) > 1.0 - ab_t)
      throw Error("sampler: eta " + number(eta) + " too large: sigma^2 > 1 - alpha_bar at the step from t = " +
                  std::to_string(t) + " to " + std::to_string(prev));
    steps[k] = {t, prev, LinearCoef::ddim(ab_t, ab_prev, eta), eta > 0 && prev > 0};
  }
  return steps;
}

// One step of any sampler as the CPU and the GPU samplers run it: evaluate
// eps_theta(x, t), then the ancestral update (reverse_step with `reverse`) or
// the linear one (linear_step with `lin`, which also updates the carried a),
// adding the point's next noise pair when `noise` is set. The ancestral chain
// draws on every step but t = 1 (pair T - t + 1 at step t), DDIM as DdimStep
// says, the ODE solvers never.
struct SampleStep {
  int t;
  bool linear;
  bool noise;
  ReverseCoef reverse;
  LinearCoef lin;
};

// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) on timesteps t_0 = T > ... >
// t_{S-1} and t_S = 0, with alpha = sqrt(alpha_bar), sigma = sqrt(1 - alpha_bar),
// lambda = log(alpha / sigma), h_i = lambda_{i+1} - lambda_i:
//   x0_i    = (x_i - sigma_i eps_i) / alpha_i                 (the data prediction)
//   D_i     = (1 + 1 / (2 r_i)) x0_i - 1 / (2 r_i) x0_{i-1},  r_i = h_{i-1} / h_i   (D_0 = x0_0)
//   x_{i+1} = sigma_{i+1} / sigma_i x_i + alpha_{i+1} (1 - e^{-h_i}) D_i
// carrying a = x0_i to the next step. The last step, to alpha_bar_0 = 1
// (sigma = 0, h infinite), is first order: x_S = x0_{S-1}, as diffusers'
// DPMSolverMultistepScheduler takes it (lower_order_final with a zero final sigma).
// In double; S evaluations.
//
// The SDE variant (sde = true; Lu et al. 2022, SDE-DPM-Solver++(2M), as
// diffusers' "sde-dpmsolver++" takes it) solves the reverse SDE instead, with
// the same D:
//   x_{i+1} = sigma_{i+1} / sigma_i e^{-h} x_i + alpha_{i+1} (1 - e^{-2h}) D_i
//             + sigma_{i+1} sqrt(1 - e^{-2h}) z
// drawing the point's next noise pair on every step but the last (pair i + 1,
// as DDIM's), whose sigma_{i+1} = 0 leaves it the same x0 prediction. Like the
// ancestral chain, its noise corrects what the model's errors put off the data.
inline std::vector<SampleStep> dpmpp_2m_steps(const Schedule& s, int S, Spacing spacing, bool sde = false) {
  std::vector<int> tau = sampler_timesteps(s, S, spacing);
  tau.push_back(0);
  const auto alpha = [&](int t) { return std::sqrt(s.alpha_bar_double[t]); };
  const auto sigma = [&](int t) { return std::sqrt(1.0 - s.alpha_bar_double[t]); };
  const auto lambda = [&](int t) { return std::log(alpha(t) / sigma(t)); };
  std::vector<SampleStep> steps(S);
  double h_prev = 0;
  for (int i = 0; i < S; ++i) {
    const int t = tau[i], next = tau[i + 1];
    LinearCoef c;
    // a' = x0_i for the next step's D.
    c.carry_x = float(1.0 / alpha(t));
    c.carry_eps = float(-sigma(t) / alpha(t));
    if (next == 0) {
      c.x_coef = c.carry_x;
      c.eps_coef = c.carry_eps;
    } else {
      const double h = lambda(next) - lambda(t);
      // alpha_{i+1} (1 - e^{-h}), or (1 - e^{-2h}) for the SDE
      const double k = alpha(next) * -std::expm1(sde ? -2 * h : -h);
      double w = 1.0, v = 0.0;  // D = w x0_i + v x0_{i-1}
      if (i > 0) {
        const double r = h_prev / h;
        w = 1.0 + 0.5 / r;
        v = -0.5 / r;
      }
      c.x_coef = float(sigma(next) / sigma(t) * (sde ? std::exp(-h) : 1.0) + k * w / alpha(t));
      c.eps_coef = float(-k * w * sigma(t) / alpha(t));
      c.a_coef = float(k * v);
      if (sde) c.sigma = float(sigma(next) * std::sqrt(-std::expm1(-2 * h)));
      h_prev = h;
    }
    steps[i] = {t, true, sde && next > 0, ReverseCoef{}, c};
  }
  return steps;
}

// Heun's method on the probability-flow ODE in Karras et al.'s (2022)
// variables, x~ = x / sqrt(alpha_bar) and sigma = sqrt((1 - alpha_bar) / alpha_bar),
// where it reads dx~/dsigma = eps_theta(x, t) (their Algorithm 1 with no
// churn). From sigma_i to sigma_{i+1} (d = sigma_{i+1} - sigma_i < 0,
// s = sqrt(alpha_bar)), in the chain's own x = s x~:
//   eval 1 at (x_i, t_i):           predictor y = s_{i+1} (x_i / s_i + d eps_1),
//                                   carried   a = x_i / s_i + d / 2 eps_1
//   eval 2 at (y, t_{i+1}):         x_{i+1} = s_{i+1} (a + d / 2 eps_2)
// The last step, to sigma = 0, is Euler's (one evaluation), as in Karras et
// al. S steps on timesteps t_0 = T > ... > t_{S-1}: 2 S - 1 evaluations. In double.
inline std::vector<SampleStep> heun_steps(const Schedule& s, int S, Spacing spacing) {
  std::vector<int> tau = sampler_timesteps(s, S, spacing);
  tau.push_back(0);
  const auto root_ab = [&](int t) { return std::sqrt(s.alpha_bar_double[t]); };
  const auto sigma = [&](int t) { return std::sqrt((1.0 - s.alpha_bar_double[t]) / s.alpha_bar_double[t]); };
  std::vector<SampleStep> steps;
  for (int i = 0; i < S; ++i) {
    const int t = tau[i], next = tau[i + 1];
    const double d = sigma(next) - sigma(t), s_t = root_ab(t), s_next = root_ab(next);
    LinearCoef predict;
    predict.x_coef = float(s_next / s_t);
    predict.eps_coef = float(s_next * d);
    if (next == 0) {  // Euler to sigma = 0 (s_next = 1): x = x~_i + d eps
      steps.push_back({t, true, false, ReverseCoef{}, predict});
      continue;
    }
    predict.carry_x = float(1.0 / s_t);
    predict.carry_eps = float(0.5 * d);
    LinearCoef correct;
    correct.eps_coef = float(0.5 * d * s_next);
    correct.a_coef = float(s_next);
    steps.push_back({t, true, false, ReverseCoef{}, predict});
    steps.push_back({next, true, false, ReverseCoef{}, correct});
  }
  return steps;
}

// Throws ddpm::Error naming the first bad value: steps outside 0..T; eta not a
// finite number >= 0, or too large for DDIM (see ddim_steps); for ddpm, steps
// other than 0 or T, a nonzero eta or a spacing other than uniform; for the
// others the beta variance, and for the ODE solvers a nonzero eta.
inline void validate_sampler(const SamplerConfig& c, const Schedule& s) {
  using schedule_detail::number;
  if (c.steps < 0 || c.steps > s.T)
    throw Error("sampler: steps " + std::to_string(c.steps) + " not in 1.." + std::to_string(s.T) +
                " (0 means the sampler's default)");
  if (!(std::isfinite(c.eta) && c.eta >= 0))
    throw Error("sampler: eta " + number(c.eta) + " is not a finite number >= 0");
  if (c.kind != SamplerKind::kDdpm && c.variance != Variance::kPosterior)
    throw Error(std::string("sampler: variance ") + name_of(c.variance) + " applies to ddpm only (" +
                name_of(c.kind) + (c.kind == SamplerKind::kDdim ? "'s variance is set by eta)" : " sets its own)"));
  switch (c.kind) {
    case SamplerKind::kDdim:
      ddim_steps(s, sampler_steps(c, s.T), c.eta, sampler_spacing(c));
      break;
    case SamplerKind::kDdpm:
      if (sampler_steps(c, s.T) != s.T)
        throw Error("sampler: steps " + std::to_string(c.steps) + " needs ddim, dpmpp-2m(-sde) or heun (ddpm takes all " +
                    std::to_string(s.T) + " steps)");
      if (c.eta != 0) throw Error("sampler: eta " + number(c.eta) + " applies to ddim only");
      if (sampler_spacing(c) != Spacing::kUniform)
        throw Error(std::string("sampler: timesteps ") + name_of(c.spacing) + " needs ddim, dpmpp-2m(-sde) or heun");
      break;
    case SamplerKind::kDpmpp2m:
    case SamplerKind::kDpmpp2mSde:
    case SamplerKind::kHeun:
      if (c.eta != 0) throw Error("sampler: eta " + number(c.eta) + " applies to ddim only");
      sampler_timesteps(s, sampler_steps(c, s.T), sampler_spacing(c));
      break;
    default:
      throw Error("sampler: unknown kind " + std::to_string(int(c.kind)));
  }
}

// The steps of the configured sampler, in the order they run (t descending,
// but for Heun's corrector evaluations). Throws ddpm::Error as validate_sampler does.
inline std::vector<SampleStep> sample_steps(const Schedule& s, const SamplerConfig& c) {
  validate_sampler(c, s);
  const int S = sampler_steps(c, s.T);
  std::vector<SampleStep> steps;
  switch (c.kind) {
    case SamplerKind::kDdim:
      for (const DdimStep& d : ddim_steps(s, S, c.eta, sampler_spacing(c)))
        steps.push_back({d.t, true, d.noise, ReverseCoef{}, d.coef});
      break;
    case SamplerKind::kDpmpp2m:
    case SamplerKind::kDpmpp2mSde:
      steps = dpmpp_2m_steps(s, S, sampler_spacing(c), c.kind == SamplerKind::kDpmpp2mSde);
      break;
    case SamplerKind::kHeun:
      steps = heun_steps(s, S, sampler_spacing(c));
      break;
    default: {
      const std::vector<ReverseCoef> reverse = reverse_coefs(s, c.variance);
      for (int t = s.T; t >= 1; --t) steps.push_back({t, false, t > 1, reverse[t], LinearCoef{}});
    }
  }
  return steps;
}

}  // namespace ddpm
