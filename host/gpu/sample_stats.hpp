// Statistics of samples that stay on the GPU: moments and the 2-D histogram
// behind the density image, gathered chunk by chunk with Thrust, so a large
// sample set never has to be copied to the host to be summarized or plotted.
//
//   SampleStats stats(400, window);  // e.g. plot::density_window of a first pass's extremes
//   for each chunk in device memory: stats.add(device_xy, n, stream);
//   plot::write_density_png(path, stats.histogram(), title);
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "host/plot/plot.hpp"

namespace ddpm::gpu {

// Over the points with both coordinates finite. var and cov divide by n (the
// population moments); with n == 0 every field but non_finite is 0.
struct SampleMoments {
  int64_t n = 0;
  double mean[2]{}, var[2]{}, cov = 0;
  float min[2]{}, max[2]{};
  int64_t non_finite = 0;  // points left out
};

class SampleStats {
 public:
  // The histogram has bins x bins cells (1..4096) over a fixed window: that of
  // plot::DensityGrid, and points outside it count in the edge cells, as
  // plot::density_grid bins them. Throws ddpm::Error for bad bins or window, or
  // too little GPU memory.
  SampleStats(int bins, double x0, double x1, double y0, double y1);
  SampleStats(int bins, const plot::DensityWindow& window);
  ~SampleStats();
  SampleStats(const SampleStats&) = delete;
  SampleStats& operator=(const SampleStats&) = delete;

  // n interleaved (x, y) pairs in device memory, read on `stream`. Returns once
  // they are counted (Thrust's reductions hand their results to the host), so the
  // caller may overwrite the chunk straight away.
  void add(const float* device_xy, int64_t n, cudaStream_t stream);

  SampleMoments moments() const;
  // The cells plot::density_grid would give for the same points and window.
  plot::DensityGrid histogram() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace ddpm::gpu
