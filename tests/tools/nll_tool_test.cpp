// ddpm_cuda_nll end to end on the CPU: the report in both forms (text and
// --json, --out), its arithmetic (the parts sum to the bound, bits/dim, the
// evaluation counts), determinism and the seed, the numbers against the CPU
// library called directly and against an independent computation written here
// from the definitions (the bound as Gaussian KLs of mu_q's x_0-form, the exact
// value by an RK4 of this file in double with the divergence by central
// differences), a training file's units, --weights, the one-line errors, an
// interrupt, the heat map, and (labelled `long`) Gibbs' inequality on
// 8gaussians: E_q[-log p] >= h(q), beside an independent value of h(q).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ddpm/likelihood.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/eval/metrics.hpp"
#include "host/io/checkpoint.hpp"
#include "host/io/samples_io.hpp"
#include "tests/tools/tool_runner.hpp"

namespace ddpm {
namespace {

using testing::moments_of;
using testing::Moments2;
using testing::write_points;

using nlohmann::json;
using testing::run;
using testing::ScratchDir;

const std::string kNll = DDPM_NLL_BIN;
const std::string kTrain = DDPM_TRAIN_BIN;
constexpr double kLn2 = 0.6931471805599453;

// ---- Helpers ----

// The error is one line, the last, naming `needle`; the only other line allowed is --device auto's choice.
void expect_one_error_line(const std::string& err, const std::string& needle) {
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().rfind("ddpm_cuda_nll: error: ", 0), 0u) << err;
  EXPECT_NE(lines.back().find(needle), std::string::npos) << err;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) EXPECT_NE(lines[i].find("; using the "), std::string::npos) << err;
  EXPECT_LE(lines.size(), 2u) << err;
}

// A bad command line: exit code as given, one line naming `needle`, nothing on stdout, nothing written.
void expect_clean_failure(const std::string& args, int code, const std::string& needle) {
  SCOPED_TRACE(args);
  ScratchDir dir;
  const auto r = run(kNll, args, dir);
  EXPECT_EQ(r.exit_code, code);
  expect_one_error_line(r.err, needle);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(dir.files().empty()) << "left behind: " << (dir.files().empty() ? "" : dir.files()[0]);
}

// The JSON report; a failed run or a report that does not parse fails the test.
json report(const testing::Result& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return json();
  try {
    return json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what() << "\n" << r.out;
    return json();
  }
}

// The report's text without its timing lines ("seconds": ...), byte for byte otherwise.
std::string without_timing(const std::string& s) {
  std::istringstream in(s);
  std::string kept;
  for (std::string line; std::getline(in, line);)
    if (line.find("\"seconds\":") == std::string::npos) kept += line + "\n";
  return kept;
}

// The report without what may differ between equal runs: the device's name and the timings.
json without_device_and_timing(json j) {
  j.erase("device");
  for (const char* section : {"bound", "exact"})
    if (j.contains(section)) j[section].erase("seconds");
  return j;
}

double mean_of(const json& j, const char* section, const char* value) { return j.at(section).at(value).at("mean").get<double>(); }
double se_of(const json& j, const char* section, const char* value) { return j.at(section).at(value).at("se").get<double>(); }

// The width and height in a PNG's IHDR (bytes 16..23, big-endian), or {0, 0}.
std::pair<uint32_t, uint32_t> png_size(const std::string& bytes) {
  if (bytes.size() < 24 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || bytes.compare(12, 4, "IHDR") != 0)
    return {0, 0};
  const auto be32 = [&](std::size_t at) {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v = v << 8 | uint8_t(bytes[at + k]);
    return v;
  };
  return {be32(16), be32(20)};
}

// ---- Independent computations, from the definitions (ddpm/likelihood.hpp's header) ----

struct BoundParts {
  double prior = 0, steps = 0, decoder = 0;
};

// One point's bound in double: L_T = KL(N(sqrt(ab_T) x0, (1 - ab_T) I) || N(0, I)); for t >= 2 the KL
// between q(x_{t-1} | x_t, x_0) = N(mu_q, gamma_t I), mu_q in its x_0-form, and the model's step
// N(mu_theta, sigma_t^2 I); L_0 = -log N(x_0; mu_theta(x_1, 1), beta_1 I). x_t from step t's eps,
// the pair t - 1 of the point's own stream (Stream::kLikelihood, item = its index).
BoundParts bound_by_definition(const io::Checkpoint& c, const float* params, const float x0[2], uint64_t seed,
                               uint64_t item, bool posterior) {
  const Schedule s = Schedule::by_name(c.meta.schedule, c.meta.T, c.meta.beta_1, c.meta.beta_T);
  const int T = s.T;
  std::vector<double> ab(T + 1, 1.0);
  for (int t = 1; t <= T; ++t) ab[t] = ab[t - 1] * (1.0 - s.beta_double[t]);
  BoundParts b;
  for (int d = 0; d < 2; ++d) b.prior += 0.5 * (ab[T] * x0[d] * x0[d] + (1 - ab[T]) - 1 - std::log(1 - ab[T]));
  for (int t = 1; t <= T; ++t) {
    const double beta = s.beta_double[t];
    float e[2];
    normal_pair_at(seed, Stream::kLikelihood, item, uint64_t(t - 1), e[0], e[1]);
    double xt[2];
    float xt_f[2], pred[2];
    for (int d = 0; d < 2; ++d) {
      xt[d] = std::sqrt(ab[t]) * x0[d] + std::sqrt(1 - ab[t]) * e[d];
      xt_f[d] = float(xt[d]);
    }
    const int tt = t;
    cpu::eps_forward(params, xt_f, &tt, 1, pred, c.meta.model);
    double mu_theta[2];
    for (int d = 0; d < 2; ++d) mu_theta[d] = (xt[d] - beta / std::sqrt(1 - ab[t]) * pred[d]) / std::sqrt(1 - beta);
    if (t == 1) {
      for (int d = 0; d < 2; ++d)
        b.decoder += 0.5 * std::log(2 * M_PI * beta) + (x0[d] - mu_theta[d]) * (x0[d] - mu_theta[d]) / (2 * beta);
      continue;
    }
    const double gamma = (1 - ab[t - 1]) / (1 - ab[t]) * beta, var = posterior ? gamma : beta;
    for (int d = 0; d < 2; ++d) {
      const double mu_q = std::sqrt(ab[t - 1]) * beta / (1 - ab[t]) * x0[d] +
                          std::sqrt(1 - beta) * (1 - ab[t - 1]) / (1 - ab[t]) * xt[d];
      b.steps += 0.5 * (gamma / var - 1 + std::log(var / gamma)) + (mu_q - mu_theta[d]) * (mu_q - mu_theta[d]) / (2 * var);
    }
  }
  return b;
}

