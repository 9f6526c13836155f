// The two-moons distribution.
//
// make_moons(n, noise) as scikit-learn defines it: the first n/2 points lie on
// the outer half circle (cos a, sin a), the remaining n - n/2 on the inner one
// (1 - cos a, 1 - sin a - 0.5), with a on an even grid linspace(0, pi, count),
// then Gaussian noise of std `noise` on both coordinates. (scikit-learn then
// shuffles the rows; every row here carries its own independent t and eps, so
// row order carries no information and is left as generated.)
//
// The true distribution behind it places a uniformly at random instead of on
// the grid; ddpm_eval draws its references that way (true_base_point in
// datasets.hpp, which holds the other data sets).
#pragma once

#include "ddpm/config.hpp"

namespace ddpm {

inline constexpr float kPi = 3.14159265358979323846f;

// Point on the curves before noise: outer half circle or inner one, at angle a in [0, pi].
DDPM_HD void moons_curve(bool outer, float a, float& x, float& y) {
  if (outer) {
    x = cosf(a);
    y = sinf(a);
  } else {
    x = 1.f - cosf(a);
    y = 1.f - sinf(a) - 0.5f;
  }
}

// Row i of make_moons(n) before noise (scikit-learn's grid).
DDPM_HD void moons_grid_point(int i, int n, float& x, float& y) {
  const int n_out = n / 2;
  const int n_in = n - n_out;
  const bool outer = i < n_out;
  const int j = outer ? i : i - n_out;
  const int count = outer ? n_out : n_in;
  const float a = count > 1 ? kPi * float(j) / float(count - 1) : 0.f;  // linspace(0, pi, count)[j]
  moons_curve(outer, a, x, y);
}

}  // namespace ddpm
