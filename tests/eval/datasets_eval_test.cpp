// ddpm_eval's reference for every data set: the population moments against
// numerical integration of the definitions, the draws against the
// definitions, and reports that put true draws at the floor and wrong sets
// clearly above it.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "ddpm/datasets.hpp"
#include "ddpm/error.hpp"
#include "tests/core/dataset_reference.hpp"
#include "host/eval/metrics.hpp"

namespace {

using namespace ddpm;
using namespace ddpm::eval;

uint64_t fresh_seed() { return (uint64_t(std::random_device{}()) << 32) | std::random_device{}(); }

TEST(EvalDatasets, MomentsMatchTheDefinitionsIntegrated) {
  for (Dataset d : kBuiltinDatasets) {
    SCOPED_TRACE(dataset_name(d));
    const Moments m = true_moments(d);
    const ref::Moments2 want = ref::want_population_moments(d);
    for (int c = 0; c < 2; ++c) {
      EXPECT_NEAR(m.mean[c], want.mean[c], 1e-9) << "axis " << c;
      EXPECT_NEAR(m.std[c] * m.std[c], want.var[c], 1e-9 * want.var[c]) << "axis " << c;
    }
  }
  // The simple ones by hand: (1 + 1/4) / 4 + s^2 (s = 0.05 as a float), 4^2 / 2 + 0.5^2, 8^2 / 12,
  // [t sin t + cos t] / 3 pi.
  EXPECT_NEAR(true_moments(Dataset::kCircles).std[0], std::sqrt(0.3125 + double(0.05f) * double(0.05f)), 1e-12);
  EXPECT_NEAR(true_moments(Dataset::kEightGaussians).std[1], std::sqrt(8.25), 1e-12);
  EXPECT_NEAR(true_moments(Dataset::kCheckerboard).std[0], std::sqrt(64.0 / 12), 1e-12);
  EXPECT_NEAR(true_moments(Dataset::kSwissRoll).mean[0], 2.0, 1e-12);
  // E r^2 = (3.5^3 - 0.5^3) / 9 = 4.75; E r^2 cos 2 theta = 2 / (2 pi)^2 over whole turns of 2 theta.
  const double spiral_s2 = double(0.08f) * double(0.08f), osc = 1 / (4 * ref::kPiD * ref::kPiD);
  EXPECT_NEAR(true_moments(Dataset::kSpiral).std[0], std::sqrt(4.75 / 2 + osc + spiral_s2), 1e-12);
  EXPECT_NEAR(true_moments(Dataset::kSpiral).std[1], std::sqrt(4.75 / 2 - osc + spiral_s2), 1e-12);
  EXPECT_EQ(true_moments(Dataset::kSpiral).mean[0], 0.0);
  EXPECT_THROW(true_moments(Dataset::kFile), Error);
}

TEST(EvalDatasets, NormalizedDrawsHaveZeroMeanUnitVariance) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int64_t n = 200000;
  for (Dataset d : kBuiltinDatasets) {
    SCOPED_TRACE(dataset_name(d));
    const std::vector<float> xy = true_draw(d, n, seed, Stream::kEvalReference);
    ASSERT_EQ(xy.size(), 2 * std::size_t(n));
    for (int c = 0; c < 2; ++c) {
      double mean = 0, m2 = 0, m4 = 0;
      for (int64_t i = 0; i < n; ++i) mean += xy[2 * i + c];
      mean /= double(n);
      for (int64_t i = 0; i < n; ++i) {
        const double v = xy[2 * i + c] - mean;
        m2 += v * v;
        m4 += v * v * v * v;
      }
      m2 /= double(n);
      m4 /= double(n);
      EXPECT_NEAR(mean, 0.0, 5 / std::sqrt(double(n))) << "axis " << c;
      EXPECT_NEAR(m2, 1.0, 5 * std::sqrt((m4 - m2 * m2) / double(n))) << "axis " << c;
    }
  }
}

