// The evaluation metrics against closed forms and against each other.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "ddpm/moons.hpp"
#include "host/eval/metrics.hpp"

namespace {

using namespace ddpm;
using namespace ddpm::eval;

constexpr double kPiD = 3.14159265358979323846;

std::vector<float> shifted(std::vector<float> xy, float dx, float dy) {
  for (std::size_t i = 0; i < xy.size(); i += 2) {
    xy[i] += dx;
    xy[i + 1] += dy;
  }
  return xy;
}

std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> z;
  std::vector<float> xy(2 * std::size_t(n));
  for (float& v : xy) v = z(gen);
  return xy;
}

// The average of |<v, d>| over the evaluation's directions.
double mean_abs_projection(double vx, double vy) {
  double s = 0;
  for (int k = 0; k < kDirections; ++k) {
    const double t = kPiD * k / kDirections;
    s += std::fabs(vx * std::cos(t) + vy * std::sin(t));
  }
  return s / kDirections;
}

TEST(EvalTrueMoons, ClosedFormMoments) {
  // Un-normalized: mean (1/2, 1/4), var_x = 3/4 + noise^2, var_y = 9/16 - 1/pi + noise^2.
  const Moments m = true_moons_moments();
  const double noise2 = double(kMoonsNoise) * kMoonsNoise;
  EXPECT_DOUBLE_EQ(m.mean[0], 0.5);
  EXPECT_DOUBLE_EQ(m.mean[1], 0.25);
  EXPECT_NEAR(m.std[0] * m.std[0], 0.75 + noise2, 1e-12);
  EXPECT_NEAR(m.std[1] * m.std[1], 0.5625 - 1 / kPiD + noise2, 1e-12);
}

TEST(EvalTrueMoons, NormalizedDrawsHaveZeroMeanUnitStd) {
  const int64_t n = 200000;
  const std::vector<float> xy = true_moons(n, 7, Stream::kEvalReference);
  double sum[2] = {0, 0}, sq[2] = {0, 0};
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < 2; ++d) {
      sum[d] += xy[2 * i + d];
      sq[d] += double(xy[2 * i + d]) * xy[2 * i + d];
    }
  for (int d = 0; d < 2; ++d) {
    const double mean = sum[d] / n, var = sq[d] / n - mean * mean;
    EXPECT_NEAR(mean, 0.0, 0.01) << "axis " << d;  // standard error 0.0022
    EXPECT_NEAR(std::sqrt(var), 1.0, 0.01) << "axis " << d;
  }
  // Each curve with probability 1/2: only the outer curve reaches x < -1/2 (there cos a < -1/2,
  // a > 2 pi / 3), so that fraction is 1/2 * 1/3 (the noise smears the boundary almost symmetrically).
  const Moments m = true_moons_moments();
  const double x_left = (-0.5 - m.mean[0]) / m.std[0];
  int64_t left = 0;
  for (int64_t i = 0; i < n; ++i) left += xy[2 * i] < x_left;
  // P(outer and cos a < -1/2) = 1/2 * 1/3 (noise moves the boundary symmetrically to first order).
  EXPECT_NEAR(double(left) / n, 1.0 / 6.0, 0.004);  // standard error 0.0008
}

TEST(EvalTrueMoons, DeterministicAndPrefixStable) {
  const std::vector<float> a = true_moons(3000, 11, Stream::kEvalReference);
  const std::vector<float> b = true_moons(3000, 11, Stream::kEvalReference);
  const std::vector<float> c = true_moons(1000, 11, Stream::kEvalReference);
  const std::vector<float> d = true_moons(3000, 12, Stream::kEvalReference);
  const std::vector<float> e = true_moons(3000, 11, Stream::kEvalFloor);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(std::equal(c.begin(), c.end(), a.begin()));  // point i depends only on (seed, stream, i)
  EXPECT_NE(a, d);
  EXPECT_NE(a, e);
}

TEST(EvalSlicedW1, IdenticalSetsAreZero) {
  const std::vector<float> a = true_moons(2500, 3, Stream::kEvalReference);
  EXPECT_EQ(sliced_w1(a, a), 0.0);
  std::vector<float> twice = a;  // same empirical distribution at twice the size: the unequal-size path
  twice.insert(twice.end(), a.begin(), a.end());
  EXPECT_NEAR(sliced_w1(a, twice), 0.0, 1e-12);
}

