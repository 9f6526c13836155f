// A plain double-precision EpsNet, written independently of the CPU backend's
// fused kernels: the reference the backend (and later the CUDA kernels) are
// checked against.
#pragma once

#include <cmath>
#include <vector>

#include "ddpm/params.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::ref {

inline double silu(double z) { return z / (1 + std::exp(-z)); }

inline double embedding(double t, int k) {
  const int half = kEmbDim / 2;
  const int j = k % half;
  const double freq = std::exp(-j * std::log(10000.0) / (half - 1));
  return k < half ? std::sin(t * freq) : std::cos(t * freq);
}

// The x encoding's value k for coordinate x (--x-embedding sinusoidal): the
// argument rounded to float as math.hpp defines it, (s x) freq_j, the sin or
// cos in double. freq_j is exp rounded once (expf may be an ulp away), or
// freq[j] where a table is given (one a test planted in a kernel's parameters).
inline double x_embedding(float x, float scale, int k, const float* freq = nullptr) {
  const int half = kEmbDim / 2;
  const int j = k % half;
  const float f = freq != nullptr ? freq[j] : float(std::exp(-j * std::log(10000.0) / (half - 1)));
  const double arg = double((scale * x) * f);
  return k < half ? std::sin(arg) : std::cos(arg);
}

// The same with the argument in double throughout: a differentiable function of
// x, for tests that take finite differences (the float argument's rounding is not).
inline double x_embedding_smooth(double x, double scale, int k) {
  const int half = kEmbDim / 2;
  const int j = k % half;
  const double arg = scale * x * std::exp(-j * std::log(10000.0) / (half - 1));
  return k < half ? std::sin(arg) : std::cos(arg);
}

// eps_theta(x, t) in double at a real t; p is the flat buffer (any floating
// type) laid out as model.net(). With `smooth`, the x encoding's argument is in
// double too (x_embedding_smooth).
template <class P>
void eps_theta(const P* p, double x0, double x1, double t, double out[2], const ModelConfig& model = {},
               bool smooth = false) {
  const NetLayout& net = model.net();
  std::vector<double> a(net.in0());
  if (model.x_embedding == XEmbedding::kSinusoidal) {
    for (int k = 0; k < kEmbDim; ++k) {
      a[k] = smooth ? x_embedding_smooth(x0, model.x_scale, k) : x_embedding(float(x0), model.x_scale, k);
      a[kEmbDim + k] = smooth ? x_embedding_smooth(x1, model.x_scale, k) : x_embedding(float(x1), model.x_scale, k);
    }
  } else {
    a[0] = x0;
    a[1] = x1;
  }
  for (int k = 0; k < kEmbDim; ++k) a[net.x_inputs + k] = embedding(t, k);
  for (int l = 0; l < kNumLayers; ++l) {
    const LayerShape& L = net.layers[l];
    std::vector<double> z(L.out);
    for (int o = 0; o < L.out; ++o) {
      double s = p[L.bias + o];
      for (int k = 0; k < L.in; ++k) s += double(p[L.weight + std::size_t(o) * L.in + k]) * a[k];
      z[o] = l + 1 < kNumLayers ? silu(s) : s;
    }
    a = std::move(z);
  }
  out[0] = a[0];
  out[1] = a[1];
}

// The seed's loss: mean over the batch and both coordinates of (eps_theta(x_t, t) - eps)^2.
template <class P>
double loss(const Schedule& s, const P* p, const float* x0, const float* eps, const int* t, int n,
            const ModelConfig& model = {}) {
  double sum = 0;
  for (int r = 0; r < n; ++r) {
    const double sab = std::sqrt(double(s.alpha_bar[t[r]])), s1 = std::sqrt(1 - double(s.alpha_bar[t[r]]));
    double out[2];
    eps_theta(p, sab * x0[2 * r] + s1 * eps[2 * r], sab * x0[2 * r + 1] + s1 * eps[2 * r + 1], t[r], out, model);
    for (int d = 0; d < 2; ++d) sum += (out[d] - eps[2 * r + d]) * (out[d] - eps[2 * r + d]);
  }
  return sum / (2.0 * n);
}

}  // namespace ddpm::ref