TEST(EvalDatasets, DrawsArePointsOfTheDefinitionNormalized) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int64_t n = 5000;
  for (Dataset d : kBuiltinDatasets) {
    SCOPED_TRACE(dataset_name(d));
    const Moments m = true_moments(d);
    const std::vector<float> xy = true_draw(d, n, seed, Stream::kEvalFloor);
    for (int64_t i = 0; i < n; ++i) {
      // Outputs 0 and 1: words 0 and 1; 2 and 3: the normals (curand_normal2); 4: word 2.
      Philox st;
      philox_init(&st, seed, Stream::kEvalFloor, uint64_t(i));
      uint32_t w[3];
      w[0] = curand(&st);
      w[1] = curand(&st);
      const float2 z = curand_normal2(&st);
      w[2] = curand(&st);
      double x, y;
      ref::want_base_point(d, w, x, y);
      x = (x + ref::want_noise(d) * z.x - m.mean[0]) / m.std[0];
      y = (y + ref::want_noise(d) * z.y - m.mean[1]) / m.std[1];
      const double tol = (d == Dataset::kSwissRoll ? 5e-6 : 2e-6) * (1 + std::abs(x) + std::abs(y));
      ASSERT_NEAR(xy[2 * i], x, tol) << i;
      ASSERT_NEAR(xy[2 * i + 1], y, tol) << i;
    }
  }
}

TEST(EvalDatasets, DrawsHaveTheSetsShape) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int64_t n = 100000;
  auto raw = [&](Dataset d) {  // back in the set's own coordinates
    const Moments m = true_moments(d);
    std::vector<float> xy = true_draw(d, n, seed, Stream::kEvalReference);
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < 2; ++c) xy[2 * i + c] = float(xy[2 * i + c] * m.std[c] + m.mean[c]);
    return xy;
  };
  const double se = 5 * std::sqrt(0.25 / double(n));  // 5 standard errors of a fraction
  {  // circles: half on each circle, radial noise 0.05
    const std::vector<float> xy = raw(Dataset::kCircles);
    int64_t inner = 0;
    double sq = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double r = std::hypot(xy[2 * i], xy[2 * i + 1]), e = r - (r < 0.75 ? 0.5 : 1.0);
      inner += r < 0.75;
      sq += e * e;
    }
    EXPECT_NEAR(double(inner) / n, 0.5, se);
    EXPECT_NEAR(std::sqrt(sq / n), 0.05, 0.002);
  }
  {  // 8 gaussians: an eighth at each centre (centres 3 apart, std 0.5: the angle tells them apart)
    const std::vector<float> xy = raw(Dataset::kEightGaussians);
    std::vector<int64_t> count(8, 0);
    for (int64_t i = 0; i < n; ++i) {
      const double a = std::atan2(xy[2 * i + 1], xy[2 * i]);
      ++count[(int(std::lround(a / (ref::kPiD / 4))) + 8) % 8];
    }
    for (int k = 0; k < 8; ++k) EXPECT_NEAR(double(count[k]) / n, 0.125, se) << "centre " << k;
  }
  {  // checkerboard: an eighth in each occupied cell; the empty ones at most touched by rounding at an edge
    const std::vector<float> xy = raw(Dataset::kCheckerboard);
    int64_t cells[4][4] = {};
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(std::abs(xy[2 * i]) < 4 + 1e-5 && std::abs(xy[2 * i + 1]) < 4 + 1e-5) << i;
      const int c = std::clamp(int(std::floor(xy[2 * i] / 2.0)), -2, 1);
      const int r = std::clamp(int(std::floor(xy[2 * i + 1] / 2.0)), -2, 1);
      ++cells[c + 2][r + 2];
    }
    for (int c = 0; c < 4; ++c)
      for (int r = 0; r < 4; ++r) {
        if ((c + r) % 2) {
          EXPECT_LT(cells[c][r], 10) << c << " " << r;
        } else {
          EXPECT_NEAR(double(cells[c][r]) / n, 0.125, se) << c << " " << r;
        }
      }
  }
  {  // spiral: half on each arm (at polar (rho, phi) the arms pass where (rho - 0.5) pi - phi is
     // 0 or pi modulo 2 pi, radial noise ~0.08 pi), the radius uniform on [0.5, 3.5]
    const std::vector<float> xy = raw(Dataset::kSpiral);
    int64_t second = 0, inner = 0, far = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double rho = std::hypot(xy[2 * i], xy[2 * i + 1]), phi = std::atan2(xy[2 * i + 1], xy[2 * i]);
      const double delta = std::fmod(std::fmod((rho - 0.5) * ref::kPiD - phi, 2 * ref::kPiD) + 4 * ref::kPiD,
                                     2 * ref::kPiD);  // in [0, 2 pi)
      const bool arm1 = delta > ref::kPiD / 2 && delta < 1.5 * ref::kPiD;
      second += arm1;
      far += std::abs(arm1 ? delta - ref::kPiD : std::min(delta, 2 * ref::kPiD - delta)) > 0.8;  // ~3 sd
      inner += rho < 2.0;
    }
    EXPECT_NEAR(double(second) / n, 0.5, se);
    EXPECT_NEAR(double(inner) / n, 0.5, 0.01);
    EXPECT_LT(double(far) / n, 0.01);
  }
  {  // moons: only the outer curve, half the points, reaches x < -1/2 (where a > 2 pi / 3)
    const std::vector<float> xy = raw(Dataset::kMoons);
    int64_t left = 0;
    for (int64_t i = 0; i < n; ++i) left += xy[2 * i] < -0.5f;
    EXPECT_NEAR(double(left) / n, 1.0 / 6.0, 5 * std::sqrt(5.0 / 36.0 / double(n)));  // 5 standard errors
  }
}