// -log p(x_0) by the probability-flow ODE, integrated here: y' = eps_theta(y / sqrt(1 + sigma^2), tau(sigma)) and
// l' = div_x eps_theta / sqrt(1 + sigma^2) in sigma from 0 to sigma_T, through r (sigma = sigma_T r^7) by `steps`
// classical RK4 steps in double; the divergence by central differences of eps_theta (never its tangents).
// Every point at once.
std::vector<double> nll_by_definition(const io::Checkpoint& c, const float* params, const std::vector<float>& x0,
                                      int steps) {
  const Schedule s = Schedule::by_name(c.meta.schedule, c.meta.T, c.meta.beta_1, c.meta.beta_T);
  const double sigma_T = std::sqrt((1 - s.alpha_bar_double[s.T]) / s.alpha_bar_double[s.T]);
  const std::size_t n = x0.size() / 2;
  const double h = 2e-3;  // of x: the float network's rounding over 2h against the curvature's h^2
  // The derivative (dy0, dy1, dl) / dr of every point at r.
  const auto field = [&](double r, const std::vector<double>& state) {
    const double sigma = sigma_T * std::pow(r, 7), dsigma = 7 * sigma_T * std::pow(r, 6);
    const double xs = 1 / std::sqrt(1 + sigma * sigma);
    std::vector<float> x(10 * n), eps(10 * n), jac(20 * n);
    for (std::size_t i = 0; i < n; ++i) {
      const double px = xs * state[3 * i], py = xs * state[3 * i + 1];
      const double at[5][2] = {{px, py}, {px + h, py}, {px - h, py}, {px, py + h}, {px, py - h}};
      for (int k = 0; k < 5; ++k) {
        x[10 * i + 2 * k] = float(at[k][0]);
        x[10 * i + 2 * k + 1] = float(at[k][1]);
      }
    }
    cpu::eps_jacobian(params, x.data(), float(timestep_of_sigma(s, sigma)), int(5 * n), eps.data(), jac.data(),
                      c.meta.model);
    std::vector<double> out(3 * n);
    for (std::size_t i = 0; i < n; ++i) {
      const float* e = eps.data() + 10 * i;
      // The displacement actually taken, in float.
      const double hx = double(x[10 * i + 2]) - x[10 * i + 4], hy = double(x[10 * i + 7]) - x[10 * i + 9];
      const double div = (double(e[2]) - e[4]) / hx + (double(e[7]) - e[9]) / hy;
      out[3 * i] = e[0] * dsigma;
      out[3 * i + 1] = e[1] * dsigma;
      out[3 * i + 2] = div * xs * dsigma;
    }
    return out;
  };
  std::vector<double> y(3 * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) y[3 * i] = x0[2 * i], y[3 * i + 1] = x0[2 * i + 1];
  const double dr = 1.0 / steps;
  const auto plus = [](const std::vector<double>& a, const std::vector<double>& b, double f) {
    std::vector<double> r(a);
    for (std::size_t k = 0; k < r.size(); ++k) r[k] += f * b[k];
    return r;
  };
  for (int k = 0; k < steps; ++k) {
    const double r = k * dr;
    const auto k1 = field(r, y), k2 = field(r + dr / 2, plus(y, k1, dr / 2)), k3 = field(r + dr / 2, plus(y, k2, dr / 2)),
               k4 = field(r + dr, plus(y, k3, dr));
    for (std::size_t j = 0; j < y.size(); ++j) y[j] += dr / 6 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]);
  }
  std::vector<double> nll(n);
  const double scale2 = 1 + sigma_T * sigma_T;
  for (std::size_t i = 0; i < n; ++i)
    nll[i] = 0.5 * (y[3 * i] * y[3 * i] + y[3 * i + 1] * y[3 * i + 1]) / scale2 + std::log(2 * M_PI) +
             std::log(scale2) - y[3 * i + 2];
  return nll;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

// ---- The tool on a briefly trained moons model (T = 100, beta_T 0.1: alpha_bar_T ~ e^-5) ----

class NllTool : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir;
    made_ = run(kTrain, "--device cpu --steps 300 --batch 128 --T 100 --beta-T 0.1 --log-every 0 --loss-csv '' "
                        "--loss-png '' --forward-png '' --out model.safetensors",
                *dir_);
    ckpt_ = *dir_ / "model.safetensors";
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ASSERT_EQ(made_.exit_code, 0) << made_.err; }
  static std::string ck() { return " --device cpu --ckpt " + ckpt_; }
  static inline ScratchDir* dir_ = nullptr;
  static inline testing::Result made_;
  static inline std::string ckpt_;
};

