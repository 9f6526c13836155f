// PNG plots drawn with stb_image_write, labels with stb_easy_font. Every
// plot has a frame and short labels; files are written atomically.
#pragma once

#include <string>
#include <vector>

namespace ddpm::plot {

// Interleaved (x, y) float pairs.
using Points = std::vector<float>;

struct Panel {
  std::string title;  // e.g. "t=25"
  Points points;
};

// Scatter plot with equal axis scales (the seed's "DDPM samples").
void write_scatter_png(const std::string& path, const Points& xy, const std::string& title);

// 2-D histogram on a log colour scale, for large n where a scatter is a blot.
void write_density_png(const std::string& path, const Points& xy, const std::string& title,
                       int bins = 400);

// Panels side by side, one shared equal-aspect scale (the seed's forward-process figure).
void write_panels_png(const std::string& path, const std::vector<Panel>& panels);

// Training loss against step, log-scaled loss axis, with a smoothed line.
void write_loss_curve_png(const std::string& path, const std::vector<float>& loss,
                          const std::string& title);

}  // namespace ddpm::plot