// Report on 2000 samples of `drawn` judged against `judged` (a built-in set).
Report judge(Dataset drawn, Dataset judged, uint64_t seed) {
  return evaluate(true_draw(drawn, 2000, seed, Stream::kSample), seed + 1, DataSource{judged});
}

TEST(EvalDatasets, TrueDrawsScoreAtTheFloorWrongSetsClearlyWorse) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  // (Sliced W1 at n = 2000 mostly measures the wobble of the sample mean: MMD^2, precision and
  // recall are the clear signals here, as to_text notes.)
  constexpr int kSets = int(std::size(kBuiltinDatasets));
  for (int k = 0; k < kSets; ++k) {
    const Dataset d = kBuiltinDatasets[k];
    SCOPED_TRACE(dataset_name(d));
    const Report good = judge(d, d, seed);
    EXPECT_EQ(good.dataset, d);
    EXPECT_EQ(good.n_reference, 2000);
    EXPECT_LT(std::fabs(good.sample.mmd2), 0.01);  // null spread ~1.5e-3 at 2000 points
    EXPECT_GT(good.sample.precision, good.floor.precision - 0.05);
    EXPECT_GT(good.sample.recall, good.floor.recall - 0.05);
    EXPECT_GT(good.floor.precision, 0.9);
    // The sets before and after it in the list, judged as this one (0.04 and more in MMD^2,
    // precision or recall at most 0.75, against a floor above 0.95).
    for (int step : {1, kSets - 1}) {
      const Dataset other = kBuiltinDatasets[(k + step) % kSets];
      SCOPED_TRACE(std::string("samples of ") + dataset_name(other));
      const Report bad = judge(other, d, seed);
      EXPECT_GT(bad.sample.mmd2, 0.025);
      EXPECT_GT(bad.sample.mmd2, 10 * std::fabs(bad.floor.mmd2));
      EXPECT_LT(std::min(bad.sample.precision, bad.sample.recall), bad.floor.precision - 0.15);
    }
  }
}