TEST_F(NllTool, ReportsTheBoundAndTheExactValueInBothForms) {
  ScratchDir dir;
  const int n = 150, steps = 8;
  const std::string args = "--n 150 --ode-steps 8" + ck();
  const auto text = run(kNll, args, dir);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const auto js = run(kNll, args + " --json --out r.json", dir);
  const json j = report(js);
  ASSERT_FALSE(j.is_null());
  // --out holds exactly what --json printed, and nothing else is left (no temporary file).
  EXPECT_EQ(testing::slurp(dir / "r.json"), js.out);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"r.json"});
  EXPECT_EQ(js.err, "");

  EXPECT_EQ(j.at("data"), "moons");
  EXPECT_EQ(j.at("n"), n);
  EXPECT_EQ(j.at("weights"), "raw");
  EXPECT_EQ(j.at("device").get<std::string>().rfind("CPU ", 0), 0u) << j.dump();
  EXPECT_TRUE(j.at("entropy").is_null());  // moons: no closed form
  EXPECT_FALSE(j.contains("file_units"));
  const json& b = j.at("bound");
  const json& e = j.at("exact");
  // The parts sum to the total (each a mean over the same points), and bits/dim = nats / (2 ln 2).
  const double total = mean_of(j, "bound", "total");
  const double parts = mean_of(j, "bound", "L_T") + mean_of(j, "bound", "L_steps") + mean_of(j, "bound", "L_0");
  EXPECT_NEAR(total, parts, 1e-12 * (1 + std::abs(mean_of(j, "bound", "L_steps"))));
  EXPECT_NEAR(b.at("bits_per_dim").get<double>(), total / (2 * kLn2), 1e-12);
  EXPECT_NEAR(e.at("bits_per_dim").get<double>(), mean_of(j, "exact", "nll") / (2 * kLn2), 1e-12);
  for (const char* part : {"total", "L_T", "L_steps", "L_0"}) EXPECT_GT(se_of(j, "bound", part), 0) << part;
  EXPECT_GT(se_of(j, "exact", "nll"), 0);
  // Every point takes T evaluations for the bound, 4 per RK4 step at steps and at steps / 2 for the exact value.
  EXPECT_EQ(b.at("evaluations"), n * 100);
  EXPECT_EQ(e.at("evaluations"), n * 4 * (steps + steps / 2));
  EXPECT_EQ(b.at("variance"), "posterior");
  EXPECT_EQ(e.at("ode"), "rk4, 8 steps");
  EXPECT_GT(e.at("ode_error").get<double>(), 0);
  EXPECT_LT(e.at("ode_error").get<double>(), 0.1);
  EXPECT_GE(b.at("seconds").get<double>(), 0);
  EXPECT_GE(e.at("seconds").get<double>(), 0);
  EXPECT_TRUE(std::isfinite(total) && std::isfinite(mean_of(j, "exact", "nll")));

  // The text says the same, to its printed digits.
  const std::string& t = text.out;
  EXPECT_EQ(t.rfind("moons, 150 held-out points, raw weights, CPU ", 0), 0u) << t;
  const std::size_t at_b = t.find("\n  bound "), at_e = t.find("\n  exact ");
  ASSERT_NE(at_b, std::string::npos) << t;
  ASSERT_NE(at_e, std::string::npos) << t;
  double v[6], w[4];
  char variance[32] = {};
  ASSERT_EQ(std::sscanf(t.c_str() + at_b,
                        "\n  bound %lf +- %lf (%lf bits/dim) = L_T %lf + sum L_t-1 %lf + L_0 %lf [%31[a-z] variance", &v[0],
                        &v[1], &v[2], &v[3], &v[4], &v[5], variance),
            7)
      << t;
  EXPECT_NEAR(v[0], total, 5.1e-5);
  EXPECT_NEAR(v[1], se_of(j, "bound", "total"), 5.1e-5);
  EXPECT_NEAR(v[2], b.at("bits_per_dim").get<double>(), 5.1e-5);
  EXPECT_NEAR(v[3], mean_of(j, "bound", "L_T"), 5.1e-4 * std::abs(v[3]));  // %.4g
  EXPECT_NEAR(v[4], mean_of(j, "bound", "L_steps"), 5.1e-5);
  EXPECT_NEAR(v[5], mean_of(j, "bound", "L_0"), 5.1e-5);
  EXPECT_STREQ(variance, "posterior");
  ASSERT_EQ(std::sscanf(t.c_str() + at_e, "\n  exact %lf +- %lf (%lf bits/dim) [ODE rk4, 8 steps, error ~%lf", &w[0],
                        &w[1], &w[2], &w[3]),
            4)
      << t;
  EXPECT_NEAR(w[0], mean_of(j, "exact", "nll"), 5.1e-5);
  EXPECT_NEAR(w[1], se_of(j, "exact", "nll"), 5.1e-5);
  EXPECT_NEAR(w[2], e.at("bits_per_dim").get<double>(), 5.1e-5);
  EXPECT_NEAR(w[3], e.at("ode_error").get<double>(), 0.51 * e.at("ode_error").get<double>());  // %.1g
  EXPECT_EQ(t.find("entropy"), std::string::npos) << t;
  EXPECT_EQ(t.find("file's units"), std::string::npos) << t;
  EXPECT_EQ(testing::count_lines(t), 3) << t;

  // --variance beta changes the steps' part only; the adaptive integrator reports its tolerances and no error.
  const json beta = report(run(kNll, "--n 150 --what bound --variance beta --json" + ck(), dir));
  ASSERT_FALSE(beta.is_null());
  EXPECT_EQ(beta.at("bound").at("variance"), "beta");
  EXPECT_EQ(mean_of(beta, "bound", "L_T"), mean_of(j, "bound", "L_T"));
  EXPECT_EQ(mean_of(beta, "bound", "L_0"), mean_of(j, "bound", "L_0"));
  EXPECT_NE(mean_of(beta, "bound", "L_steps"), mean_of(j, "bound", "L_steps"));
  const json adaptive = report(run(kNll, "--n 20 --what exact --ode adaptive --rtol 1e-4 --atol 1e-4 --json" + ck(), dir));
  ASSERT_FALSE(adaptive.is_null());
  EXPECT_EQ(adaptive.at("exact").at("ode"), "adaptive, rtol 0.0001, atol 0.0001");
  EXPECT_TRUE(adaptive.at("exact").at("ode_error").is_null());
  EXPECT_GE(adaptive.at("exact").at("evaluations").get<int64_t>(), 20 * 7);  // one Dormand-Prince step at least
  EXPECT_FALSE(adaptive.contains("bound"));
}