TEST(EvalSlicedW1, ShiftClosedForm) {
  const std::vector<float> a = true_moons(4000, 5, Stream::kEvalReference);
  const double vx = 0.3, vy = -0.2;
  const double w1 = sliced_w1(shifted(a, float(vx), float(vy)), a);
  EXPECT_NEAR(w1, mean_abs_projection(vx, vy), 1e-5);
  EXPECT_NEAR(w1, 2 * std::hypot(vx, vy) / kPiD, 1e-3 * std::hypot(vx, vy));
}

TEST(EvalSlicedW1, UnequalSizesQuantileIntegral) {
  // {0} against {0, (1, 0)}: on direction t the quantile functions differ by |cos t| on half of (0, 1).
  const std::vector<float> a = {0.f, 0.f}, b = {0.f, 0.f, 1.f, 0.f};
  EXPECT_NEAR(sliced_w1(a, b), 0.5 * mean_abs_projection(1, 0), 1e-7);
  // 3 points against 2: quantile breakpoints at 1/3, 1/2, 2/3.
  const std::vector<float> p = {0.f, 0.f, 1.f, 0.f, 2.f, 0.f}, q = {0.f, 0.f, 3.f, 0.f};
  // Along x: Qp = 0, 1, 2 on thirds; Qq = 0, 3 on halves. Integral of |Qp - Qq| =
  // (1/3)*0 + (1/2-1/3)*1 + (2/3-1/2)*2 + (1/3)*1 = 1/6 + 1/3 + 1/3 = 5/6, times |cos t| per direction
  // (for cos t < 0 the order reverses and the same sum results).
  EXPECT_NEAR(sliced_w1(p, q), 5.0 / 6.0 * mean_abs_projection(1, 0), 1e-6);
}

TEST(EvalMmd, IndependentDrawsNearZeroShiftedClearlyPositive) {
  const std::vector<float> a = true_moons(4000, 21, Stream::kEvalReference);
  const std::vector<float> b = true_moons(4000, 21, Stream::kEvalFloor);
  const auto same = mmd2(a, b, 0);
  const auto moved = mmd2(shifted(b, 0.1f, 0.f), a, 0);
  double s_same = 0, s_moved = 0;
  for (std::size_t h = 0; h < same.size(); ++h) {
    s_same += same[h];
    s_moved += moved[h];
    EXPECT_GT(moved[h], 0.0) << "bandwidth " << kBandwidths[h];
  }
  // Over seeds, the sum at m = 4000 has a null standard deviation of about 6e-4; a 0.1 shift scores ~1.4e-2.
  EXPECT_LT(std::fabs(s_same), 2.5e-3);
  EXPECT_GT(s_moved, 8e-3);
}

TEST(EvalMmd, SetAgainstItselfClosedForm) {
  // With S the off-diagonal kernel sum and Kbar = S / (m (m - 1)): both self terms are Kbar and the
  // cross term (S + m) / m^2 includes the diagonal k(x, x) = 1, so MMD^2 = -2 (1 - Kbar) / m.
  const int m = 500;
  const std::vector<float> a = true_moons(m, 2, Stream::kEvalReference);
  const auto self = mmd2(a, a, 0);
  for (std::size_t h = 0; h < self.size(); ++h) {
    double s = 0;
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < m; ++j) {
        if (i == j) continue;
        const double dx = double(a[2 * i]) - a[2 * j], dy = double(a[2 * i + 1]) - a[2 * j + 1];
        s += std::exp(-(dx * dx + dy * dy) / (2 * kBandwidths[h] * kBandwidths[h]));
      }
    const double kbar = s / (double(m) * (m - 1));
    EXPECT_NEAR(self[h], -2 * (1 - kbar) / m, 1e-12) << "bandwidth " << kBandwidths[h];
  }
}