TEST(EvalDatasets, UsersFileIsItsOwnReference) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  // A file of circles in its own units: an affine map of a normalized draw.
  const int64_t count = 3000;
  std::vector<float> file = true_draw(Dataset::kCircles, count, seed, Stream::kEvalReference);
  for (int64_t i = 0; i < count; ++i) {
    file[2 * i] = 3.f * file[2 * i] + 10.f;
    file[2 * i + 1] = 0.25f * file[2 * i + 1] - 7.f;
  }
  const DataSource data{Dataset::kFile, file.data(), count};
  // The reference: the file normalized by its own mean and population std.
  const std::vector<float> reference = file_reference(data);
  ASSERT_EQ(reference.size(), file.size());
  for (int c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < count; ++i) mean += file[2 * i + c];
    mean /= double(count);
    for (int64_t i = 0; i < count; ++i) var += (file[2 * i + c] - mean) * (file[2 * i + c] - mean);
    const double sd = std::sqrt(var / double(count));
    for (int64_t i = 0; i < count; ++i)
      ASSERT_NEAR(reference[2 * i + c], (file[2 * i + c] - mean) / sd, 1e-5) << i;
  }
  // The floor's points are points of the reference, picked as training rows pick them.
  const std::vector<float> floor = file_draw(data, 5000, seed, Stream::kEvalFloor);
  for (int64_t i = 0; i < 5000; ++i) {
    Philox st;
    philox_init(&st, seed, Stream::kEvalFloor, uint64_t(i));
    const int64_t j = int64_t((uint64_t(curand(&st)) * uint64_t(count)) >> 32);
    ASSERT_EQ(floor[2 * i], reference[2 * j]) << i;
    ASSERT_EQ(floor[2 * i + 1], reference[2 * j + 1]) << i;
  }
  EXPECT_EQ(file_draw(data, 10, seed, Stream::kEvalFloor), std::vector<float>(floor.begin(), floor.begin() + 20));

  const Report good = evaluate(true_draw(Dataset::kCircles, 2000, seed, Stream::kSample), seed, data);
  EXPECT_EQ(good.dataset, Dataset::kFile);
  EXPECT_EQ(good.n_reference, count);
  EXPECT_GT(good.floor.precision, 0.99);  // exact copies of reference points
  EXPECT_GT(good.sample.precision, 0.85);
  EXPECT_LT(std::fabs(good.sample.mmd2), 0.01);
  const Report bad = evaluate(true_draw(Dataset::kMoons, 2000, seed, Stream::kSample), seed, data);
  EXPECT_GT(bad.sample.mmd2, 0.03);
  EXPECT_LT(bad.sample.recall, good.sample.recall - 0.3);  // moons cover only part of the circles
}

TEST(EvalDatasets, RejectsABadFile) {
  const std::vector<float> samples = true_draw(Dataset::kMoons, 100, 1, Stream::kSample);
  auto message = [&](const std::vector<float>& file) -> std::string {
    try {
      evaluate(samples, 0, DataSource{Dataset::kFile, file.data(), int64_t(file.size() / 2)});
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({1.f, 2.f}).find("1 point"), std::string::npos);
  EXPECT_NE(message({0.f, 0.f, 1.f, NAN, 2.f, 1.f, 3.f, 0.f}).find("point 1 has a non-finite y"), std::string::npos);
  EXPECT_NE(message({0.f, 5.f, 1.f, 5.f, 2.f, 5.f, 3.f, 5.f}).find("every point has y = 5"), std::string::npos);
  EXPECT_NE(message({0.f, 0.f, 1.f, 1.f, 2.f, 0.f}).find("3 points; the reference needs at least 4"),
            std::string::npos);
  EXPECT_EQ(message({0.f, 0.f, 1.f, 1.f, 2.f, 0.f, 5.f, 5.f}), "");
}

TEST(EvalDatasets, ReportsNameTheSetAndMoonsKeepsItsForm) {
  const std::vector<float> s = true_draw(Dataset::kCircles, 500, 3, Stream::kSample);
  const Report circles = evaluate(s, 4, DataSource{Dataset::kCircles});
  EXPECT_EQ(nlohmann::json::parse(to_json(circles))["data"], "circles");
  EXPECT_NE(to_text(circles).find("reference points of the true circles distribution"), std::string::npos);
  const Report moons = evaluate(s, 4);
  EXPECT_FALSE(nlohmann::json::parse(to_json(moons)).contains("data"));
  EXPECT_NE(to_text(moons).find("reference points of the true distribution (seed 4)"), std::string::npos);
  const std::vector<float> file = true_draw(Dataset::kCircles, 100, 5, Stream::kEvalReference);
  const Report f = evaluate(s, 4, DataSource{Dataset::kFile, file.data(), 100});
  EXPECT_EQ(nlohmann::json::parse(to_json(f))["data"], "file");
  EXPECT_NE(to_text(f).find("500 samples vs 100 reference points of the data file"), std::string::npos);
}

}  // namespace
