// The Thrust side of SampleStats, written once for two Thrust systems: CUDA
// (sample_stats.cu) and the host's CPP system (HostBackend below), where
// "device memory" is host memory, so tests run the same algorithms without a GPU.
//
// A Backend provides
//   policy()                   the execution policy every algorithm runs under;
//   Buffer<T>(count)           uninitialized storage with data();
//   zero(p, bytes)             done when it returns;
//   download(host, p, bytes)   done when it returns;
//   finish()                   returns once all work issued under policy() is done.
//
// Every algorithm takes the policy and raw pointers, never thrust::device_vector,
// whose allocations and fills would run on the default stream, unordered with a
// non-blocking stream's work.
#pragma once

#include <thrust/for_each.h>
#include <thrust/iterator/constant_iterator.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>
#include <thrust/sort.h>
#include <thrust/system/cpp/execution_policy.h>
#include <thrust/transform.h>
#include <thrust/transform_reduce.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "host/gpu/sample_stats.hpp"
#include "host/plot/plot.hpp"

namespace ddpm::gpu::detail {

constexpr int kMaxBins = 4096;  // plot's limit: 4096^2 cells still fit an int

// fabsf(NaN) <= FLT_MAX is false: std::isfinite on both sides of the build.
DDPM_HD bool finite_pair(float x, float y) { return fabsf(x) <= FLT_MAX && fabsf(y) <= FLT_MAX; }

// ---- Moments ----
// Two passes over each piece: counts, sums and extremes, then sums of the deviations
// from the piece's own mean (the corrected two-pass algorithm: M2 = sum d^2 - (sum d)^2 / n).
// Pieces are merged on the host with Chan, Golub and LeVeque's pairwise formulas. Sums
// of squares about zero would lose (mean / std)^2 of the 16 digits of a double: for
// points far from the origin all of them. The second pass costs one more read of data
// that is in device memory anyway.

struct FirstPass {
  int64_t n, non_finite;
  double sx, sy;
  float min_x, min_y, max_x, max_y;
};

DDPM_HD FirstPass first_pass_identity() { return {0, 0, 0.0, 0.0, FLT_MAX, FLT_MAX, -FLT_MAX, -FLT_MAX}; }

struct FirstPassOf {
  const float* xy;
  DDPM_HD FirstPass operator()(int64_t i) const {
    const float x = xy[2 * i], y = xy[2 * i + 1];
    if (!finite_pair(x, y)) {
      FirstPass p = first_pass_identity();
      p.non_finite = 1;
      return p;
    }
    return {1, 0, double(x), double(y), x, y, x, y};
  }
};

struct FirstPassSum {
  DDPM_HD FirstPass operator()(const FirstPass& a, const FirstPass& b) const {
    return {a.n + b.n,
            a.non_finite + b.non_finite,
            a.sx + b.sx,
            a.sy + b.sy,
            a.min_x < b.min_x ? a.min_x : b.min_x,
            a.min_y < b.min_y ? a.min_y : b.min_y,
            a.max_x > b.max_x ? a.max_x : b.max_x,
            a.max_y > b.max_y ? a.max_y : b.max_y};
  }
};

struct SecondPass {
  double dx, dy, dxx, dyy, dxy;
};

struct SecondPassOf {
  const float* xy;
  double mx, my;
  DDPM_HD SecondPass operator()(int64_t i) const {
    const float x = xy[2 * i], y = xy[2 * i + 1];
    if (!finite_pair(x, y)) return {0, 0, 0, 0, 0};
    const double dx = double(x) - mx, dy = double(y) - my;
    return {dx, dy, dx * dx, dy * dy, dx * dy};
  }
};

struct SecondPassSum {
  DDPM_HD SecondPass operator()(const SecondPass& a, const SecondPass& b) const {
    return {a.dx + b.dx, a.dy + b.dy, a.dxx + b.dxx, a.dyy + b.dyy, a.dxy + b.dxy};
  }
};

// (n, mean, M2, C) of the finite points so far, with their extremes.
struct Running {
  int64_t n = 0, non_finite = 0;
  double mx = 0, my = 0, m2x = 0, m2y = 0, cxy = 0;
  float min_x = FLT_MAX, min_y = FLT_MAX, max_x = -FLT_MAX, max_y = -FLT_MAX;

