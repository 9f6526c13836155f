#include "host/eval/metrics.hpp"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "ddpm/datasets.hpp"

namespace ddpm::eval {
namespace {

constexpr double kPiD = 3.14159265358979323846;
constexpr std::size_t kNumBandwidths = kBandwidths.size();
using BandwidthSums = std::array<double, kNumBandwidths>;

int64_t count_points(const std::vector<float>& xy) { return int64_t(xy.size() / 2); }

// ---------------------------------------------------------------- random subsets

// Subsets are drawn with Philox under a key derived from the user's seed and
// the subset's purpose, independent of the reference and floor streams.
enum class SubsetTag : uint64_t { kMmdSamples = 1, kMmdReference = 2, kPrSamples = 3, kPrReference = 4 };

uint64_t mix64(uint64_t z) {  // SplitMix64's finalizer
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// At most m points of xy, chosen uniformly without replacement (all of them, in order, when n <= m).
std::vector<float> random_subset(const std::vector<float>& xy, int64_t m, uint64_t seed, SubsetTag tag) {
  const int64_t n = count_points(xy);
  if (n <= m) return xy;
  Philox st;
  curand_init(mix64(seed ^ mix64(uint64_t(tag))), 0, 0, &st);
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  std::vector<float> out(2 * std::size_t(m));
  for (int64_t i = 0; i < m; ++i) {  // partial Fisher-Yates
    const uint64_t hi = curand(&st);
    const uint64_t r = (hi << 32) | curand(&st);
    const int64_t j = i + int64_t((static_cast<unsigned __int128>(r) * uint64_t(n - i)) >> 64);
    std::swap(idx[i], idx[j]);
    out[2 * i] = xy[2 * idx[i]];
    out[2 * i + 1] = xy[2 * idx[i] + 1];
  }
  return out;
}

// ---------------------------------------------------------------- sliced W1

// Order-preserving map of a float to an unsigned key (negative values flip all bits).
uint32_t float_key(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
float key_float(uint32_t k) { return std::bit_cast<float>((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }

// LSD radix sort of keys, 11-bit digits (3 passes); `tmp` is scratch of the same size.
void radix_sort(std::vector<uint32_t>& keys, std::vector<uint32_t>& tmp) {
  constexpr int kBits = 11, kBuckets = 1 << kBits;
  tmp.resize(keys.size());
  uint32_t* src = keys.data();
  uint32_t* dst = tmp.data();
  for (int shift = 0; shift < 32; shift += kBits) {
    std::array<std::size_t, kBuckets + 1> count{};
    for (std::size_t i = 0; i < keys.size(); ++i) ++count[((src[i] >> shift) & (kBuckets - 1)) + 1];
    for (int b = 0; b < kBuckets; ++b) count[b + 1] += count[b];
    for (std::size_t i = 0; i < keys.size(); ++i) dst[count[(src[i] >> shift) & (kBuckets - 1)]++] = src[i];
    std::swap(src, dst);
  }
  if (src != keys.data()) std::copy(src, src + keys.size(), keys.data());  // 3 passes: result in tmp
}

// The set's projections on (c, s), sorted, as floats in `out`.
void sorted_projection(const std::vector<float>& xy, float c, float s, std::vector<uint32_t>& keys,
                       std::vector<uint32_t>& tmp, std::vector<float>& out) {
  const std::size_t n = xy.size() / 2;
  keys.resize(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = float_key(xy[2 * i] * c + xy[2 * i + 1] * s);
  radix_sort(keys, tmp);
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = key_float(keys[i]);
}

// W1 between two empirical 1-D distributions given sorted: the integral over
// t in (0, 1) of |Qa(t) - Qb(t)|, Qa and Qb the quantile functions.
double w1_sorted(const std::vector<float>& a, const std::vector<float>& b) {
  const int64_t n = int64_t(a.size()), m = int64_t(b.size());
  double sum = 0;
  if (n == m) {
    for (int64_t i = 0; i < n; ++i) sum += std::fabs(double(a[i]) - double(b[i]));
    return sum / double(n);
  }
  // Quantile breakpoints in units of 1 / (n m): a's i-th step ends at (i + 1) m, b's j-th at (j + 1) n.
  int64_t i = 0, j = 0, t = 0;
  while (i < n && j < m) {
    const int64_t ea = (i + 1) * m, eb = (j + 1) * n;
    const int64_t e = std::min(ea, eb);
    sum += double(e - t) * std::fabs(double(a[i]) - double(b[j]));
    t = e;
    if (ea == e) ++i;
    if (eb == e) ++j;
  }
  return sum / (double(n) * double(m));
}

// Sliced W1 of every set in `sets` against `reference`; the reference is projected and sorted once.
// Per-direction values are summed in direction order, so the result does not depend on threading.
using SetList = std::vector<const std::vector<float>*>;

std::vector<double> sliced_w1_many(const std::vector<float>& reference, const SetList& sets) {
  const std::size_t ns = sets.size();
  std::vector<double> per_direction(std::size_t(kDirections) * ns);
#pragma omp parallel
  {
    std::vector<uint32_t> keys, tmp;
    std::vector<float> ref_sorted, set_sorted;
#pragma omp for schedule(dynamic, 4)
    for (int k = 0; k < kDirections; ++k) {
      const double theta = kPiD * double(k) / double(kDirections);
      const float c = float(std::cos(theta)), s = float(std::sin(theta));
      sorted_projection(reference, c, s, keys, tmp, ref_sorted);
      for (std::size_t q = 0; q < ns; ++q) {
        sorted_projection(*sets[q], c, s, keys, tmp, set_sorted);
        per_direction[std::size_t(k) * ns + q] = w1_sorted(set_sorted, ref_sorted);
      }
    }
  }
  std::vector<double> total(ns, 0.0);
  for (int k = 0; k < kDirections; ++k)
    for (std::size_t q = 0; q < ns; ++q) total[q] += per_direction[std::size_t(k) * ns + q];
  for (double& t : total) t /= double(kDirections);
  return total;
}

// ---------------------------------------------------------------- MMD^2

// exp(x) for x <= 0, in four lanes (AVX2 + FMA, the project's baseline) and
// in one with exactly the same operations: inputs below -700 are clamped
// (exp(-700) ~ 1e-304 changes no sum), then x = k ln2 + r with |r| <= ln2 / 2
// and a degree-12 Taylor polynomial for e^r (relative error below 1e-15).
constexpr double kInvLn2 = 1.4426950408889634;
constexpr double kLn2Hi = 0.6931471803691238, kLn2Lo = 1.9082149292705877e-10;
constexpr double kExpShift = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer in the low bits
constexpr double kExpMin = -700.0;
constexpr std::array<double, 13> kExpPoly = {  // 1/12!, 1/11!, ..., 1/1!, 1/0!
    1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0,
    1.0 / 120.0,       1.0 / 24.0,       1.0 / 6.0,       0.5,             1.0,            1.0};
constexpr uint64_t kExpBits = std::bit_cast<uint64_t>(kExpShift) - 1023u;

inline __m256d exp_nonpositive(__m256d x) {
  x = _mm256_max_pd(x, _mm256_set1_pd(kExpMin));
  const __m256d shift = _mm256_set1_pd(kExpShift);
  const __m256d kd = _mm256_fmadd_pd(x, _mm256_set1_pd(kInvLn2), shift);
  const __m256d k = _mm256_sub_pd(kd, shift);
  const __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(kLn2Lo), _mm256_fnmadd_pd(k, _mm256_set1_pd(kLn2Hi), x));
  __m256d p = _mm256_set1_pd(kExpPoly[0]);
  for (std::size_t c = 1; c < kExpPoly.size(); ++c) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kExpPoly[c]));
  // 2^k: k's two's complement sits in kd's low bits; add the exponent bias and move it into place.
  const __m256i scale =
      _mm256_slli_epi64(_mm256_sub_epi64(_mm256_castpd_si256(kd), _mm256_set1_epi64x(int64_t(kExpBits))), 52);
  return _mm256_mul_pd(p, _mm256_castsi256_pd(scale));
}

inline double exp_nonpositive(double x) {
  x = std::max(x, kExpMin);
  const double kd = std::fma(x, kInvLn2, kExpShift);
  const double k = kd - kExpShift;
  const double r = std::fma(-k, kLn2Lo, std::fma(-k, kLn2Hi, x));
  double p = kExpPoly[0];
  for (std::size_t c = 1; c < kExpPoly.size(); ++c) p = std::fma(p, r, kExpPoly[c]);
  return p * std::bit_cast<double>((std::bit_cast<uint64_t>(kd) - kExpBits) << 52);
}

// Split coordinates, in double.
struct Soa {
  std::vector<double> x, y;
  int64_t n = 0;
};
Soa to_soa(const std::vector<float>& xy) {
  Soa s;
  s.n = count_points(xy);
  s.x.resize(std::size_t(s.n));
  s.y.resize(std::size_t(s.n));
  for (int64_t i = 0; i < s.n; ++i) {
    s.x[i] = xy[2 * i];
    s.y[i] = xy[2 * i + 1];
  }
  return s;
}

// Sum over i in a, j in b (j > i when `self`) of each bandwidth's kernel. Row sums are
// added in row order, so the result does not depend on threading.
//
// Two exponentials per pair: with e_h = exp(-d2 / (2 h^2)), e_0.5 = e_1^4 and
// e_0.1 = e_0.2^4, e_0.05 = e_0.1^4. Bases below 1e-70 (resp. 1e-19) are set to
// 0 first, so that the powers never reach the slow subnormal range; what is
// dropped is below 1e-280.
BandwidthSums kernel_sums(const Soa& a, const Soa& b, bool self) {
  static_assert(kBandwidths[0] == 0.05 && kBandwidths[1] == 0.1 && kBandwidths[2] == 0.2 &&
                    kBandwidths[3] == 0.5 && kBandwidths[4] == 1.0,
                "kernel_sums derives the bandwidths from two exponentials");
  constexpr double kC1 = -0.5, kC02 = -12.5, kFloor1 = 1e-70, kFloor02 = 1e-19;
  std::vector<BandwidthSums> rows(std::size_t(a.n));
  const double* bx = b.x.data();
  const double* by = b.y.data();
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < a.n; ++i) {
    const double xi = a.x[i], yi = a.y[i];
    int64_t j = self ? i + 1 : 0;
    // Four lanes at a time ...
    const __m256d vx = _mm256_set1_pd(xi), vy = _mm256_set1_pd(yi);
    __m256d v[5] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd()};
    for (; j + 4 <= b.n; j += 4) {
      const __m256d dx = _mm256_sub_pd(vx, _mm256_loadu_pd(bx + j));
      const __m256d dy = _mm256_sub_pd(vy, _mm256_loadu_pd(by + j));
      const __m256d d2 = _mm256_fmadd_pd(dx, dx, _mm256_mul_pd(dy, dy));
      __m256d e1 = exp_nonpositive(_mm256_mul_pd(d2, _mm256_set1_pd(kC1)));
      __m256d e02 = exp_nonpositive(_mm256_mul_pd(d2, _mm256_set1_pd(kC02)));
      v[4] = _mm256_add_pd(v[4], e1);
      v[2] = _mm256_add_pd(v[2], e02);
      e1 = _mm256_and_pd(e1, _mm256_cmp_pd(e1, _mm256_set1_pd(kFloor1), _CMP_GE_OQ));
      e02 = _mm256_and_pd(e02, _mm256_cmp_pd(e02, _mm256_set1_pd(kFloor02), _CMP_GE_OQ));
      const __m256d e1_2 = _mm256_mul_pd(e1, e1), e02_2 = _mm256_mul_pd(e02, e02);
      const __m256d e01 = _mm256_mul_pd(e02_2, e02_2);
      const __m256d e01_2 = _mm256_mul_pd(e01, e01);
      v[3] = _mm256_add_pd(v[3], _mm256_mul_pd(e1_2, e1_2));
      v[1] = _mm256_add_pd(v[1], e01);
      v[0] = _mm256_add_pd(v[0], _mm256_mul_pd(e01_2, e01_2));
    }
    BandwidthSums row{};
    for (std::size_t h = 0; h < kNumBandwidths; ++h) {
      alignas(32) double lane[4];
      _mm256_store_pd(lane, v[h]);
      row[h] = (lane[0] + lane[1]) + (lane[2] + lane[3]);
    }
    // ... then the rest one by one, with the same operations.
    for (; j < b.n; ++j) {
      const double dx = xi - bx[j], dy = yi - by[j];
      const double d2 = std::fma(dx, dx, dy * dy);
      double e1 = exp_nonpositive(d2 * kC1);
      double e02 = exp_nonpositive(d2 * kC02);
      row[4] += e1;
      row[2] += e02;
      e1 = e1 >= kFloor1 ? e1 : 0.0;
      e02 = e02 >= kFloor02 ? e02 : 0.0;
      const double e1_2 = e1 * e1, e02_2 = e02 * e02;
      const double e01 = e02_2 * e02_2;
      const double e01_2 = e01 * e01;
      row[3] += e1_2 * e1_2;
      row[1] += e01;
      row[0] += e01_2 * e01_2;
    }
    rows[i] = row;
  }
  BandwidthSums total{};
  for (const BandwidthSums& r : rows)
    for (std::size_t h = 0; h < kNumBandwidths; ++h) total[h] += r[h];
  if (self)
    for (double& t : total) t *= 2;  // both orders of each pair
  return total;
}

BandwidthSums mmd2_from_sums(const BandwidthSums& aa, int64_t na, const BandwidthSums& bb, int64_t nb,
                             const BandwidthSums& ab) {
  BandwidthSums out;
  for (std::size_t h = 0; h < kNumBandwidths; ++h)
    out[h] = aa[h] / (double(na) * double(na - 1)) + bb[h] / (double(nb) * double(nb - 1)) -
             2.0 * ab[h] / (double(na) * double(nb));
  return out;
}

// ---------------------------------------------------------------- precision / recall

// A uniform grid over the points' robust bounding box (0.1% .. 99.9% quantiles
// per axis, so that a few outliers do not coarsen it); points outside fall
// into the border cells. About two points per cell. Neighbour searches stay
// exact: a cell k rings away from a query's cell lies at least (k - 1) cell
// widths from the query, clamped or not.
struct Grid {
  double x0 = 0, y0 = 0, cell = 1, inv_cell = 1;
  int gx = 1, gy = 1;
  std::vector<int> start, items;  // CSR: items of cell c are items[start[c] .. start[c + 1])

