// Sample quality against the true two-moons distribution.
//
// The model is trained on make_moons batches normalized per batch, so its
// samples live in normalized coordinates. The reference is the distribution
// behind make_moons, in the same coordinates:
//
//   a ~ Uniform(0, pi), outer or inner half circle with probability 1/2 each
//   (an independent Bernoulli per point, so a reference is an i.i.d. draw),
//   plus N(0, noise^2) on each coordinate (noise = kMoonsNoise), then
//   normalized by the population mean and standard deviation:
//
//     mean  = (1/2, 1/4)
//     var_x = 3/4 + noise^2
//     var_y = 9/16 - 1/pi + noise^2
//
//   (outer: E cos a = 0, E sin a = 2/pi, E cos^2 = E sin^2 = 1/2; inner adds
//   (1, 1/2) and flips the signs, so E x = 1/2, E y = 1/4, E x^2 = 1,
//   E y^2 = 5/8 - 1/pi.)
//
// Point i of a draw takes all of its randomness from Philox item i of the
// stream (kEvalReference or kEvalFloor) under the user's seed, so a reference
// does not depend on threading and its first n points do not depend on how
// many are drawn.
//
// Metrics between a sample set and a reference set:
//   sliced_w1   sliced Wasserstein-1 over kDirections directions evenly spaced
//               in [0, pi), all points, exact 1-D W1 per direction.
//   mmd2        unbiased MMD^2 (U-statistic) with a sum of Gaussian kernels
//               exp(-|x-y|^2 / (2 h^2)), h in kBandwidths, on random subsets of
//               at most kMmdPoints points per set.
//   precision   fraction of samples inside at least one reference ball (radius:
//               distance to the kNearest-th nearest reference neighbour);
//   recall      fraction of reference points inside at least one sample ball
//               (Kynkaanniemi et al. 2019), on random subsets of at most
//               kPrPoints points per set.
// The noise floor is the same metrics for an independent draw of the true
// distribution, of the sample set's size, against the same reference: what a
// perfect model would score.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ddpm/rng.hpp"

namespace ddpm::eval {

inline constexpr int kDirections = 256;
inline constexpr std::array<double, 5> kBandwidths = {0.05, 0.1, 0.2, 0.5, 1.0};
inline constexpr int64_t kMmdPoints = 4000;
inline constexpr int64_t kPrPoints = 20000;
inline constexpr int kNearest = 3;
inline constexpr int64_t kMinReference = 2000;  // reference size: max(n, kMinReference)
inline constexpr int64_t kMinSamples = 10;      // fewer points are rejected by evaluate()

// Population mean and standard deviation of the un-normalized true distribution.
struct Moments {
  double mean[2], std[2];
};
Moments true_moons_moments();

// n i.i.d. points of the true distribution in normalized coordinates, interleaved (x, y).
std::vector<float> true_moons(int64_t n, uint64_t seed, Stream stream);

struct Metrics {
  int64_t n = 0;  // points in the compared set
  double sliced_w1 = 0, mmd2 = 0, precision = 0, recall = 0;
  std::array<double, kBandwidths.size()> mmd2_per_bandwidth{};  // their sum is mmd2
};

// The individual metrics; sets are interleaved (x, y), any sizes >= 1 (mmd2 needs >= 2 per set,
// precision and recall more than kNearest). `seed` fixes the random subsets.
double sliced_w1(const std::vector<float>& a, const std::vector<float>& b);
std::array<double, kBandwidths.size()> mmd2(const std::vector<float>& a, const std::vector<float>& b,
                                            uint64_t seed);
// {precision, recall} of `samples` with respect to `reference`.
std::array<double, 2> precision_recall(const std::vector<float>& samples, const std::vector<float>& reference,
                                       uint64_t seed);

Metrics compare(const std::vector<float>& samples, const std::vector<float>& reference, uint64_t seed);

struct Report {
  uint64_t seed = 0;
  int64_t n_reference = 0;
  Metrics sample, floor;
  double ratio_sliced_w1() const;
  double ratio_mmd2() const;  // NaN when the floor's MMD^2 is not positive (the estimate is unbiased)
};

// Draws the reference (max(n, kMinReference) points, kEvalReference) and the floor (n points,
// kEvalFloor) from `seed` and compares both against it. Throws ddpm::Error for fewer than
// kMinSamples points or a non-finite coordinate.
Report evaluate(const std::vector<float>& samples, uint64_t seed);

std::string to_json(const Report& r);  // one JSON object, pretty-printed, ending in a newline
std::string to_text(const Report& r);  // aligned table: metric | samples | noise floor | ratio

}  // namespace ddpm::eval