  void merge(const Running& b) {
    non_finite += b.non_finite;
    if (b.n == 0) return;
    min_x = std::min(min_x, b.min_x), min_y = std::min(min_y, b.min_y);
    max_x = std::max(max_x, b.max_x), max_y = std::max(max_y, b.max_y);
    const double na = double(n), nb = double(b.n), nt = na + nb;
    const double dx = b.mx - mx, dy = b.my - my, w = na * nb / nt;  // w = 0 for a first piece
    mx += dx * (nb / nt), my += dy * (nb / nt);
    m2x += b.m2x + dx * dx * w;
    m2y += b.m2y + dy * dy * w;
    cxy += b.cxy + dx * dy * w;
    n += b.n;
  }

  SampleMoments moments() const {
    SampleMoments m;
    m.n = n;
    m.non_finite = non_finite;
    if (n == 0) return m;
    const double nd = double(n);
    m.mean[0] = mx, m.mean[1] = my;
    m.var[0] = m2x / nd, m.var[1] = m2y / nd;
    m.cov = cxy / nd;
    m.min[0] = min_x, m.min[1] = min_y;
    m.max[0] = max_x, m.max[1] = max_y;
    return m;
  }
};

// ---- Histogram ----
// Each point's cell (non-finite points: the sentinel `cells`, which sorts last), the
// cells sorted, runs of one cell counted with reduce_by_key, the run lengths added to
// the counts. Runs hold distinct cells, so the additions never collide.

struct CellOf {
  const float* xy;
  plot::DensityBinning binning;
  int cells;
  DDPM_HD int operator()(int64_t i) const {
    const float x = xy[2 * i], y = xy[2 * i + 1];
    return finite_pair(x, y) ? binning.cell(double(x), double(y)) : cells;
  }
};

// Saturating, as plot::density_grid counts.
struct AddRun {
  const int* cell;
  const uint32_t* run;
  uint32_t* counts;
  int cells;
  DDPM_HD void operator()(int64_t k) const {
    const int c = cell[k];
    if (c >= cells) return;
    const uint64_t sum = uint64_t(counts[c]) + run[k];
    counts[c] = sum > 0xffffffffu ? 0xffffffffu : uint32_t(sum);
  }
};

inline void check_window(int bins, const plot::DensityWindow& w) {
  if (bins < 1 || bins > kMaxBins)
    throw Error("sample statistics: histogram bins must be in 1..4096, got " + std::to_string(bins));
  if (!(w.x1 > w.x0) || !(w.y1 > w.y0) || !std::isfinite(w.x1 - w.x0) || !std::isfinite(w.y1 - w.y0))
    throw Error("sample statistics: the histogram window must be finite and non-empty");
}

template <class Backend>
class StatsAccumulator {
 public:
  template <class T>
  using Buffer = typename Backend::template Buffer<T>;

  // Points are taken `piece` at a time: the scratch (three ints per point, and the
  // sort's) stays bounded whatever the chunk size, and run lengths fit uint32.
  static constexpr int64_t kDefaultPiece = int64_t(1) << 22;

  StatsAccumulator(int bins, const plot::DensityWindow& window, int64_t piece = kDefaultPiece)
      : bins_((check_window(bins, window), bins)),
        window_(window),
        binning_(plot::DensityBinning::of(bins, window)),
        piece_(std::max<int64_t>(1, piece)),
        counts_(std::size_t(bins) * std::size_t(bins)) {
    Backend::zero(counts_.data(), counts_size() * sizeof(uint32_t));
  }

  void add(const float* xy, int64_t n, const Backend& backend) {
    if (n < 0) throw Error("sample statistics: negative point count " + std::to_string(n));
    if (n == 0) return;
    if (!xy) throw Error("sample statistics: no points to read (null pointer)");
    for (int64_t first = 0; first < n; first += piece_)
      add_piece(xy + 2 * first, std::min(piece_, n - first), backend);
    backend.finish();
  }