TEST_F(NllTool, SameFlagsSameReportAndTheSeedPicksTheDraw) {
  ScratchDir dir;
  const std::string args = "--n 120 --ode-steps 6 --json" + ck();
  const auto a = run(kNll, args, dir), b = run(kNll, args, dir);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(without_timing(a.out), without_timing(b.out));
  EXPECT_NE(without_timing(a.out), a.out);  // the timing lines were there
  const json ja = report(a);
  // One thread or the default: the same bytes (a point's work does not depend on who does it).
  const auto one = run("/usr/bin/env", "OMP_NUM_THREADS=1 '" + kNll + "' " + args, dir);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(without_timing(one.out), without_timing(a.out));
  // Both CPU builds: the same bytes in fp32, but for the device's name.
  if (cpu::cpu_supports(cpu::CpuIsa::kAvx512)) {
    const json j2 = report(run(kNll, args + " --cpu-isa avx2", dir)), j5 = report(run(kNll, args + " --cpu-isa avx512", dir));
    ASSERT_FALSE(j2.is_null() || j5.is_null());
    EXPECT_EQ(j2.at("device"), "CPU avx2");
    EXPECT_EQ(j5.at("device"), "CPU avx512");
    EXPECT_EQ(without_device_and_timing(j2), without_device_and_timing(j5));
  }
  // Another --seed: another held-out draw (and other noise for the bound).
  const json c = report(run(kNll, args + " --seed 2", dir));
  ASSERT_FALSE(c.is_null() || ja.is_null());
  EXPECT_NE(mean_of(c, "exact", "nll"), mean_of(ja, "exact", "nll"));
  EXPECT_NE(mean_of(c, "bound", "L_T"), mean_of(ja, "bound", "L_T"));  // L_T depends on the points alone
  EXPECT_NE(mean_of(c, "bound", "total"), mean_of(ja, "bound", "total"));
  // --what bound and --what exact: each section as --what both gives it, the other absent.
  const auto bound = run(kNll, "--n 120 --json --what bound" + ck(), dir);
  const auto exact = run(kNll, "--n 120 --ode-steps 6 --json --what exact" + ck(), dir);
  const json jb = report(bound), je = report(exact);
  ASSERT_FALSE(jb.is_null() || je.is_null());
  EXPECT_FALSE(jb.contains("exact"));
  EXPECT_FALSE(je.contains("bound"));
  json ba = ja.at("bound"), bb = jb.at("bound"), ea = ja.at("exact"), eb = je.at("exact");
  for (json* s : {&ba, &bb, &ea, &eb}) s->erase("seconds");
  EXPECT_EQ(ba, bb);
  EXPECT_EQ(ea, eb);
}

