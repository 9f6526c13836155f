// PNG plots drawn with stb_image_write, labels with stb_easy_font. Every
// plot has a frame and short labels; files are written atomically.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ddpm/config.hpp"

namespace ddpm::plot {

// Interleaved (x, y) float pairs.
using Points = std::vector<float>;

struct Panel {
  std::string title;  // e.g. "t=25"
  Points points;
};

// Scatter plot with equal axis scales (the seed's "DDPM samples").
void write_scatter_png(const std::string& path, const Points& xy, const std::string& title);

// ---- Density images: a 2-D histogram on a log colour scale, for large n where a
// scatter is a blot. The histogram can be binned here or elsewhere (the GPU's
// SampleStats) and drawn from its counts.

// The data window of a density image: the equal-aspect view of the finite points'
// bounds, padded 5%, over the image's square plot area.
struct DensityWindow {
  double x0, x1, y0, y1;
};
DensityWindow density_window(const Points& xy);
// The same from the bounds of the finite points (xlo > xhi: there are none), so a
// window can come from statistics gathered elsewhere.
DensityWindow density_window(double xlo, double xhi, double ylo, double yhi);

// Which cell a finite point falls in. The arithmetic is in double and the cell is
// clamped before the conversion to int, so points outside the window (however far)
// land in the edge cells; host and device code share it, so both bin alike.
struct DensityBinning {
  int bins;
  double x0, y1;  // the window's left and top edges
  double sx, sy;  // bins per unit: bins / (x1 - x0), bins / (y1 - y0)

  static DensityBinning of(int bins, const DensityWindow& w) {
    return {bins, w.x0, w.y1, bins / (w.x1 - w.x0), bins / (w.y1 - w.y0)};
  }
  DDPM_HD int index(double u) const {
    const double f = floor(u);
    return f >= bins - 1 ? bins - 1 : f > 0 ? int(f) : 0;  // NaN (a degenerate window) -> 0
  }
  // Row-major, row 0 at the top (y1).
  DDPM_HD int cell(double x, double y) const {
    return index((y1 - y) * sy) * bins + index((x - x0) * sx);
  }
};

struct DensityGrid {
  // Empty cells over `window`. (No default constructor: write_density_png(path, {}, title)
  // stays a call with no points.)
  DensityGrid(int bins_, const DensityWindow& window)
      : bins(bins_), x0(window.x0), x1(window.x1), y0(window.y0), y1(window.y1),
        counts(bins_ > 0 ? std::size_t(bins_) * std::size_t(bins_) : 0, 0) {}
  DensityWindow window() const { return {x0, x1, y0, y1}; }

  int bins;
  double x0, x1, y0, y1;         // the window
  std::vector<uint32_t> counts;  // [bins][bins], row 0 at the top (y1); saturating
  int64_t non_finite = 0;        // points left out (noted under the image)
};

// The histogram of the finite points over density_window(xy), bins x bins cells (1..4096).
DensityGrid density_grid(const Points& xy, int bins);
// The same over a given window; points outside it count in the edge cells.
DensityGrid density_grid(const Points& xy, int bins, const DensityWindow& window);

void write_density_png(const std::string& path, const DensityGrid& grid, const std::string& title);
// density_grid(xy, bins), drawn.
void write_density_png(const std::string& path, const Points& xy, const std::string& title,
                       int bins = 400);

// ---- Heat maps: a function of (x, y) evaluated on a grid (e.g. a model's log-density),
// drawn beside a scatter of points over the same window.

// A function on a grid: values[bins][bins] over `window`, row 0 at the top (y1), cell (r, c)
// centred at (x0 + (c + 0.5) (x1 - x0) / bins, y1 - (r + 0.5) (y1 - y0) / bins); non-finite values are
// drawn as "no value" (background) and counted in a note.
struct GridValues {
  int bins;
  DensityWindow window;
  std::vector<double> values;
};

// The centres of the grid's cells, row-major (row 0 at the top), interleaved (x, y) as floats:
// evaluate the function at these and the image shows exactly those values. Each centre is
// computed in double as documented for GridValues, then rounded to float. bins: 1..4096.
Points grid_cell_centres(int bins, const DensityWindow& window);

// The scatter panel of write_heatmap_png draws at most this many points (the first ones).
constexpr std::size_t kHeatmapMaxPoints = 50000;

// Two panels side by side at one equal-aspect scale over grid.window: left the grid's values as a
// heat map (the density image's colormap) with a labelled colour bar (value at bottom and top,
// e.g. "log p(x), nats" as bar_label, ticks at round numbers); its floor is clipped at
// max - clip_range (the tail of log p runs to -infinity; default 12 nats, values below are drawn
// in the floor colour and the bottom label reads "<= floor"), right a scatter of `points` (e.g. the
// model's samples or held-out data, the first kHeatmapMaxPoints) over the same window; points
// outside it are counted in a note. Titles over each panel. A window that is not square is shown
// centred in square panels. Throws ddpm::Error for bins outside 1..4096, a values vector of
// the wrong size, an empty or unbounded window, clip_range not > 0, or an odd coordinate count.
void write_heatmap_png(const std::string& path, const GridValues& grid, const std::string& heat_title,
                       const std::string& bar_label, const Points& points, const std::string& points_title,
                       double clip_range = 12.0);

// Panels side by side, one shared equal-aspect scale (the seed's forward-process figure).
void write_panels_png(const std::string& path, const std::vector<Panel>& panels);

// Training loss against step, log-scaled loss axis, with a smoothed line.
void write_loss_curve_png(const std::string& path, const std::vector<float>& loss,
                          const std::string& title);

}  // namespace ddpm::plot