  int col(double x) const { return index((x - x0) * inv_cell, gx); }
  int row(double y) const { return index((y - y0) * inv_cell, gy); }
  static int index(double t, int count) {  // clamped in double: far outliers must not overflow int
    return int(std::clamp(std::floor(t), 0.0, double(count - 1)));
  }
};

double quantile(std::vector<double> v, double q) {
  const std::size_t k = std::min(v.size() - 1, std::size_t(q * double(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
  return v[k];
}

Grid make_grid(const Soa& p) {
  Grid g;
  const double lo_x = quantile(p.x, 0.001), hi_x = quantile(p.x, 0.999);
  const double lo_y = quantile(p.y, 0.001), hi_y = quantile(p.y, 0.999);
  double w = hi_x - lo_x, h = hi_y - lo_y;
  const double span = std::max({w, h, 1e-6});
  w = std::max(w, span * 1e-3);
  h = std::max(h, span * 1e-3);
  const double cells = std::max(1.0, double(p.n) / 2.0);
  g.cell = std::sqrt(w * h / cells);
  g.inv_cell = 1.0 / g.cell;
  g.gx = std::clamp(int(std::ceil(w * g.inv_cell)), 1, 1 << 14);
  g.gy = std::clamp(int(std::ceil(h * g.inv_cell)), 1, 1 << 14);
  g.x0 = lo_x;
  g.y0 = lo_y;
  const std::size_t nc = std::size_t(g.gx) * std::size_t(g.gy);
  std::vector<int> cell_of(std::size_t(p.n));
  g.start.assign(nc + 1, 0);
  for (int64_t i = 0; i < p.n; ++i) {
    cell_of[i] = g.row(p.y[i]) * g.gx + g.col(p.x[i]);
    ++g.start[cell_of[i] + 1];
  }
  for (std::size_t c = 0; c < nc; ++c) g.start[c + 1] += g.start[c];
  g.items.resize(std::size_t(p.n));
  std::vector<int> fill(g.start.begin(), g.start.end() - 1);
  for (int64_t i = 0; i < p.n; ++i) g.items[fill[cell_of[i]]++] = int(i);
  return g;
}

// Squared distance from each point to its kNearest-th nearest neighbour in the same set (itself excluded).
std::vector<double> knn_radii2(const Soa& p, const Grid& g) {
  std::vector<double> radius2(std::size_t(p.n));
  const int max_ring = std::max(g.gx, g.gy);
#pragma omp parallel for schedule(dynamic, 256)
  for (int64_t i = 0; i < p.n; ++i) {
    const double xi = p.x[i], yi = p.y[i];
    const int ci = g.col(xi), ri = g.row(yi);
    std::array<double, kNearest> best;
    best.fill(std::numeric_limits<double>::infinity());  // ascending squared distances
    auto visit = [&](int c, int r) {
      const int cell = r * g.gx + c;
      for (int t = g.start[cell]; t < g.start[cell + 1]; ++t) {
        const int j = g.items[t];
        if (j == i) continue;
        const double dx = p.x[j] - xi, dy = p.y[j] - yi;
        double d2 = dx * dx + dy * dy;
        if (d2 >= best[kNearest - 1]) continue;
        int k = kNearest - 1;
        for (; k > 0 && best[k - 1] > d2; --k) best[k] = best[k - 1];
        best[k] = d2;
      }
    };
    for (int ring = 0; ring <= max_ring; ++ring) {
      const int c0 = ci - ring, c1 = ci + ring, r0 = ri - ring, r1 = ri + ring;
      for (int r = std::max(r0, 0); r <= std::min(r1, g.gy - 1); ++r) {
        if (r == r0 || r == r1) {
          for (int c = std::max(c0, 0); c <= std::min(c1, g.gx - 1); ++c) visit(c, r);
        } else {
          if (c0 >= 0) visit(c0, r);
          if (c1 < g.gx && c1 != c0) visit(c1, r);
        }
      }
      const double reach = double(ring) * g.cell;  // every point not yet visited is at least this far
      if (best[kNearest - 1] <= reach * reach) break;
    }
    radius2[i] = best[kNearest - 1];
  }
  return radius2;
}

// Balls (centers p, radii) registered in every grid cell their bounding square
// touches; a ball spanning more than kMaxCellsPerBall cells goes on a list that
// every query checks.
struct BallIndex {
  static constexpr int64_t kMaxCellsPerBall = 64;
  const Soa* p;
  std::vector<double> r2;
  Grid g;  // cell geometry of the centers' grid; start/items list balls per cell
  std::vector<int> large;

  BallIndex(const Soa& centers, const Grid& grid, const std::vector<double>& radius2)
      : p(&centers), r2(radius2), g(grid) {
    const std::size_t nc = std::size_t(g.gx) * std::size_t(g.gy);
    std::vector<std::array<int, 4>> range(r2.size());  // c0, c1, r0, r1
    std::vector<int> count(nc + 1, 0);
    for (std::size_t i = 0; i < r2.size(); ++i) {
      const double x = centers.x[i], y = centers.y[i], r = std::sqrt(r2[i]) * (1 + 1e-12);  // covers every d2 <= r2
      range[i] = {g.col(x - r), g.col(x + r), g.row(y - r), g.row(y + r)};
      const auto& q = range[i];
      if (int64_t(q[1] - q[0] + 1) * int64_t(q[3] - q[2] + 1) > kMaxCellsPerBall) {
        large.push_back(int(i));
        continue;
      }
      for (int rr = q[2]; rr <= q[3]; ++rr)
        for (int c = q[0]; c <= q[1]; ++c) ++count[std::size_t(rr) * g.gx + c + 1];
    }
    for (std::size_t c = 0; c < nc; ++c) count[c + 1] += count[c];
    g.start = count;
    g.items.assign(std::size_t(count[nc]), 0);
    std::vector<int> fill(count.begin(), count.end() - 1);
    for (std::size_t i = 0; i < r2.size(); ++i) {
      const auto& q = range[i];
      if (int64_t(q[1] - q[0] + 1) * int64_t(q[3] - q[2] + 1) > kMaxCellsPerBall) continue;
      for (int rr = q[2]; rr <= q[3]; ++rr)
        for (int c = q[0]; c <= q[1]; ++c) g.items[fill[std::size_t(rr) * g.gx + c]++] = int(i);
    }
  }

  bool covers(double x, double y) const {
    auto inside = [&](int j) {
      const double dx = p->x[j] - x, dy = p->y[j] - y;
      return dx * dx + dy * dy <= r2[j];
    };
    const int cell = g.row(y) * g.gx + g.col(x);
    for (int t = g.start[cell]; t < g.start[cell + 1]; ++t)
      if (inside(g.items[t])) return true;
    for (int j : large)
      if (inside(j)) return true;
    return false;
  }

  // Fraction of the query points inside at least one ball.
  double coverage(const Soa& q) const {
    int64_t hits = 0;
#pragma omp parallel for reduction(+ : hits) schedule(static)
    for (int64_t i = 0; i < q.n; ++i) hits += covers(q.x[i], q.y[i]) ? 1 : 0;
    return double(hits) / double(q.n);
  }
};

struct Manifold {
  Soa points;
  Grid grid;
  std::vector<double> radius2;
  explicit Manifold(const std::vector<float>& xy) : points(to_soa(xy)), grid(make_grid(points)) {
    radius2 = knn_radii2(points, grid);
  }
};

// ---------------------------------------------------------------- all metrics

void require_points(const std::vector<float>& xy, int64_t min_n, const char* what) {
  if (xy.size() % 2 != 0) throw Error(std::string(what) + ": odd number of coordinates");
  if (count_points(xy) < min_n)
    throw Error(std::string(what) + ": " + std::to_string(count_points(xy)) + " points, need at least " +
                std::to_string(min_n));
}

std::vector<Metrics> compare_many(const std::vector<float>& reference, const SetList& sets, uint64_t seed) {
  require_points(reference, kNearest + 1, "reference");
  for (const auto* s : sets) require_points(*s, kNearest + 1, "samples");
  std::vector<Metrics> out(sets.size());
  const std::vector<double> w1 = sliced_w1_many(reference, sets);

  const Soa ref_mmd = to_soa(random_subset(reference, kMmdPoints, seed, SubsetTag::kMmdReference));
  const BandwidthSums ref_self = kernel_sums(ref_mmd, ref_mmd, true);
  const Manifold ref_pr(random_subset(reference, kPrPoints, seed, SubsetTag::kPrReference));
  const BallIndex ref_balls(ref_pr.points, ref_pr.grid, ref_pr.radius2);

  for (std::size_t q = 0; q < sets.size(); ++q) {
    const std::vector<float>& set = *sets[q];
    Metrics& m = out[q];
    m.n = count_points(set);
    m.sliced_w1 = w1[q];

    const Soa s_mmd = to_soa(random_subset(set, kMmdPoints, seed, SubsetTag::kMmdSamples));
    m.mmd2_per_bandwidth = mmd2_from_sums(kernel_sums(s_mmd, s_mmd, true), s_mmd.n, ref_self, ref_mmd.n,
                                          kernel_sums(s_mmd, ref_mmd, false));
    m.mmd2 = 0;
    for (double v : m.mmd2_per_bandwidth) m.mmd2 += v;

    const Manifold s_pr(random_subset(set, kPrPoints, seed, SubsetTag::kPrSamples));
    m.precision = ref_balls.coverage(s_pr.points);
    m.recall = BallIndex(s_pr.points, s_pr.grid, s_pr.radius2).coverage(ref_pr.points);
  }
  return out;
}

std::string format_value(double v, bool scientific) {
  if (std::isnan(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, scientific ? "%.3e" : "%.4f", v);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------- public API

Moments true_moments(Dataset d) {
  const double s = dataset_noise(d);
  const double s2 = s * s;
  switch (d) {
    case Dataset::kMoons:
      return {{0.5, 0.25}, {std::sqrt(0.75 + s2), std::sqrt(0.5625 - 1.0 / kPiD + s2)}};
    case Dataset::kCircles: {
      const double f = kCirclesFactor;
      const double sd = std::sqrt((1.0 + f * f) / 4.0 + s2);
      return {{0.0, 0.0}, {sd, sd}};
    }
    case Dataset::kSwissRoll: {
      const double a = kPiD * kSwissRollTBegin, b = kPiD * kSwissRollTEnd, len = b - a;
      auto g = [](double t) {  // an antiderivative of t^2 cos 2t
        return 0.5 * t * t * std::sin(2 * t) + 0.5 * t * std::cos(2 * t) - 0.25 * std::sin(2 * t);
      };
      const double mx = (b * std::sin(b) + std::cos(b) - a * std::sin(a) - std::cos(a)) / len;
      const double my = (std::sin(b) - b * std::cos(b) - std::sin(a) + a * std::cos(a)) / len;
      const double cube = (b * b * b - a * a * a) / 3.0, osc = g(b) - g(a);
      const double ex2 = (cube + osc) / (2.0 * len), ey2 = (cube - osc) / (2.0 * len);
      return {{mx, my}, {std::sqrt(ex2 - mx * mx + s2), std::sqrt(ey2 - my * my + s2)}};
    }
    case Dataset::kEightGaussians: {
      const double r = kEightGaussiansRadius;
      const double sd = std::sqrt(r * r / 2.0 + s2);
      return {{0.0, 0.0}, {sd, sd}};
    }
    case Dataset::kCheckerboard: {
      const double side = double(kCheckerboardCell) * kCheckerboardCells;  // x, y ~ U[-side/2, side/2)
      const double sd = side / std::sqrt(12.0);
      return {{0.0, 0.0}, {sd, sd}};
    }
    case Dataset::kSpiral: {
      // r ~ U[a, b], theta = k (r - a) / 2 with k = 2 turns 2 pi / (b - a); the arms
      // are each other's negation, so the mean is 0 and E x^2 = E r^2 cos^2 theta
      // = (E r^2 + E r^2 cos 2 theta) / 2 (y: minus); E r^2 cos 2 theta = [H]_a^b / L,
      // H(r) = r^2 sin(k (r - a)) / k + 2 r cos(k (r - a)) / k^2 - 2 sin(k (r - a)) / k^3.
      const double a = kSpiralRadiusMin, b = kSpiralRadiusMax, len = b - a;
      const double k = 2.0 * double(kSpiralTurns) * 2.0 * kPiD / len;
      auto h = [&](double r) {
        const double p = k * (r - a);
        return r * r * std::sin(p) / k + 2 * r * std::cos(p) / (k * k) - 2 * std::sin(p) / (k * k * k);
      };
      const double er2 = (b * b * b - a * a * a) / (3.0 * len), osc = (h(b) - h(a)) / len;
      return {{0.0, 0.0}, {std::sqrt((er2 + osc) / 2 + s2), std::sqrt((er2 - osc) / 2 + s2)}};
    }
    case Dataset::kFile:
      break;
  }
  throw Error(std::string("true_moments: no closed form for ") + dataset_name(d));
}

Moments true_moons_moments() { return true_moments(Dataset::kMoons); }

Moments points_moments(const float* xy, int64_t count) {
  if (count < 1) throw Error("points_moments: no points");
  Moments m;
  for (int d = 0; d < 2; ++d) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < count; ++i) sum += xy[2 * i + d];
    m.mean[d] = sum / double(count);
    for (int64_t i = 0; i < count; ++i) {
      const double c = xy[2 * i + d] - m.mean[d];
      sq += c * c;
    }
    m.std[d] = std::sqrt(sq / double(count));
  }
  return m;
}

std::vector<float> true_draw(Dataset d, int64_t n, uint64_t seed, Stream stream) {
  if (n < 0) throw Error("true_draw: negative point count " + std::to_string(n));
  const Moments mo = true_moments(d);
  const double s = dataset_noise(d);
  const double inv_std[2] = {1.0 / mo.std[0], 1.0 / mo.std[1]};
  std::vector<float> out(2 * std::size_t(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    Philox st;
    philox_init(&st, seed, stream, uint64_t(i));
    PointRandom r;
    r.word[0] = curand(&st);
    r.word[1] = curand(&st);
    const float2 z = curand_normal2(&st);
    r.normal[0] = z.x;
    r.normal[1] = z.y;
    r.word[2] = curand(&st);
    float x, y;
    true_base_point(d, r, x, y);
    out[2 * i] = float((double(x) + s * r.normal[0] - mo.mean[0]) * inv_std[0]);
    out[2 * i + 1] = float((double(y) + s * r.normal[1] - mo.mean[1]) * inv_std[1]);
  }
  return out;
}

std::vector<float> true_moons(int64_t n, uint64_t seed, Stream stream) {
  return true_draw(Dataset::kMoons, n, seed, stream);
}

double sliced_w1(const std::vector<float>& a, const std::vector<float>& b) {
  require_points(a, 1, "sliced_w1");
  require_points(b, 1, "sliced_w1");
  return sliced_w1_many(b, {&a})[0];
}

std::array<double, kBandwidths.size()> mmd2(const std::vector<float>& a, const std::vector<float>& b,
                                            uint64_t seed) {
  require_points(a, 2, "mmd2");
  require_points(b, 2, "mmd2");
  const Soa sa = to_soa(random_subset(a, kMmdPoints, seed, SubsetTag::kMmdSamples));
  const Soa sb = to_soa(random_subset(b, kMmdPoints, seed, SubsetTag::kMmdReference));
  return mmd2_from_sums(kernel_sums(sa, sa, true), sa.n, kernel_sums(sb, sb, true), sb.n,
                        kernel_sums(sa, sb, false));
}

std::array<double, 2> precision_recall(const std::vector<float>& samples, const std::vector<float>& reference,
                                       uint64_t seed) {
  require_points(samples, kNearest + 1, "precision_recall");
  require_points(reference, kNearest + 1, "precision_recall");
  const Manifold s(random_subset(samples, kPrPoints, seed, SubsetTag::kPrSamples));
  const Manifold r(random_subset(reference, kPrPoints, seed, SubsetTag::kPrReference));
  return {BallIndex(r.points, r.grid, r.radius2).coverage(s.points),
          BallIndex(s.points, s.grid, s.radius2).coverage(r.points)};
}

Metrics compare(const std::vector<float>& samples, const std::vector<float>& reference, uint64_t seed) {
  return compare_many(reference, {&samples}, seed)[0];
}

double Report::ratio_sliced_w1() const {
  return floor.sliced_w1 > 0 ? sample.sliced_w1 / floor.sliced_w1 : std::numeric_limits<double>::quiet_NaN();
}

double Report::ratio_mmd2() const {
  return floor.mmd2 > 0 ? sample.mmd2 / floor.mmd2 : std::numeric_limits<double>::quiet_NaN();
}

std::vector<float> file_normalized(const std::vector<float>& xy, const DataSource& data) {
  check_points(data.points, 2 * data.count, "data file");
  const Moments mo = points_moments(data.points, data.count);
  std::vector<float> out(xy.size());
  for (std::size_t i = 0; i < xy.size(); ++i) out[i] = float((double(xy[i]) - mo.mean[i % 2]) / mo.std[i % 2]);
  return out;
}

std::vector<float> file_reference(const DataSource& data) {
  check_points(data.points, 2 * data.count, "data file");
  return file_normalized(std::vector<float>(data.points, data.points + 2 * data.count), data);
}

std::vector<float> file_draw(const DataSource& data, int64_t n, uint64_t seed, Stream stream) {
  check_points(data.points, 2 * data.count, "data file");
  if (n < 0) throw Error("file_draw: negative point count " + std::to_string(n));
  const Moments mo = points_moments(data.points, data.count);
  std::vector<float> out(2 * std::size_t(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    Philox st;
    philox_init(&st, seed, stream, uint64_t(i));
    const int64_t j = file_index(curand(&st), data.count);
    for (int d = 0; d < 2; ++d) out[2 * i + d] = float((double(data.points[2 * j + d]) - mo.mean[d]) / mo.std[d]);
  }
  return out;
}

Report evaluate(const std::vector<float>& samples, uint64_t seed, const DataSource& data) {
  require_points(samples, kMinSamples, "samples");
  for (std::size_t i = 0; i < samples.size(); ++i)
    if (!std::isfinite(samples[i]))
      throw Error("samples: point " + std::to_string(i / 2) + " has a non-finite " + (i % 2 ? "y" : "x") +
                  " coordinate");
  Report r;
  r.dataset = data.dataset;
  r.seed = seed;
  const int64_t n = count_points(samples);
  std::vector<float> reference, floor;
  if (data.dataset == Dataset::kFile) {
    check_points(data.points, 2 * data.count, "data file");
    if (data.count < kNearest + 1)
      throw Error("data file: " + std::to_string(data.count) + " points; the reference needs at least " +
                  std::to_string(kNearest + 1));
    r.n_reference = data.count;
    reference = file_reference(data);
    floor = file_draw(data, n, seed, Stream::kEvalFloor);
  } else {
    r.n_reference = std::max(n, kMinReference);
    reference = true_draw(data.dataset, r.n_reference, seed, Stream::kEvalReference);
    floor = true_draw(data.dataset, n, seed, Stream::kEvalFloor);
  }
  const std::vector<Metrics> m = compare_many(reference, {&samples, &floor}, seed);
  r.sample = m[0];
  r.floor = m[1];
  return r;
}

std::string to_json(const Report& r) {
  auto metrics = [](const Metrics& m) {
    nlohmann::ordered_json per_bw = nlohmann::ordered_json::object();
    for (std::size_t h = 0; h < kNumBandwidths; ++h) {
      char key[16];
      std::snprintf(key, sizeof key, "%g", kBandwidths[h]);
      per_bw[key] = m.mmd2_per_bandwidth[h];
    }
    return nlohmann::ordered_json{{"n", m.n},
                                  {"sliced_w1", m.sliced_w1},
                                  {"mmd2", m.mmd2},
                                  {"mmd2_per_bandwidth", per_bw},
                                  {"precision", m.precision},
                                  {"recall", m.recall}};
  };
  auto number_or_null = [](double v) {
    return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
  };
  const nlohmann::ordered_json j{
      {"n", r.sample.n},
      {"n_reference", r.n_reference},
      {"seed", r.seed},
      {"samples", metrics(r.sample)},
      {"floor", metrics(r.floor)},
      {"ratio", {{"sliced_w1", number_or_null(r.ratio_sliced_w1())}, {"mmd2", number_or_null(r.ratio_mmd2())}}}};
  if (r.dataset == Dataset::kMoons) return j.dump(2) + "\n";
  nlohmann::ordered_json named = {{"data", dataset_name(r.dataset)}};
  named.update(j);
  return named.dump(2) + "\n";
}

std::string to_text(const Report& r) {
  std::string out;
  char line[160];
  const std::string of = r.dataset == Dataset::kMoons  ? "the true distribution"
                         : r.dataset == Dataset::kFile ? "the data file"
                                                       : "the true " + std::string(dataset_name(r.dataset)) + " distribution";
  std::snprintf(line, sizeof line, "%lld samples vs %lld reference points of %s (seed %llu)\n",
                static_cast<long long>(r.sample.n), static_cast<long long>(r.n_reference), of.c_str(),
                static_cast<unsigned long long>(r.seed));
  out += line;
  auto row = [&](const char* name, const std::string& a, const std::string& b, const std::string& c) {
    std::snprintf(line, sizeof line, "%-10s  %11s  %11s  %8s\n", name, a.c_str(), b.c_str(), c.c_str());
    out += line;
  };
  auto ratio = [](double v) {
    if (!std::isfinite(v)) return std::string("n/a");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return std::string(buf);
  };
  row("metric", "samples", "noise floor", "ratio");
  row("sliced W1", format_value(r.sample.sliced_w1, false), format_value(r.floor.sliced_w1, false),
      ratio(r.ratio_sliced_w1()));
  row("MMD^2", format_value(r.sample.mmd2, true), format_value(r.floor.mmd2, true), ratio(r.ratio_mmd2()));
  row("precision", format_value(r.sample.precision, false), format_value(r.floor.precision, false), "");
  row("recall", format_value(r.sample.recall, false), format_value(r.floor.recall, false), "");
  if (r.sample.n < 20000)
    out +=
        "note: sliced W1 at small n mostly measures the sample mean's wobble; precision and MMD separate good "
        "from poor models better there.\n";
  return out;
}

}  // namespace ddpm::eval
