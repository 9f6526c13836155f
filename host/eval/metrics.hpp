// Sample quality against the true distribution of the training data.
//
// The model is trained on batches normalized per batch, so its samples live
// in normalized coordinates. The reference is the distribution behind the
// training set (ddpm/datasets.hpp), in the same coordinates: i.i.d. points of
// the base distribution (true_base_point: random angles where training uses
// scikit-learn's grids, the curve or circle with probability 1/2 each) plus
// N(0, s^2) on each coordinate (s = dataset_noise), normalized by the
// population mean and standard deviation, in closed form:
//
//   moons         mean = (1/2, 1/4), var_x = 3/4 + s^2, var_y = 9/16 - 1/pi + s^2
//                 (outer: E cos a = 0, E sin a = 2/pi, E cos^2 = E sin^2 = 1/2;
//                 inner adds (1, 1/2) and flips the signs, so E x = 1/2,
//                 E y = 1/4, E x^2 = 1, E y^2 = 5/8 - 1/pi)
//   circles       mean = 0, var_x = var_y = (1 + f^2) / 4 + s^2  (f = kCirclesFactor)
//   swissroll     t ~ U[a, b], a = 1.5 pi, b = 4.5 pi, L = b - a:
//                 E x = [t sin t + cos t]_a^b / L,  E y = [sin t - t cos t]_a^b / L,
//                 E x^2, E y^2 = ((b^3 - a^3) / 3 +- [G]_a^b) / (2 L) with
//                 G(t) = (t^2 / 2) sin 2t + (t / 2) cos 2t - (1 / 4) sin 2t
//                 (t^2 cos^2 t = t^2 (1 + cos 2t) / 2); var = E x^2 - (E x)^2 + s^2
//   8gaussians    mean = 0, var_x = var_y = R^2 / 2 + s^2  (R = kEightGaussiansRadius)
//   checkerboard  mean = 0, x and y each uniform on [-4, 4): var = 8^2 / 12
//   spiral        mean = 0 (the arms are each other's negation), r ~ U[a, b],
//                 theta = 2 pi turns (r - a) / (b - a): var_x, var_y =
//                 (E r^2 +- E r^2 cos 2 theta) / 2 + s^2, the second term by parts
//
// For a user's file the reference is the file's own points, all of them,
// normalized by their mean and population (1 / N) standard deviation: the
// distribution training resamples from. Its noise floor is n points drawn from
// the file with replacement (each as a training row picks one, file_index),
// normalized the same way; exact copies of reference points, so that floor's
// precision is near 1 and it is what a model reproducing the training
// distribution exactly would score. Samples in the file's units (what
// ddpm_cuda_sample writes by default for such a model) are normalized the
// same way first (file_normalized; ddpm_eval --units).
//
// Point i of a draw takes all of its randomness from Philox item i of the
// stream (kEvalReference or kEvalFloor) under the user's seed, so a reference
// does not depend on threading and its first n points do not depend on how
// many are drawn: words 0 and 1 of PointRandom are outputs 0 and 1 of the
// item's subsequence, its normals curand_normal2 of outputs 2 and 3, word 2
// output 4 (for moons, the draw ddpm_eval always made).
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

#include "ddpm/datasets.hpp"
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
// The closed forms above; `d` a built-in set (ddpm::Error for Dataset::kFile).
Moments true_moments(Dataset d);
Moments true_moons_moments();  // true_moments(Dataset::kMoons)
// Mean and population (1 / N) standard deviation of count points, in double.
Moments points_moments(const float* xy, int64_t count);

// n i.i.d. points of a built-in set's true distribution in normalized coordinates, interleaved (x, y).
std::vector<float> true_draw(Dataset d, int64_t n, uint64_t seed, Stream stream);
std::vector<float> true_moons(int64_t n, uint64_t seed, Stream stream);  // true_draw(Dataset::kMoons, ...)

// A user's points (Dataset::kFile) in normalized coordinates: (p - mean) / std with the file's
// mean and population standard deviation (points_moments).
std::vector<float> file_reference(const DataSource& data);
// Any points (samples in the file's units, say) normalized as file_reference normalizes the file.
std::vector<float> file_normalized(const std::vector<float>& xy, const DataSource& data);
// n points of the file drawn with replacement, normalized as file_reference: point i is
// file_index(output 0 of Philox item i of `stream`), as a training row picks one.
std::vector<float> file_draw(const DataSource& data, int64_t n, uint64_t seed, Stream stream);

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
  Dataset dataset = Dataset::kMoons;
  uint64_t seed = 0;
  int64_t n_reference = 0;
  Metrics sample, floor;
  double ratio_sliced_w1() const;
  double ratio_mmd2() const;  // NaN when the floor's MMD^2 is not positive (the estimate is unbiased)
};

// Draws the reference (max(n, kMinReference) points, kEvalReference) and the floor (n points,
// kEvalFloor) of `data`'s true distribution (moons by default) from `seed` and compares both
// against it; for a user's file, the reference is the file (see above). Throws ddpm::Error for
// fewer than kMinSamples points or a non-finite coordinate, and for a file that check_points
// rejects or that holds fewer than kNearest + 1 points.
Report evaluate(const std::vector<float>& samples, uint64_t seed, const DataSource& data = {});

// One JSON object, pretty-printed, ending in a newline. Other sets than moons add "data": their
// name (moons' report keeps the form it always had).
std::string to_json(const Report& r);
// Aligned table: metric | samples | noise floor | ratio; the first line names a set other than moons.
std::string to_text(const Report& r);

}  // namespace ddpm::eval