// The tool's numbers against the CPU library called here on the same points (eval::true_draw's
// held-out stream), to the last bit of the means; then against the definitions, computed here
// independently of the library's loops and tables.
TEST_F(NllTool, MatchesTheLibraryAndTheDefinitions) {
  ScratchDir dir;
  const io::Checkpoint c = io::load_checkpoint(ckpt_);
  const Schedule sched = Schedule::by_name(c.meta.schedule, c.meta.T, c.meta.beta_1, c.meta.beta_T);
  const float* params = c.params.data();
  const uint64_t seed = 5;
  {
    const int n = 40, steps = 10;
    const json j = report(run(kNll, "--n 40 --seed 5 --ode-steps 10 --json" + ck(), dir));
    ASSERT_FALSE(j.is_null());
    const std::vector<float> x0 = eval::true_draw(Dataset::kMoons, n, seed, Stream::kHeldOut);
    const VlbTable table = vlb_table(sched, Variance::kPosterior);
    std::vector<VlbSums> sums(n);
    cpu::vlb_sums(sched, params, table, seed, 0, n, x0.data(), sums.data(), c.meta.model);
    std::vector<double> total, prior, step, decoder;
    for (int i = 0; i < n; ++i) {
      prior.push_back(table.prior_kl(x0[2 * i], x0[2 * i + 1]));
      step.push_back(table.step_constant + sums[i].steps);
      decoder.push_back(table.decoder_constant + sums[i].decoder);
      total.push_back(prior.back() + step.back() + decoder.back());
    }
    const double tol = 1e-12;
    EXPECT_NEAR(mean_of(j, "bound", "total"), mean(total), tol * (1 + std::abs(mean(total))));
    EXPECT_NEAR(mean_of(j, "bound", "L_T"), mean(prior), tol);
    EXPECT_NEAR(mean_of(j, "bound", "L_steps"), mean(step), tol * (1 + std::abs(mean(step))));
    EXPECT_NEAR(mean_of(j, "bound", "L_0"), mean(decoder), tol * (1 + std::abs(mean(decoder))));
    // The exact value at `steps` and the error estimate |fine - coarse| / 15 against steps / 2.
    const auto nll_at = [&](int s) {
      const OdeTable ode = ode_rk4_table(sched, s);
      std::vector<float> ends(3 * n);
      cpu::ode_end_states(params, ode, n, x0.data(), ends.data(), c.meta.model);
      std::vector<double> v(n);
      for (int i = 0; i < n; ++i) v[i] = -ode_log_likelihood(ends[3 * i], ends[3 * i + 1], ends[3 * i + 2], ode.sigma_T);
      return v;
    };
    const std::vector<double> fine = nll_at(steps), coarse = nll_at(steps / 2);
    double err = 0;
    for (int i = 0; i < n; ++i) err += std::abs(fine[i] - coarse[i]) / 15 / n;
    EXPECT_NEAR(mean_of(j, "exact", "nll"), mean(fine), tol * (1 + std::abs(mean(fine))));
    EXPECT_NEAR(j.at("exact").at("ode_error").get<double>(), err, tol * err);
  }
  // The definitions, on a few points: the bound to float rounding (both variances), the exact value to the
  // integrators' errors (the tool's RK4 at 64 steps, its adaptive one at tight tolerances, this file's RK4 at
  // 400 steps with differenced divergences).
  const int n = 4;
  const std::vector<float> x0 = eval::true_draw(Dataset::kMoons, n, seed, Stream::kHeldOut);
  for (const bool posterior : {true, false}) {
    SCOPED_TRACE(posterior ? "posterior" : "beta");
    const json j = report(run(kNll, std::string("--n 4 --seed 5 --json --what bound --variance ") +
                                        (posterior ? "posterior" : "beta") + ck(),
                              dir));
    ASSERT_FALSE(j.is_null());
    BoundParts sum;
    for (int i = 0; i < n; ++i) {
      const BoundParts b = bound_by_definition(c, params, x0.data() + 2 * i, seed, uint64_t(i), posterior);
      sum.prior += b.prior / n;
      sum.steps += b.steps / n;
      sum.decoder += b.decoder / n;
    }
    std::printf("bound of 4 points, %s variance: L_T %.3g, L_steps %.3g, L_0 %.3g from the definitions\n",
                posterior ? "posterior" : "beta", mean_of(j, "bound", "L_T") - sum.prior,
                mean_of(j, "bound", "L_steps") - sum.steps, mean_of(j, "bound", "L_0") - sum.decoder);
    EXPECT_NEAR(mean_of(j, "bound", "L_T"), sum.prior, 1e-9);
    // The float sums of T weighted errors (seen: 5e-6 of L_steps ~ 10, 4e-8 of L_0).
    EXPECT_NEAR(mean_of(j, "bound", "L_steps"), sum.steps, 2e-5 * (1 + std::abs(sum.steps)));
    EXPECT_NEAR(mean_of(j, "bound", "L_0"), sum.decoder, 1e-5 * (1 + std::abs(sum.decoder)));
    EXPECT_NEAR(mean_of(j, "bound", "total"), sum.prior + sum.steps + sum.decoder,
                2e-5 * (1 + std::abs(sum.prior + sum.steps + sum.decoder)));
  }
  const double want = mean(nll_by_definition(c, params, x0, 400));
  const json rk4 = report(run(kNll, "--n 4 --seed 5 --json --what exact" + ck(), dir));
  const json dopri =
      report(run(kNll, "--n 4 --seed 5 --json --what exact --ode adaptive --rtol 1e-7 --atol 1e-7" + ck(), dir));
  ASSERT_FALSE(rk4.is_null() || dopri.is_null());
  std::printf("exact -log p of 4 points: here %.7f, the tool's rk4 (64 steps) %.7f (error ~%.1g), adaptive %.7f\n",
              want, mean_of(rk4, "exact", "nll"), rk4.at("exact").at("ode_error").get<double>(),
              mean_of(dopri, "exact", "nll"));
  // (Seen: the adaptive one within 1e-6 of this file's; the RK4 at 64 steps 4e-4 off, its estimate 7e-4.)
  EXPECT_NEAR(mean_of(rk4, "exact", "nll"), want, 1e-4 + 3 * rk4.at("exact").at("ode_error").get<double>());
  EXPECT_NEAR(mean_of(dopri, "exact", "nll"), want, 1e-4);
}

// ---- A training file's units ----