  SampleMoments moments() const { return running_.moments(); }

  plot::DensityGrid histogram() const {
    plot::DensityGrid grid(bins_, window_);
    Backend::download(grid.counts.data(), counts_.data(), counts_size() * sizeof(uint32_t));
    grid.non_finite = running_.non_finite;
    return grid;
  }

 private:
  std::size_t counts_size() const { return std::size_t(bins_) * std::size_t(bins_); }

  void reserve(int64_t n) {
    if (n <= scratch_size_) return;
    cell_ = Buffer<int>(std::size_t(n));
    run_cell_ = Buffer<int>(std::size_t(n));
    run_ = Buffer<uint32_t>(std::size_t(n));
    scratch_size_ = n;
  }

  void add_piece(const float* xy, int64_t n, const Backend& backend) {
    const auto policy = backend.policy();
    const thrust::counting_iterator<int64_t> begin(0), end(n);

    const FirstPass f =
        thrust::transform_reduce(policy, begin, end, FirstPassOf{xy}, first_pass_identity(), FirstPassSum{});
    Running piece;
    piece.non_finite = f.non_finite;
    if (f.n > 0) {
      const double nd = double(f.n);
      piece.n = f.n;
      piece.mx = f.sx / nd, piece.my = f.sy / nd;
      const SecondPass s = thrust::transform_reduce(policy, begin, end, SecondPassOf{xy, piece.mx, piece.my},
                                                    SecondPass{0, 0, 0, 0, 0}, SecondPassSum{});
      piece.m2x = std::max(0.0, s.dxx - s.dx * s.dx / nd);
      piece.m2y = std::max(0.0, s.dyy - s.dy * s.dy / nd);
      piece.cxy = s.dxy - s.dx * s.dy / nd;
      piece.min_x = f.min_x, piece.min_y = f.min_y, piece.max_x = f.max_x, piece.max_y = f.max_y;
    }
    // The moments merge last: an exception from the histogram's algorithms leaves them as they were.
    if (f.n > 0) add_cells(xy, n, policy);
    running_.merge(piece);
  }

  template <class Policy>
  void add_cells(const float* xy, int64_t n, const Policy& policy) {
    const thrust::counting_iterator<int64_t> begin(0), end(n);
    reserve(n);
    const int cells = int(counts_size());
    int* cell = cell_.data();
    thrust::transform(policy, begin, end, cell, CellOf{xy, binning_, cells});
    thrust::sort(policy, cell, cell + n);
    const auto ends = thrust::reduce_by_key(policy, cell, cell + n, thrust::constant_iterator<uint32_t>(1),
                                            run_cell_.data(), run_.data());
    const int64_t runs = ends.first - run_cell_.data();
    thrust::for_each(policy, thrust::counting_iterator<int64_t>(0), thrust::counting_iterator<int64_t>(runs),
                     AddRun{run_cell_.data(), run_.data(), counts_.data(), cells});
  }

  int bins_;
  plot::DensityWindow window_;
  plot::DensityBinning binning_;
  int64_t piece_;
  Buffer<uint32_t> counts_;
  Buffer<int> cell_, run_cell_;
  Buffer<uint32_t> run_;
  int64_t scratch_size_ = 0;
  Running running_;
};

// ---- The host's CPP system ----
// New storage is filled with a poison pattern, as cudaMalloc hands back whatever was
// there: a count that is never zeroed shows up in tests.
struct HostBackend {
  template <class T>
  class Buffer {
   public:
    Buffer() = default;
    explicit Buffer(std::size_t count) : v_(count) {
      std::memset(static_cast<void*>(v_.data()), 0xA5, count * sizeof(T));
    }
    T* data() { return v_.data(); }
    const T* data() const { return v_.data(); }

   private:
    std::vector<T> v_;
  };

  auto policy() const { return thrust::cpp::par; }
  void finish() const {}
  static void zero(void* p, std::size_t bytes) { std::memset(p, 0, bytes); }
  static void download(void* host, const void* p, std::size_t bytes) { std::memcpy(host, p, bytes); }
};

}  // namespace ddpm::gpu::detail