TEST(EvalPrecisionRecall, SameDistributionHighFarShiftZero) {
  const std::vector<float> a = true_moons(5000, 31, Stream::kEvalReference);
  const std::vector<float> b = true_moons(5000, 31, Stream::kEvalFloor);
  const auto pr = precision_recall(b, a, 0);
  EXPECT_GT(pr[0], 0.9);
  EXPECT_GT(pr[1], 0.9);
  const auto far = precision_recall(shifted(b, 10.f, 0.f), a, 0);
  EXPECT_EQ(far[0], 0.0);
  EXPECT_EQ(far[1], 0.0);
}

// Precision and recall read straight from the definition, O(n^2), in squared distances.
double dist2(const std::vector<float>& p, std::size_t i, const std::vector<float>& q, std::size_t j) {
  const double dx = double(p[2 * i]) - q[2 * j], dy = double(p[2 * i + 1]) - q[2 * j + 1];
  return dx * dx + dy * dy;
}

std::vector<double> brute_radii2(const std::vector<float>& p) {
  const std::size_t n = p.size() / 2;
  std::vector<double> r2(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<double> d;
    for (std::size_t j = 0; j < n; ++j)
      if (j != i) d.push_back(dist2(p, i, p, j));
    std::nth_element(d.begin(), d.begin() + (kNearest - 1), d.end());
    r2[i] = d[kNearest - 1];
  }
  return r2;
}

double brute_coverage(const std::vector<float>& q, const std::vector<float>& c) {
  const std::vector<double> r2 = brute_radii2(c);
  int64_t hits = 0;
  for (std::size_t i = 0; i < q.size() / 2; ++i) {
    bool in = false;
    for (std::size_t j = 0; j < c.size() / 2 && !in; ++j) in = dist2(q, i, c, j) <= r2[j];
    hits += in;
  }
  return double(hits) / double(q.size() / 2);
}

// Sets below the subset size are used whole, so the grid search must agree exactly.
void expect_brute_force_agreement(const std::vector<float>& samples, const std::vector<float>& reference) {
  const auto pr = precision_recall(samples, reference, 0);
  EXPECT_DOUBLE_EQ(pr[0], brute_coverage(samples, reference));
  EXPECT_DOUBLE_EQ(pr[1], brute_coverage(reference, samples));
}

TEST(EvalPrecisionRecall, BruteForceAgreement) {
  const std::vector<float> moons = true_moons(700, 51, Stream::kEvalReference);
  expect_brute_force_agreement(gaussian(500, 51), moons);
  expect_brute_force_agreement(true_moons(600, 51, Stream::kEvalFloor), moons);
  expect_brute_force_agreement(shifted(gaussian(300, 52), 0.5f, 0.f), gaussian(400, 53));
}

TEST(EvalPrecisionRecall, OutliersAndDuplicatesStayExact) {
  // Far outliers (one beyond any int cell index) and a pile of duplicates: the grid's robust
  // extent and its clamped border cells must not change which points are covered.
  std::vector<float> s = true_moons(600, 41, Stream::kEvalFloor);
  for (int i = 0; i < 5; ++i) {
    s[2 * i] = 1000.f * float(i + 1);
    s[2 * i + 1] = -500.f;
  }
  s[10] = 1e30f;
  s[11] = -3e38f;
  for (int i = 100; i < 250; ++i) {
    s[2 * i] = 0.25f;
    s[2 * i + 1] = -0.5f;
  }
  const std::vector<float> moons = true_moons(700, 41, Stream::kEvalReference);
  expect_brute_force_agreement(s, moons);
  expect_brute_force_agreement(moons, s);
  std::vector<float> pile(2 * 400, 1.5f);  // all points equal but one: nearly every radius is 0
  pile[0] = -1.f;
  expect_brute_force_agreement(pile, moons);
  expect_brute_force_agreement(moons, pile);
}

TEST(EvalReport, GaussianScoresClearlyWorseThanTheFloor) {
  const std::vector<float> g = gaussian(2000, 61);
  const Report r = evaluate(g, 0);
  EXPECT_EQ(r.sample.n, 2000);
  EXPECT_EQ(r.floor.n, 2000);
  EXPECT_EQ(r.n_reference, 2000);
  EXPECT_GT(r.sample.sliced_w1, 2 * r.floor.sliced_w1);
  EXPECT_GT(r.sample.mmd2, 0.05);
  EXPECT_GT(r.sample.mmd2, 20 * std::fabs(r.floor.mmd2));
  EXPECT_LT(r.sample.precision, r.floor.precision - 0.3);
  EXPECT_GT(r.floor.precision, 0.9);
  EXPECT_GT(r.floor.recall, 0.9);
  // Recall does not separate them: N(0, I)'s wide k-NN balls cover the normalized moons.
}