TEST_F(NllTool, AFilesModelReportsInTheFilesUnitsToo) {
  ScratchDir dir;
  // Two blobs far from the origin, scaled unevenly: mean ~(20, -3), std ~(5, 0.2).
  std::mt19937 gen(11);
  std::normal_distribution<float> z;
  std::vector<float> pts(2 * 800);
  for (std::size_t i = 0; i < pts.size() / 2; ++i) {
    const float side = (gen() & 1) ? 1.f : -1.f;
    pts[2 * i] = 20.f + 4.f * (side + 0.5f * z(gen));
    pts[2 * i + 1] = -3.f + 0.2f * (side * 0.5f + 0.5f * z(gen));
  }
  write_points(dir / "pts.csv", pts);
  const std::vector<float> file = io::read_samples(dir / "pts.csv");  // the floats the tools read
  const auto trained = run(kTrain, "--data pts.csv --steps 200 --batch 128 --T 100 --beta-T 0.1 --device cpu "
                                   "--log-every 0 --loss-csv '' --loss-png '' --forward-png '' --out f.safetensors",
                           dir);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const Moments2 m = moments_of(file);
  const double log_det = std::log(m.sd[0]) + std::log(m.sd[1]);
  const std::string args = "--n 100 --ode-steps 6 --json --device cpu --ckpt f.safetensors";
  const json j = report(run(kNll, args + " --data pts.csv", dir));
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j.at("data"), "pts.csv");
  EXPECT_EQ(j.at("n"), 100);
  EXPECT_TRUE(j.at("entropy").is_null());
  ASSERT_TRUE(j.contains("file_units")) << j.dump();
  const json& f = j.at("file_units");
  EXPECT_NEAR(f.at("log_det").get<double>(), log_det, 1e-9);
  EXPECT_EQ(f.at("bound").get<double>(), mean_of(j, "bound", "total") + f.at("log_det").get<double>());
  EXPECT_EQ(f.at("exact").get<double>(), mean_of(j, "exact", "nll") + f.at("log_det").get<double>());
  // The default held-out data is the training file, by the path the checkpoint recorded.
  const json dflt = report(run(kNll, args, dir));
  ASSERT_FALSE(dflt.is_null());
  EXPECT_EQ(without_timing(dflt.dump(2)), without_timing(j.dump(2)));
  // The text adds the file's units.
  const auto text = run(kNll, "--n 100 --ode-steps 6 --device cpu --ckpt f.safetensors", dir);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  char want[128];
  std::snprintf(want, sizeof want, "\n  in the file's units (+ %.4f): bound %.4f, exact %.4f\n",
                f.at("log_det").get<double>(), f.at("bound").get<double>(), f.at("exact").get<double>());
  EXPECT_NE(text.out.find(want), std::string::npos) << text.out << "\nwanted: " << want;

  // The same normalized points in other units: the model with its scale replaced by (mean', std') and the file
  // mapped to those units point by point give the same normalized report, and the file's units move by
  // exactly the log of the ratio of the scales.
  io::Checkpoint c = io::load_checkpoint(dir / "f.safetensors");
  ASSERT_TRUE(c.meta.data_scale.has_value());
  const io::CheckpointMeta::DataScale old = *c.meta.data_scale, other{{3.0, -2.0}, {10.0, 0.1}};
  for (int d = 0; d < 2; ++d) EXPECT_NEAR(old.std[d], m.sd[d], 1e-9 * m.sd[d]);
  c.meta.data_scale = other;
  io::save_checkpoint(dir / "g.safetensors", c);
  std::vector<float> moved(2 * 100);
  for (std::size_t k = 0; k < moved.size(); ++k) {
    const int d = int(k % 2);
    moved[k] = float((double(file[k]) - old.mean[d]) / old.std[d] * other.std[d] + other.mean[d]);
  }
  write_points(dir / "moved.npy", moved);
  const json g = report(run(kNll, "--n 100 --ode-steps 6 --json --device cpu --ckpt g.safetensors --data moved.npy", dir));
  ASSERT_FALSE(g.is_null());
  const double other_log_det = std::log(other.std[0]) + std::log(other.std[1]);
  EXPECT_NEAR(g.at("file_units").at("log_det").get<double>(), other_log_det, 1e-12);
  for (const auto& [section, value] : {std::pair{"bound", "total"}, {"bound", "L_steps"}, {"exact", "nll"}})
    EXPECT_NEAR(mean_of(g, section, value), mean_of(j, section, value), 1e-4) << section << " " << value;
  EXPECT_NEAR(g.at("file_units").at("exact").get<double>() - f.at("exact").get<double>(), other_log_det - log_det,
              1e-4);
  EXPECT_NEAR(g.at("file_units").at("bound").get<double>() - f.at("bound").get<double>(), other_log_det - log_det,
              1e-4);
}

// A built-in set's model reads a file in its own (normalized) units: a file holding the very points of the
// held-out draw gives the draw's report, and no file units.
TEST_F(NllTool, ABuiltInModelReadsAFileAsItsOwnUnits) {
  ScratchDir dir;
  write_points(dir / "held.npy", eval::true_draw(Dataset::kMoons, 60, 3, Stream::kHeldOut));
  const json drawn = report(run(kNll, "--n 60 --seed 3 --ode-steps 6 --json" + ck(), dir));
  const json file = report(run(kNll, "--n 60 --seed 3 --ode-steps 6 --json --data held.npy" + ck(), dir));
  // --n beyond the file's points: all of them.
  const json more = report(run(kNll, "--n 1000 --seed 3 --ode-steps 6 --json --data held.npy" + ck(), dir));
  ASSERT_FALSE(drawn.is_null() || file.is_null() || more.is_null());
  EXPECT_EQ(file.at("data"), "held.npy");
  EXPECT_FALSE(file.contains("file_units"));
  EXPECT_EQ(more.at("n"), 60);
  for (const json* j : {&file, &more}) {
    EXPECT_EQ(mean_of(*j, "bound", "total"), mean_of(drawn, "bound", "total"));
    EXPECT_EQ(mean_of(*j, "exact", "nll"), mean_of(drawn, "exact", "nll"));
  }
}

// ---- Errors ----

