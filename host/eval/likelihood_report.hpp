// The likelihood of held-out data as ddpm_cuda_nll (and ddpm_cuda_train's
// --eval-every) report it: per-point results of either backend (VlbSums, the
// ODE's end states; ddpm/likelihood.hpp) turned into means with their
// standard errors, in nats per point and bits per dimension, in the model's
// normalized units and, for a model trained on a file, the file's:
//   -log p_file(p) = -log p_norm((p - mean) / std) + sum_d log std_d
// (the normalization's log-determinant), beside the data's entropy h(q)
// where a closed form or a quadrature gives it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/datasets.hpp"
#include "ddpm/likelihood.hpp"

namespace ddpm::eval {

struct MeanSe {
  double mean = 0, se = 0;  // se: the standard error of the mean, sd / sqrt(n)
};
// Of n >= 1 values (se 0 for n = 1).
MeanSe mean_se(const std::vector<double>& v);

// nats per point -> bits per dimension: / (d ln 2).
inline double bits_per_dim(double nats) { return nats / (kDataDim * 0.6931471805599453); }

struct NllReport {
  std::string data;  // the held-out set: a built-in name or the file's path
  int64_t n = 0;
  std::string weights;  // "EMA" or "raw"
  std::string device;   // where it ran, e.g. "CPU avx512" or "GPU"
  // The bound (nats per point, normalized units): its total and three parts.
  bool has_bound = false;
  std::string variance;  // the model's step variance: posterior or beta
  MeanSe bound, prior, steps, decoder;  // bound = L_T + sum_{t=2}^T L_{t-1} + L_0
  double bound_seconds = 0;
  int64_t bound_evaluations = 0;  // network evaluations, all points
  // The exact negative log-likelihood -log p(x_0) through the probability-flow ODE.
  bool has_exact = false;
  std::string ode;           // "rk4, 64 steps" or "adaptive, rtol 1e-05, atol 1e-05"
  MeanSe exact;
  // The ODE solution's own error: mean over the points of |log p(h) - log p(2h)| / 15,
  // Richardson's estimate for a fourth-order method from the same run at half the steps
  // (NaN for the adaptive integrator, whose tolerance bounds it instead).
  double ode_error = 0;
  double exact_seconds = 0;
  int64_t exact_evaluations = 0;  // forward-mode evaluations (3 passes each), all points
  // In the file's units: + log_det (sum_d log std_d); none for a built-in set.
  std::optional<double> log_det;
  // The data's differential entropy in the normalized units, where known.
  std::optional<double> entropy;
};

// The bound's totals from each point's sums and x_0 (normalized units).
void add_bound(NllReport& r, const VlbTable& table, const std::vector<VlbSums>& sums, const std::vector<float>& x0);
// -log p of each point from the ODE's end states (count x 3).
std::vector<double> ode_nll(const std::vector<float>& end_states, double sigma_T);

// h(q) of a built-in set in its normalized coordinates (metrics.hpp's
// true_moments), where it is known: 8gaussians (a quadrature of the mixture's
// density, in double; error below 1e-9) and checkerboard (uniform on eight
// 2 x 2 cells: log 32, exactly); none for the sets made of curves with noise.
std::optional<double> data_entropy(Dataset d);

// One line: the bound and its parts, the exact value, bits/dim, the entropy.
std::string to_text(const NllReport& r);
// The whole report as one JSON object, pretty-printed, ending in a newline.
std::string to_json(const NllReport& r);

}  // namespace ddpm::eval