TEST(EvalReport, DroppedModeHalvesRecall) {
  // Only the outer moon: samples stay on the data (precision high) but miss half of it.
  const Moments m = true_moons_moments();
  std::mt19937 gen(71);
  std::uniform_real_distribution<float> angle(0.f, kPi);
  std::normal_distribution<float> z;
  std::vector<float> outer;
  for (int i = 0; i < 4000; ++i) {
    float x, y;
    moons_curve(true, angle(gen), x, y);
    outer.push_back(float((x + kMoonsNoise * z(gen) - m.mean[0]) / m.std[0]));
    outer.push_back(float((y + kMoonsNoise * z(gen) - m.mean[1]) / m.std[1]));
  }
  const Report r = evaluate(outer, 0);
  EXPECT_GT(r.sample.precision, 0.9);
  EXPECT_NEAR(r.sample.recall, 0.5, 0.05);
  EXPECT_GT(r.floor.recall, 0.9);
  EXPECT_GT(r.sample.mmd2, 0.05);
  EXPECT_GT(r.sample.sliced_w1, 5 * r.floor.sliced_w1);
}

TEST(EvalReport, DeterministicInTheSeed) {
  const std::vector<float> s = true_moons(1500, 5, Stream::kSample);
  const Report a = evaluate(s, 9), b = evaluate(s, 9), c = evaluate(s, 10);
  EXPECT_EQ(to_json(a), to_json(b));
  EXPECT_NE(to_json(a), to_json(c));
  EXPECT_EQ(a.n_reference, kMinReference);  // small sets still get a 2000-point reference
}

TEST(EvalReport, RejectsTooFewAndNonFinitePoints) {
  EXPECT_THROW(evaluate(std::vector<float>(2 * 9, 0.f), 0), Error);
  std::vector<float> s = true_moons(100, 1, Stream::kSample);
  s[7] = std::nanf("");
  EXPECT_THROW(evaluate(s, 0), Error);
  s[7] = INFINITY;
  EXPECT_THROW(evaluate(s, 0), Error);
}

TEST(EvalReport, JsonAndText) {
  const Report r = evaluate(true_moons(1000, 3, Stream::kSample), 4);
  const auto j = nlohmann::json::parse(to_json(r));
  EXPECT_EQ(j["n"], 1000);
  EXPECT_EQ(j["n_reference"], 2000);
  EXPECT_EQ(j["seed"], 4);
  for (const char* part : {"samples", "floor"}) {
    for (const char* key : {"n", "sliced_w1", "mmd2", "precision", "recall"}) EXPECT_TRUE(j[part].contains(key));
    double sum = 0;
    for (const auto& [bw, v] : j[part]["mmd2_per_bandwidth"].items()) sum += v.get<double>();
    EXPECT_NEAR(sum, j[part]["mmd2"].get<double>(), 1e-12);
    EXPECT_EQ(j[part]["mmd2_per_bandwidth"].size(), kBandwidths.size());
  }
  EXPECT_NEAR(j["ratio"]["sliced_w1"].get<double>(), r.sample.sliced_w1 / r.floor.sliced_w1, 1e-12);
  EXPECT_TRUE(j["ratio"]["mmd2"].is_null() == !(r.floor.mmd2 > 0));

  const std::string text = to_text(r);
  for (const char* word : {"metric", "samples", "noise floor", "ratio", "sliced W1", "MMD^2", "precision", "recall"})
    EXPECT_NE(text.find(word), std::string::npos) << word;
  EXPECT_NE(text.find("note: sliced W1 at small n"), std::string::npos);
  Report big = r;
  big.sample.n = 20000;
  EXPECT_EQ(to_text(big).find("note:"), std::string::npos);
}

}  // namespace