TEST_F(NllTool, RejectsBadFlagsWithOneLineAndWritesNothing) {
  const std::string ck = " --device cpu --n 10 --out r.json --ckpt " + ckpt_;
  expect_clean_failure("--ode-steps 7" + ck, 2, "--ode-steps 7 is odd");
  expect_clean_failure("--ode-steps 1" + ck, 2, "--ode-steps");
  expect_clean_failure("--rtol 1e-4" + ck, 2, "--rtol and --atol apply to --ode adaptive only");
  expect_clean_failure("--atol 1e-4 --ode rk4" + ck, 2, "--rtol and --atol apply to --ode adaptive only");
  expect_clean_failure("--ode adaptive --ode-steps 8" + ck, 2, "--ode-steps applies to --ode rk4 only");
  expect_clean_failure("--ode adaptive --rtol 0" + ck, 2, "--rtol");
  expect_clean_failure("--what bound --grid 16 --png g.png" + ck, 2, "--what bound computes no ODE");
  expect_clean_failure("--what bound --ode-steps 8" + ck, 2, "--what bound computes no ODE");
  expect_clean_failure("--what exact --variance beta" + ck, 2, "--variance applies to the bound only");
  expect_clean_failure("--what all" + ck, 2, "--what");
  expect_clean_failure("--weights ema" + ck, 2, "has no EMA weights");
  expect_clean_failure("--ode adaptive --device cuda --n 10 --out r.json --ckpt " + ckpt_, 2,
                       "--ode adaptive runs on the CPU only");
  expect_clean_failure("--n 0" + ck, 2, "--n");
  expect_clean_failure("--seed -1" + ck, 2, "--seed");
  expect_clean_failure("--grid 8 --png ''" + ck, 2, "--grid needs a --png path");
  expect_clean_failure("--out '' --device cpu --ckpt " + ckpt_, 2, "--out: empty path");
  expect_clean_failure("--data mars" + ck, 2, "--data mars");
  expect_clean_failure("--data missing.csv" + ck, 1, "missing.csv");
  expect_clean_failure("--x-embedding sinusoidal" + ck, 2, "--x-embedding sinusoidal contradicts");
  expect_clean_failure("--device cpu --n 10 --out r.json --grid 8 --png g.png --ckpt missing.safetensors", 1,
                       "missing.safetensors");
  expect_clean_failure("--device cpu --n 10 --out no_dir/r.json --ckpt " + ckpt_, 1, "no_dir/r.json");
  expect_clean_failure("--device cpu --n 10 --grid 8 --png no_dir/g.png --out r.json --ckpt " + ckpt_, 1,
                       "no_dir/g.png");
  // A truncated checkpoint, by its path.
  ScratchDir dir;
  const std::string full = testing::slurp(ckpt_);
  std::ofstream(dir / "cut.safetensors", std::ios::binary).write(full.data(), std::streamsize(full.size() / 2));
  const auto cut = run(kNll, "--device cpu --n 10 --out r.json --ckpt cut.safetensors", dir);
  EXPECT_EQ(cut.exit_code, 1);
  expect_one_error_line(cut.err, "cut.safetensors");
  // A failed run leaves an earlier report as it was.
  std::ofstream(dir / "r.json") << "earlier";
  const auto ema = run(kNll, "--weights ema --device cpu --n 10 --out r.json --ckpt " + ckpt_, dir);
  EXPECT_EQ(ema.exit_code, 2);
  EXPECT_EQ(testing::slurp(dir / "r.json"), "earlier");
  EXPECT_EQ(dir.files().size(), 2u);
}

// SIGINT mid-run: exit 130 with the tools' one line, and neither the report nor the heat map is left.
TEST_F(NllTool, InterruptLeavesNothing) {
  ScratchDir dir, logs;
  // Seconds of work at least (a minute on two busy cores): the adaptive ODE at tight tolerances.
  testing::Background bg(kNll,
                         {"--device", "cpu", "--ckpt", ckpt_, "--n", "5000", "--what", "exact", "--ode", "adaptive",
                          "--rtol", "1e-7", "--atol", "1e-7", "--out", "r.json", "--grid", "8", "--png", "g.png"},
                         dir.path.string(), logs / "out.txt", logs / "err.txt");
  ASSERT_TRUE(bg.started());
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // well past the handlers' installation
  ASSERT_TRUE(bg.running()) << testing::slurp(logs / "err.txt");
  bg.signal(SIGINT);
  EXPECT_EQ(bg.wait(), 128 + SIGINT);
  EXPECT_EQ(testing::slurp(logs / "err.txt"), "\nddpm_cuda_nll: interrupted by SIGINT; unfinished outputs removed\n");
  EXPECT_EQ(testing::slurp(logs / "out.txt"), "");
  EXPECT_TRUE(dir.files().empty()) << dir.files()[0];
}

// A checkpoint with EMA weights: auto and ema take them, raw the trained ones.
TEST_F(NllTool, WeightsChooseBetweenEmaAndRaw) {
  ScratchDir dir;
  io::Checkpoint c = io::load_checkpoint(ckpt_);
  c.ema = c.params;
  for (float& p : c.ema) p *= 0.9f;  // another model
  io::save_checkpoint(dir / "ema.safetensors", c);
  const std::string args = "--n 50 --ode-steps 4 --json --device cpu --ckpt ema.safetensors";
  const json a = report(run(kNll, args, dir)), e = report(run(kNll, args + " --weights ema", dir)),
             r = report(run(kNll, args + " --weights raw", dir)),
             plain = report(run(kNll, "--n 50 --ode-steps 4 --json" + ck(), dir));
  ASSERT_FALSE(a.is_null() || e.is_null() || r.is_null() || plain.is_null());
  EXPECT_EQ(a.at("weights"), "EMA");
  EXPECT_EQ(e.at("weights"), "EMA");
  EXPECT_EQ(r.at("weights"), "raw");
  EXPECT_EQ(mean_of(a, "exact", "nll"), mean_of(e, "exact", "nll"));
  EXPECT_EQ(mean_of(r, "exact", "nll"), mean_of(plain, "exact", "nll"));
  EXPECT_EQ(mean_of(r, "bound", "total"), mean_of(plain, "bound", "total"));
  EXPECT_NE(mean_of(e, "exact", "nll"), mean_of(r, "exact", "nll"));
  EXPECT_NE(mean_of(e, "bound", "total"), mean_of(r, "bound", "total"));
}

