// The data sets' definitions in double, written from their documentation
// (scikit-learn's make_moons, make_circles, make_swiss_roll; FFJORD's
// 8gaussians and checkerboard; the two-armed spiral), independently of ddpm/datasets.hpp: the
// reference the generators, the training batches and ddpm_eval's draws are
// checked against.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>

#include "ddpm/datasets.hpp"

namespace ddpm::ref {

inline constexpr double kPiD = 3.14159265358979323846;

inline double floor_mod2(double c) { return c - 2 * std::floor(c / 2); }  // Python's c % 2

// The standard deviation of each set's Gaussian noise.
inline double want_noise(Dataset d) {
  switch (d) {
    case Dataset::kMoons: return 0.05;         // make_moons(noise=0.05)
    case Dataset::kCircles: return 0.05;       // make_circles(noise=0.05)
    case Dataset::kSwissRoll: return 1.0;      // FFJORD's make_swiss_roll(noise=1.0)
    case Dataset::kEightGaussians: return 0.5; // FFJORD's 8gaussians
    case Dataset::kSpiral: return 0.08;
    default: return 0.0;
  }
}

// The spiral's arm `arm` (0 or 1) at radius r: theta = 1.5 turns * 2 pi (r - 0.5) / 3, plus pi on arm 1.
inline void spiral_arm(int arm, double r, double& x, double& y) {
  const double theta = 1.5 * 2 * kPiD * (r - 0.5) / 3.0 + kPiD * arm;
  x = r * std::cos(theta);
  y = r * std::sin(theta);
}

inline void moons_curve(bool outer, double a, double& x, double& y) {
  x = outer ? std::cos(a) : 1 - std::cos(a);
  y = outer ? std::sin(a) : 0.5 - std::sin(a);
}

// An i.i.d. point's base (before noise) from the words w, as each set defines its draw.
inline void want_base_point(Dataset d, const uint32_t w[3], double& x, double& y) {
  const double u0 = double(w[0] >> 9) / 8388608.0, u1 = double(w[1] >> 9) / 8388608.0;  // k / 2^23
  switch (d) {
    case Dataset::kMoons:  // ddpm_eval's draw: a = pi U, the outer curve when U' <= 1/2 (cuRAND's uniforms)
      moons_curve(curand_uniform_of(w[1]) <= 0.5f, kPiD * double(curand_uniform_of(w[0])), x, y);
      return;
    case Dataset::kCircles: {  // radius 1 or 0.5 (word 1's top bit), angle 2 pi u
      const double r = (w[1] >> 31) == 0 ? 1.0 : 0.5, a = 2 * kPiD * u0;
      x = r * std::cos(a);
      y = r * std::sin(a);
      return;
    }
    case Dataset::kSwissRoll: {  // make_swiss_roll: t = 1.5 pi (1 + 2 u), (x, z) = (t cos t, t sin t)
      const double t = 1.5 * kPiD * (1 + 2 * u0);
      x = t * std::cos(t);
      y = t * std::sin(t);
      return;
    }
    case Dataset::kEightGaussians: {  // centre k = floor(8 w / 2^32) at radius 4, angle k pi / 4
      const double k = double((uint64_t(w[0]) * 8) >> 32);
      x = 4 * std::cos(k * kPiD / 4);
      y = 4 * std::sin(k * kPiD / 4);
      return;
    }
    case Dataset::kCheckerboard: {  // FFJORD: x1 = 4 u - 2, x2 = u' - 2 b + floor(x1) % 2, times 2
      const double x1 = 4 * u0 - 2, x2 = u1 - 2 * double(w[2] >> 31) + floor_mod2(std::floor(x1));
      x = 2 * x1;
      y = 2 * x2;
      return;
    }
    case Dataset::kSpiral:  // r = 0.5 + 3 u, the arm word 1's top bit
      spiral_arm(int(w[1] >> 31), 0.5 + 3 * u0, x, y);
      return;
    case Dataset::kFile:
      break;
  }
  x = y = NAN;
}

// Row i of an n-row training batch before noise: scikit-learn's grids for moons
// (linspace(0, pi, count)) and circles (linspace(0, 2 pi, count, endpoint=False)),
// the first n/2 rows on the outer curve; the i.i.d. draw for the other sets.
inline void want_batch_base_point(Dataset d, int i, int n, const uint32_t w[3], double& x, double& y) {
  if (d != Dataset::kMoons && d != Dataset::kCircles) return want_base_point(d, w, x, y);
  const int n_out = n / 2, n_in = n - n_out;
  const bool outer = i < n_out;
  const int j = outer ? i : i - n_out, count = outer ? n_out : n_in;
  if (d == Dataset::kMoons) {
    moons_curve(outer, count > 1 ? kPiD * j / (count - 1) : 0.0, x, y);
  } else {
    const double r = outer ? 1.0 : 0.5, a = 2 * kPiD * j / count;
    x = r * std::cos(a);
    y = r * std::sin(a);
  }
}

// Population mean and variance of a built-in set (noise included), by
// numerical integration over its definition: Simpson's rule over the angle or
// t or the radius, the sum over the 8 centres, the 8 occupied cells of the checkerboard.
struct Moments2 {
  double mean[2], var[2];
};

// Simpson's rule for the mean of f over [a, b] with `intervals` (even) pieces.
inline double simpson_mean(const std::function<double(double)>& f, double a, double b, int intervals = 20000) {
  const double h = (b - a) / intervals;
  double s = f(a) + f(b);
  for (int k = 1; k < intervals; ++k) s += (k % 2 ? 4 : 2) * f(a + k * h);
  return s * h / 3 / (b - a);
}

inline Moments2 want_population_moments(Dataset d) {
  double ex = 0, ey = 0, exx = 0, eyy = 0;
  auto add_curves = [&](auto point, double a, double b) {  // two curves with probability 1/2 each
    for (bool outer : {true, false}) {
      auto coord = [&](int c, int power) {
        return [=](double t) {
          double x, y;
          point(outer, t, x, y);
          return std::pow(c == 0 ? x : y, power);
        };
      };
      ex += 0.5 * simpson_mean(coord(0, 1), a, b);
      ey += 0.5 * simpson_mean(coord(1, 1), a, b);
      exx += 0.5 * simpson_mean(coord(0, 2), a, b);
      eyy += 0.5 * simpson_mean(coord(1, 2), a, b);
    }
  };
  switch (d) {
    case Dataset::kMoons:
      add_curves([](bool outer, double a, double& x, double& y) { moons_curve(outer, a, x, y); }, 0, kPiD);
      break;
    case Dataset::kCircles:
      add_curves(
          [](bool outer, double a, double& x, double& y) {
            x = (outer ? 1.0 : 0.5) * std::cos(a);
            y = (outer ? 1.0 : 0.5) * std::sin(a);
          },
          0, 2 * kPiD);
      break;
    case Dataset::kSwissRoll:  // both "curves" the same spiral
      add_curves(
          [](bool, double t, double& x, double& y) {
            x = t * std::cos(t);
            y = t * std::sin(t);
          },
          1.5 * kPiD, 4.5 * kPiD);
      break;
    case Dataset::kEightGaussians:
      for (int k = 0; k < 8; ++k) {
        const double x = 4 * std::cos(k * kPiD / 4), y = 4 * std::sin(k * kPiD / 4);
        ex += x / 8;
        ey += y / 8;
        exx += x * x / 8;
        eyy += y * y / 8;
      }
      break;
    case Dataset::kSpiral:  // the two arms, r uniform on [0.5, 3.5]
      add_curves([](bool outer, double r, double& x, double& y) { spiral_arm(outer ? 0 : 1, r, x, y); }, 0.5, 3.5);
      break;
    case Dataset::kCheckerboard:  // uniform on cells [2c, 2c + 2) x [2r, 2r + 2), c + r even, c, r in -2..1
      for (int c = -2; c < 2; ++c)
        for (int r = -2; r < 2; ++r) {
          if ((c + r + 4) % 2 != 0) continue;
          const double x0 = 2.0 * c, y0 = 2.0 * r;  // E over [z0, z0 + 2): z0 + 1; E z^2 = z0^2 + 2 z0 + 4/3
          ex += (x0 + 1) / 8;
          ey += (y0 + 1) / 8;
          exx += (x0 * x0 + 2 * x0 + 4.0 / 3) / 8;
          eyy += (y0 * y0 + 2 * y0 + 4.0 / 3) / 8;
        }
      break;
    case Dataset::kFile:
      return {{NAN, NAN}, {NAN, NAN}};
  }
  const double s2 = want_noise(d) * want_noise(d);
  return {{ex, ey}, {exx - ex * ex + s2, eyy - ey * ey + s2}};
}

}  // namespace ddpm::ref
