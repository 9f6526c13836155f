// The 2-D data sets a model can be trained on, and their true distributions.
//
// Every built-in data set is a noise-free base point plus isotropic Gaussian
// noise, x = b + s z with z ~ N(0, I) and s = dataset_noise(d):
//
//   moons         scikit-learn's make_moons(n, noise=0.05) (see moons.hpp): two
//                 interleaved half circles of radius 1, the outer one
//                 (cos a, sin a), the inner one (1 - cos a, 1/2 - sin a),
//                 a in [0, pi]. The seed's data set, and the default.
//   circles       scikit-learn's make_circles(n, factor=0.5, noise=0.05): the
//                 first n/2 rows on the unit circle, the remaining n - n/2 on
//                 the circle of radius 0.5, each at angles
//                 linspace(0, 2 pi, count, endpoint=False).
//   swissroll     scikit-learn's make_swiss_roll in its (x, z) plane:
//                 t = 1.5 pi (1 + 2 u), u ~ U[0, 1), b = (t cos t, t sin t), with
//                 noise 1.0 as FFJORD's toy (Grathwohl et al. 2019) uses it.
//   8gaussians    FFJORD's toy: centre k ~ U{0..7} at radius 4 and angle
//                 k pi / 4, standard deviation 0.5.
//   checkerboard  FFJORD's toy: uniform on the 8 of the 16 cells of side 2 of
//                 the board [-4, 4)^2 whose column floor(x / 2) and row
//                 floor(y / 2) have an even sum; no noise. As FFJORD draws it:
//                 x1 = 4 u1 - 2, x2 = u2 - 2 b + (floor(x1) mod 2), b ~ U{0, 1},
//                 (x, y) = 2 (x1, x2).
//   spiral        two arms: radius r ~ U[0.5, 3.5], angle theta = 1.5 turns
//                 * 2 pi (r - 0.5) / 3, b = r (cos theta, sin theta), the
//                 second arm rotated by pi (b -> -b); noise 0.08.
//   file          a user's own points: each row is one of them, chosen
//                 uniformly with replacement.
//
// FFJORD rescales its toys (8gaussians by 1 / 1.414, swissroll by 1 / 5);
// every batch is normalized per batch, (x - mean) / std, which removes any
// overall scale, so those factors are left out.
//
// A training batch (host/cpu/datasets.cpp) follows scikit-learn: moons and
// circles place row i of n on their even grids of angles, in order, the other
// sets draw every row independently. The true distribution behind a grid
// places the angle uniformly at random instead, and picks the curve (moons)
// or the circle (circles) with probability 1/2 (true_base_point); ddpm_eval
// compares samples against it.
//
// The generators take their randomness as arguments (PointRandom), so the CPU
// backend and CUDA kernels that draw the same Philox numbers compute the same
// points. Training rows pass draw_train_row's noise normals and words
// (ddpm/rng.hpp), the forward-process figure its pair 0 and the words of
// Stream::kForwardData (host/cpu/datasets.cpp), ddpm_eval the layout that
// host/eval/metrics.hpp describes.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "ddpm/moons.hpp"
#include "ddpm/rng.hpp"

