#include "host/eval/likelihood_report.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <numbers>
#include <cstdio>

#include "ddpm/error.hpp"
#include "host/eval/metrics.hpp"

namespace ddpm::eval {

MeanSe mean_se(const std::vector<double>& v) {
  if (v.empty()) throw Error("mean_se: no values");
  const double n = double(v.size());
  double sum = 0;
  for (double x : v) sum += x;
  const double mean = sum / n;
  double sq = 0;
  for (double x : v) sq += (x - mean) * (x - mean);
  return {mean, v.size() > 1 ? std::sqrt(sq / (n - 1) / n) : 0.0};
}

void add_bound(NllReport& r, const VlbTable& table, const std::vector<VlbSums>& sums, const std::vector<float>& x0) {
  if (sums.empty() || x0.size() != 2 * sums.size()) throw Error("add_bound: sums and points disagree");
  std::vector<double> total, prior, steps, decoder;
  for (std::size_t i = 0; i < sums.size(); ++i) {
    prior.push_back(table.prior_kl(x0[2 * i], x0[2 * i + 1]));
    steps.push_back(table.step_constant + sums[i].steps);
    decoder.push_back(table.decoder_constant + sums[i].decoder);
    total.push_back(prior.back() + steps.back() + decoder.back());
  }
  r.has_bound = true;
  r.bound = mean_se(total);
  r.prior = mean_se(prior);
  r.steps = mean_se(steps);
  r.decoder = mean_se(decoder);
}

std::vector<double> ode_nll(const std::vector<float>& end_states, double sigma_T) {
  std::vector<double> nll(end_states.size() / 3);
  for (std::size_t i = 0; i < nll.size(); ++i)
    nll[i] = -ode_log_likelihood(end_states[3 * i], end_states[3 * i + 1], end_states[3 * i + 2], sigma_T);
  return nll;
}

std::optional<double> data_entropy(Dataset d) {
  if (d != Dataset::kEightGaussians && d != Dataset::kCheckerboard) return std::nullopt;
  const Moments m = true_moments(d);
  const double log_det = std::log(m.std[0]) + std::log(m.std[1]);  // h(normalized) = h(raw) - log det
  if (d == Dataset::kCheckerboard) {
    const double side = double(kCheckerboardCell) * kCheckerboardCells;
    return std::log(side * side / 2) - log_det;  // half the square's cells
  }
  // 8gaussians: q(x) = (1/8) sum_k N(x; c_k, s^2 I). The midpoint rule on a
  // smooth, rapidly decaying integrand converges faster than any power of the
  // spacing; at h = s / 50 over +-(R + 8 s) the error is far below 1e-9.
  const double r = kEightGaussiansRadius, s = kEightGaussiansStd, h = s / 50, lim = r + 8 * s;
  const int cells = int(std::ceil(2 * lim / h));
  double cx[8], cy[8];
  for (int k = 0; k < 8; ++k) {
    cx[k] = r * std::cos(k * std::numbers::pi / 4);
    cy[k] = r * std::sin(k * std::numbers::pi / 4);
  }
  double sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
  for (int i = 0; i < cells; ++i) {
    const double x = -lim + (i + 0.5) * h;
    for (int j = 0; j < cells; ++j) {
      const double y = -lim + (j + 0.5) * h;
      double q = 0;
      for (int k = 0; k < 8; ++k) q += std::exp(-((x - cx[k]) * (x - cx[k]) + (y - cy[k]) * (y - cy[k])) / (2 * s * s));
      q /= 8 * 2 * std::numbers::pi * s * s;
      if (q > 0) sum -= q * std::log(q);
    }
  }
  return sum * h * h - log_det;
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string mean_pm(const MeanSe& m) { return fmt("%.4f", m.mean) + " +- " + fmt("%.4f", m.se); }

nlohmann::ordered_json json_of(const MeanSe& m) { return {{"mean", m.mean}, {"se", m.se}}; }

nlohmann::ordered_json number_or_null(double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nullptr; }

}  // namespace

std::string to_text(const NllReport& r) {
  std::string s = r.data + ", " + std::to_string(r.n) + " held-out points, " + r.weights + " weights, " + r.device +
                  " (negative log-likelihood, nats per point; normalized units):";
  if (r.has_bound)
    s += "\n  bound " + mean_pm(r.bound) + " (" + fmt("%.4f", bits_per_dim(r.bound.mean)) + " bits/dim) = L_T " +
         fmt("%.4g", r.prior.mean) + " + sum L_t-1 " + fmt("%.4f", r.steps.mean) + " + L_0 " + fmt("%.4f", r.decoder.mean) +
         " [" + r.variance + " variance; " + fmt("%.2f", r.bound_seconds) + " s]";
  if (r.has_exact) {
    s += "\n  exact " + mean_pm(r.exact) + " (" + fmt("%.4f", bits_per_dim(r.exact.mean)) + " bits/dim) [ODE " + r.ode;
    if (std::isfinite(r.ode_error)) s += ", error ~" + fmt("%.1g", r.ode_error);
    s += "; " + fmt("%.2f", r.exact_seconds) + " s]";
  }
  if (r.entropy) s += "\n  data entropy h(q) " + fmt("%.4f", *r.entropy) + " (" + fmt("%.4f", bits_per_dim(*r.entropy)) + " bits/dim)";
  if (r.log_det) {
    s += "\n  in the file's units (+ " + fmt("%.4f", *r.log_det) + "):";
    if (r.has_bound) s += " bound " + fmt("%.4f", r.bound.mean + *r.log_det);
    if (r.has_exact) s += std::string(r.has_bound ? "," : "") + " exact " + fmt("%.4f", r.exact.mean + *r.log_det);
  }
  return s + "\n";
}

std::string to_json(const NllReport& r) {
  nlohmann::ordered_json j = {{"data", r.data}, {"n", r.n}, {"weights", r.weights}, {"device", r.device},
                              {"units", "nats per point, normalized"}};
  if (r.has_bound)
    j["bound"] = {{"total", json_of(r.bound)},
                  {"bits_per_dim", bits_per_dim(r.bound.mean)},
                  {"L_T", json_of(r.prior)},
                  {"L_steps", json_of(r.steps)},
                  {"L_0", json_of(r.decoder)},
                  {"variance", r.variance},
                  {"evaluations", r.bound_evaluations},
                  {"seconds", r.bound_seconds}};
  if (r.has_exact)
    j["exact"] = {{"nll", json_of(r.exact)},
                  {"bits_per_dim", bits_per_dim(r.exact.mean)},
                  {"ode", r.ode},
                  {"ode_error", number_or_null(r.ode_error)},
                  {"evaluations", r.exact_evaluations},
                  {"seconds", r.exact_seconds}};
  j["entropy"] = r.entropy ? nlohmann::ordered_json(*r.entropy) : nullptr;
  if (r.log_det) {
    nlohmann::ordered_json file = {{"log_det", *r.log_det}};
    if (r.has_bound) file["bound"] = r.bound.mean + *r.log_det;
    if (r.has_exact) file["exact"] = r.exact.mean + *r.log_det;
    j["file_units"] = file;
  }
  return j.dump(2) + "\n";
}

}  // namespace ddpm::eval