// ---- The heat map ----

TEST_F(NllTool, GridDrawsTheHeatMapAndLeavesTheReportAlone) {
  ScratchDir dir;
  const std::string args = "--n 100 --ode-steps 4 --json" + ck();
  const auto plain = run(kNll, args, dir);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const auto r = run(kNll, args + " --grid 16 --png heat.png", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(without_timing(r.out), without_timing(plain.out));
  EXPECT_EQ(r.err.rfind("ddpm_cuda_nll: wrote heat.png (16 x 16 grid in ", 0), 0u) << r.err;
  EXPECT_EQ(testing::count_lines(r.err), 1) << r.err;
  const auto [w, h] = png_size(testing::slurp(dir / "heat.png"));
  EXPECT_GE(h, 200u);
  EXPECT_GE(w, 2 * h - 100);  // two square panels side by side, a colour bar beside the first
  EXPECT_LE(w, 3 * h);
  // The default name.
  const auto d = run(kNll, "--n 20 --ode-steps 2 --grid 4" + ck(), dir);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_NE(d.err.find("wrote ddpm_nll.png (4 x 4 grid"), std::string::npos) << d.err;
  EXPECT_EQ(png_size(testing::slurp(dir / "ddpm_nll.png")).second, h);
}

// ---- Gibbs' inequality on 8gaussians (labelled long: trains the fast recipe) ----

// h(q) of the 8 Gaussians (radius 4, std 0.5) in raw units by Monte Carlo, in double: mean and its standard error.
std::pair<double, double> eight_gaussians_entropy_mc(int64_t n, uint64_t seed) {
  const double r = kEightGaussiansRadius, s = kEightGaussiansStd;
  double cx[8], cy[8];
  for (int k = 0; k < 8; ++k) cx[k] = r * std::cos(k * M_PI / 4), cy[k] = r * std::sin(k * M_PI / 4);
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> z;
  std::uniform_int_distribution<int> which(0, 7);
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int k = which(gen);
    const double x = cx[k] + s * z(gen), y = cy[k] + s * z(gen);
    double q = 0;
    for (int c = 0; c < 8; ++c) q += std::exp(-((x - cx[c]) * (x - cx[c]) + (y - cy[c]) * (y - cy[c])) / (2 * s * s));
    const double v = -std::log(q / (8 * 2 * M_PI * s * s));
    sum += v;
    sq += v * v;
  }
  const double m = sum / double(n);
  return {m, std::sqrt((sq / double(n) - m * m) / double(n))};
}

TEST(NllToolLong, EightGaussiansExactIsAboveTheEntropy) {
  ScratchDir dir;
  const auto t0 = std::chrono::steady_clock::now();
  const auto trained = run(kTrain, "--data 8gaussians --recipe fast --device cpu --log-every 0 --loss-csv '' "
                                   "--loss-png '' --forward-png '' --out g.safetensors",
                           dir);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const json j = report(run(kNll, "--n 2000 --device cpu --json --ckpt g.safetensors", dir));
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j.at("data"), "8gaussians");
  EXPECT_EQ(j.at("weights"), "EMA");  // the fast recipe keeps an EMA
  ASSERT_TRUE(j.at("entropy").is_number()) << j.dump();
  const double h = j.at("entropy").get<double>();
  // The entropy, independently: Monte Carlo in raw units, minus log det of the normalization
  // (the population std of each coordinate, sqrt(R^2 / 2 + s^2)).
  const auto [h_raw, h_se] = eight_gaussians_entropy_mc(1000000, 42);
  const double sd = std::sqrt(kEightGaussiansRadius * kEightGaussiansRadius / 2.0 +
                              kEightGaussiansStd * kEightGaussiansStd);
  const double h_mc = h_raw - 2 * std::log(sd);
  EXPECT_NEAR(h, h_mc, 4 * h_se) << "Monte Carlo " << h_mc << " +- " << h_se;
  // Gibbs: E_q[-log p] >= h(q) for every density p. The bound bounds the ancestral chain's -log p,
  // another density than the ODE's: printed beside it, not compared.
  const double exact = mean_of(j, "exact", "nll"), exact_se = se_of(j, "exact", "nll");
  const double bound = mean_of(j, "bound", "total"), bound_se = se_of(j, "bound", "total");
  std::printf("8gaussians (fast recipe, trained in %.0f s): h(q) %.4f (Monte Carlo %.4f +- %.4f); exact %.4f +- %.4f "
              "(gap %.4f); bound %.4f +- %.4f (gap %.4f)\n",
              train_s, h, h_mc, h_se, exact, exact_se, exact - h, bound, bound_se, bound - h);
  EXPECT_GE(exact + 3 * exact_se, h);
  EXPECT_GE(bound + 3 * bound_se, h);  // the chain's density obeys Gibbs too
}

}  // namespace
}  // namespace ddpm