namespace ddpm {

// ---- The data sets' constants (moons': kMoonsNoise in config.hpp) ----
inline constexpr float kCirclesFactor = 0.5f;         // make_circles(factor=0.5): inner radius / outer radius
inline constexpr float kCirclesNoise = 0.05f;         // make_circles(noise=0.05)
inline constexpr float kSwissRollTBegin = 1.5f;       // t from 1.5 pi ...
inline constexpr float kSwissRollTEnd = 4.5f;         // ... to 4.5 pi (in units of pi), as make_swiss_roll
inline constexpr float kSwissRollNoise = 1.0f;        // FFJORD's make_swiss_roll(noise=1.0)
inline constexpr float kEightGaussiansRadius = 4.f;   // FFJORD's scale of the unit-circle centres
inline constexpr float kEightGaussiansStd = 0.5f;     // FFJORD's per-coordinate standard deviation
inline constexpr float kCheckerboardCell = 2.f;       // FFJORD: unit cells scaled by 2, board [-4, 4)^2
inline constexpr int kCheckerboardCells = 4;          // cells per side
inline constexpr float kSpiralRadiusMin = 0.5f;       // each arm from radius 0.5 ...
inline constexpr float kSpiralRadiusMax = 3.5f;       // ... to 3.5
inline constexpr float kSpiralTurns = 1.5f;           // turns of each arm over that range
inline constexpr float kSpiralNoise = 0.08f;

enum class Dataset : uint8_t { kMoons, kCircles, kSwissRoll, kEightGaussians, kCheckerboard, kSpiral, kFile };

inline constexpr Dataset kBuiltinDatasets[] = {Dataset::kMoons, Dataset::kCircles, Dataset::kSwissRoll,
                                               Dataset::kEightGaussians, Dataset::kCheckerboard, Dataset::kSpiral};

// The name a user types for a built-in set ("file" for a user's points).
inline const char* dataset_name(Dataset d) {
  switch (d) {
    case Dataset::kMoons: return "moons";
    case Dataset::kCircles: return "circles";
    case Dataset::kSwissRoll: return "swissroll";
    case Dataset::kEightGaussians: return "8gaussians";
    case Dataset::kCheckerboard: return "checkerboard";
    case Dataset::kSpiral: return "spiral";
    case Dataset::kFile: return "file";
  }
  return "?";
}

// The built-in set of that name; nullopt for any other string (a file's path, say).
inline std::optional<Dataset> builtin_dataset(std::string_view name) {
  for (Dataset d : kBuiltinDatasets)
    if (name == dataset_name(d)) return d;
  return std::nullopt;
}

// "moons, circles, swissroll, 8gaussians, checkerboard, spiral", for help texts and errors.
inline std::string builtin_dataset_names() {
  std::string s;
  for (Dataset d : kBuiltinDatasets) s += (s.empty() ? "" : ", ") + std::string(dataset_name(d));
  return s;
}

// A data set as the generators see it: for kFile, `count` points at `points`,
// interleaved (x, y) (host or device memory, as the caller runs).
struct DataSource {
  Dataset dataset = Dataset::kMoons;
  const float* points = nullptr;
  int64_t count = 0;
};

// The randomness of one point: two standard normals and three uniform 32-bit words.
struct PointRandom {
  float normal[2];
  uint32_t word[3];
};

// ---- From words to numbers ----

// Uniform in [0, 1) on the grid k / 2^23 (the word's top 23 bits). Coarser than
// a float could hold near 1, so that u + m and 4 u - 2 are exact for the small
// integers m the checkerboard adds: its points never round into another cell.
DDPM_HD float uniform_01(uint32_t w) { return float(w >> 9) * 0x1p-23f; }

// cuRAND's curand_uniform of a word, in (0, 1]: w 2^-32 + 2^-33 (the product is
// exact, so any contraction into an FMA gives the same float).
DDPM_HD float curand_uniform_of(uint32_t w) { return float(w) * 0x1p-32f + 0x1p-33f; }

// Index in 0..count-1 from one word (multiply-shift, as uniform_int): every
// index is reached for count <= 2^32; the bias is at most count / 2^32.
DDPM_HD int64_t file_index(uint32_t w, int64_t count) {
  return int64_t((uint64_t(w) * uint64_t(count)) >> 32);
}

// ---- The base points ----

// The standard deviation s of each set's Gaussian noise (0: none).
DDPM_HD float dataset_noise(Dataset d) {
  switch (d) {
    case Dataset::kMoons: return kMoonsNoise;
    case Dataset::kCircles: return kCirclesNoise;
    case Dataset::kSwissRoll: return kSwissRollNoise;
    case Dataset::kEightGaussians: return kEightGaussiansStd;
    case Dataset::kSpiral: return kSpiralNoise;
    default: return 0.f;
  }
}

// Point on the outer (radius 1) or inner (radius kCirclesFactor) circle at angle a.
DDPM_HD void circles_curve(bool outer, float a, float& x, float& y) {
  const float r = outer ? 1.f : kCirclesFactor;
  x = r * cosf(a);
  y = r * sinf(a);
}

// Row i of make_circles(n) before noise (scikit-learn's grid): the first n/2
// rows on the outer circle, then n - n/2 on the inner one.
DDPM_HD void circles_grid_point(int i, int n, float& x, float& y) {
  const int n_out = n / 2;
  const int n_in = n - n_out;
  const bool outer = i < n_out;
  const int j = outer ? i : i - n_out;
  const int count = outer ? n_out : n_in;
  const float a = 2.f * kPi * float(j) / float(count);  // linspace(0, 2 pi, count, endpoint=False)[j]
  circles_curve(outer, a, x, y);
}

// The swiss roll's spiral at u in [0, 1): t = 1.5 pi (1 + 2 u), (t cos t, t sin t).
DDPM_HD void swiss_roll_point(float u, float& x, float& y) {
  const float t = kPi * (kSwissRollTBegin + (kSwissRollTEnd - kSwissRollTBegin) * u);
  x = t * cosf(t);
  y = t * sinf(t);
}

// Centre k (0..7) of the 8 gaussians: radius kEightGaussiansRadius, angle k pi / 4
// (exact zeros on the axes).
DDPM_HD void eight_gaussians_centre(int k, float& x, float& y) {
  constexpr float h = 0.70710678118654752f;  // cos(pi / 4)
  constexpr float cx[8] = {1.f, h, 0.f, -h, -1.f, -h, 0.f, h};
  constexpr float cy[8] = {0.f, h, 1.f, h, 0.f, -h, -1.f, -h};
  x = kEightGaussiansRadius * cx[k];
  y = kEightGaussiansRadius * cy[k];
}

// FFJORD's checkerboard from u1, u2 in [0, 1) and a bit b:
// x1 = 4 u1 - 2 (column c = floor(x1) in -2..1), x2 = u2 - 2 b + (c mod 2), (x, y) = 2 (x1, x2).
DDPM_HD void checkerboard_point(float u1, float u2, int b, float& x, float& y) {
  const float half = 0.5f * float(kCheckerboardCells);  // 2: x1 in [-2, 2)
  const float x1 = float(kCheckerboardCells) * u1 - half;
  const int c = int(floorf(x1));
  const int parity = ((c % 2) + 2) % 2;  // Python's floor(x1) % 2
  const float x2 = u2 + float(parity - 2 * b);
  x = kCheckerboardCell * x1;
  y = kCheckerboardCell * x2;
}

// The spiral at u in [0, 1) on the first arm (or the second, rotated by pi):
// r = 0.5 + 3 u, theta = kSpiralTurns 2 pi u. The rotation is a negation, exact,
// so both arms share one float angle.
DDPM_HD void spiral_point(float u, bool second_arm, float& x, float& y) {
  const float r = kSpiralRadiusMin + (kSpiralRadiusMax - kSpiralRadiusMin) * u;
  const float theta = kSpiralTurns * 2.f * kPi * u;
  const float sign = second_arm ? -1.f : 1.f;
  x = sign * r * cosf(theta);
  y = sign * r * sinf(theta);
}

// One point of a built-in set's true distribution before noise, i.i.d.:
//   moons    a = pi U (U = curand_uniform_of(word 0), in (0, 1]), the outer curve when
//            curand_uniform_of(word 1) <= 1/2 (ddpm_eval's original draw, kept as it was);
//   circles  a = 2 pi uniform_01(word 0), the outer circle when word 1's top bit is 0;
//   swissroll      u = uniform_01(word 0);
//   8gaussians     centre uniform_int(word 0, 0, 7);
//   checkerboard   u1 = uniform_01(word 0), u2 = uniform_01(word 1), b = word 2's top bit;
//   spiral         u = uniform_01(word 0), the second arm when word 1's top bit is 1.
DDPM_HD void true_base_point(Dataset d, const PointRandom& r, float& x, float& y) {
  switch (d) {
    case Dataset::kMoons:
      moons_curve(curand_uniform_of(r.word[1]) <= 0.5f, kPi * curand_uniform_of(r.word[0]), x, y);
      return;
    case Dataset::kCircles:
      circles_curve((r.word[1] >> 31) == 0, 2.f * kPi * uniform_01(r.word[0]), x, y);
      return;
    case Dataset::kSwissRoll:
      swiss_roll_point(uniform_01(r.word[0]), x, y);
      return;
    case Dataset::kEightGaussians:
      eight_gaussians_centre(uniform_int(r.word[0], 0, 7), x, y);
      return;
    case Dataset::kCheckerboard:
      checkerboard_point(uniform_01(r.word[0]), uniform_01(r.word[1]), int(r.word[2] >> 31), x, y);
      return;
    case Dataset::kSpiral:
      spiral_point(uniform_01(r.word[0]), (r.word[1] >> 31) != 0, x, y);
      return;
    default:
      x = y = 0.f;  // kFile has no base point (batch_point reads the file)
  }
}

// Row i of an n-row training batch before noise: scikit-learn's grids for
// moons and circles, an independent draw (true_base_point) for the others.
DDPM_HD void batch_base_point(Dataset d, int i, int n, const PointRandom& r, float& x, float& y) {
  if (d == Dataset::kMoons) {
    moons_grid_point(i, n, x, y);
  } else if (d == Dataset::kCircles) {
    circles_grid_point(i, n, x, y);
  } else {
    true_base_point(d, r, x, y);
  }
}

// Row i of an n-row training batch before normalization: the base point plus
// s z (z = r.normal), or for kFile the point file_index(word 0) of the file.
DDPM_HD void batch_point(const DataSource& data, int i, int n, const PointRandom& r, float& x, float& y) {
  if (data.dataset == Dataset::kFile) {
    const int64_t j = file_index(r.word[0], data.count);
    x = data.points[2 * j];
    y = data.points[2 * j + 1];
    return;
  }
  batch_base_point(data.dataset, i, n, r, x, y);
  const float s = dataset_noise(data.dataset);
  x = x + s * r.normal[0];
  y = y + s * r.normal[1];
}

// ---- A user's points (host) ----

// The most points a file may hold: file_index reaches every index up to 2^32;
// int32 keeps the count clear of that everywhere.
inline constexpr int64_t kMaxFilePoints = 2147483647;

// Throws a one-line ddpm::Error naming `what` (the file) and the bad value
// unless xy holds between 2 and kMaxFilePoints interleaved (x, y) points, all
// finite, with a positive variance in each coordinate (each batch is divided
// by its standard deviation).
inline void check_points(const float* xy, int64_t coords, const std::string& what) {
  if (coords % 2 != 0) throw Error(what + ": odd number of coordinates (" + std::to_string(coords) + ")");
  const int64_t count = coords / 2;
  if (count < 2)
    throw Error(what + ": " + std::to_string(count) + " point" + (count == 1 ? "" : "s") +
                "; a data set needs at least 2");
  if (count > kMaxFilePoints)
    throw Error(what + ": " + std::to_string(count) + " points; at most " + std::to_string(kMaxFilePoints));
  for (int64_t i = 0; i < coords; ++i)
    if (!std::isfinite(xy[i]))
      throw Error(what + ": point " + std::to_string(i / 2) + " has a non-finite " + (i % 2 ? "y" : "x") +
                  " coordinate (" + std::to_string(xy[i]) + ")");
  for (int d = 0; d < 2; ++d) {
    bool spread = false;
    for (int64_t i = 1; i < count && !spread; ++i) spread = xy[2 * i + d] != xy[d];
    if (!spread)
      throw Error(what + ": every point has " + (d ? "y" : "x") + " = " + std::to_string(xy[d]) +
                  " (zero variance; the data cannot be normalized)");
  }
}

}  // namespace ddpm
