#include "bench/bench_util.hpp"

#include <algorithm>
#include <cmath>

namespace ddpm::bench {

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

Spread spread_of(const std::vector<double>& seconds) {
  Spread s;
  if (seconds.empty()) return s;
  s.runs = int(seconds.size());
  s.median = median_of(seconds);
  s.min = *std::min_element(seconds.begin(), seconds.end());
  s.max = *std::max_element(seconds.begin(), seconds.end());
  return s;
}

double ratio_of_medians(const std::vector<double>& peer_seconds, const std::vector<double>& ours_seconds) {
  if (peer_seconds.empty() || ours_seconds.empty()) return 0;
  return median_of(peer_seconds) / median_of(ours_seconds);
}

std::vector<double> same_round_ratios(const std::vector<double>& peer_seconds,
                                      const std::vector<double>& ours_seconds) {
  std::vector<double> r;
  for (std::size_t i = 0; i < std::min(peer_seconds.size(), ours_seconds.size()); ++i)
    r.push_back(peer_seconds[i] / ours_seconds[i]);
  return r;
}

std::vector<Slot> interleaved_order(int variants, int rounds) {
  std::vector<Slot> order;
  for (int round = 0; round < rounds; ++round)
    for (int v = 0; v < variants; ++v) order.push_back({round, v});
  return order;
}

double Result::median() const { return median_of(seconds); }

double Result::floor_seconds(const Ceilings& c) const {
  return std::max(flops / (compute_ceiling(c) * 1e9), bytes / (c.bandwidth_gbs * 1e9));
}

nlohmann::json Result::to_json(const Ceilings& c) const {
  nlohmann::json j = {{"suite", suite},         {"kernel", kernel}, {"size", size},   {"items", items},
                      {"item_unit", item_unit}, {"flops", flops},   {"bytes", bytes}, {"sets", sets}};
  if (!skipped.empty()) {
    j["skipped"] = skipped;
    return j;
  }
  const double med = median();
  j.update({{"reps", seconds.size()},
            {"median_seconds", med},
            {"min_seconds", *std::min_element(seconds.begin(), seconds.end())},
            {"max_seconds", *std::max_element(seconds.begin(), seconds.end())},
            {"ns_per_item", med / items * 1e9},
            {"gflops", gflops()},
            {"gbs", gbs()},
            {"fraction_of_compute_ceiling", gflops() / compute_ceiling(c)},
            {"compute_ceiling_gflops", compute_ceiling(c)},
            {"fraction_of_bandwidth_ceiling", gbs() / c.bandwidth_gbs},
            {"floor_seconds", floor_seconds(c)},
            {"fraction_of_floor", floor_seconds(c) / med},
            {"bound", memory_bound(c) ? "memory" : "compute"}});
  return j;
}

std::string format_seconds(double s) {
  char buf[32];
  if (s < 1e-3)
    std::snprintf(buf, sizeof buf, "%.1f us", s * 1e6);
  else if (s < 1)
    std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

void print_table(std::FILE* out, const std::string& title, const Ceilings& c, const std::vector<Result>& rows) {
  // The GPU's rates read better in TFLOP/s.
  const bool tera = !rows.empty() && rows.front().suite == "gpu";
  const double scale = tera ? 1e-3 : 1;
  std::fprintf(out, "\n%s\n", title.c_str());
  std::fprintf(out, "ceilings (this run): compute %.1f %s (%s), memory %.1f GB/s (%s)\n", c.compute_gflops * scale,
               tera ? "TFLOP/s" : "GFLOP/s", c.compute_what.c_str(), c.bandwidth_gbs, c.bandwidth_what.c_str());
  std::fprintf(out, "%-40s %8s %5s %4s %11s %10s %-10s %9s %6s %8s %6s %7s %s\n", "kernel", "points", "reps", "sets",
               "median", "ns/item", "item", tera ? "TFLOP/s" : "GFLOP/s", "%peak", "GB/s", "%bw", "%floor", "bound");
  for (const Result& r : rows) {
    if (!r.skipped.empty()) {
      std::fprintf(out, "%-40s %8lld  skipped: %s\n", r.kernel.c_str(), static_cast<long long>(r.size),
                   r.skipped.c_str());
      continue;
    }
    const double med = r.median();
    std::fprintf(out, "%-40s %8lld %5zu %4d %11s %10.3g %-10s %9.2f %5.1f%% %8.1f %5.1f%% %6.1f%% %s\n",
                 r.kernel.c_str(), static_cast<long long>(r.size), r.seconds.size(), r.sets,
                 format_seconds(med).c_str(), med / r.items * 1e9, r.item_unit.c_str(), r.gflops() * scale,
                 100 * r.gflops() / r.compute_ceiling(c), r.gbs(), 100 * r.gbs() / c.bandwidth_gbs,
                 100 * r.floor_seconds(c) / med, r.memory_bound(c) ? "memory" : "compute");
  }
}

namespace {
uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

void fill_random(float* p, std::size_t n, uint64_t seed, float scale, bool positive) {
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (int64_t(n) + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + uint64_t(b);
    const std::size_t end = std::min(n, std::size_t(b + 1) * kBlock);
    for (std::size_t i = std::size_t(b) * kBlock; i < end; ++i) {
      const uint64_t r = splitmix64(s);
      const float mag = 0.05f + 0.95f * float(r >> 40) * (1.f / 16777216.f);
      p[i] = (positive || (r & 1)) ? mag * scale : -mag * scale;
    }
  }
}

int rotation_sets(double set_bytes, double cache_bytes, int override_sets) {
  if (override_sets > 0) return override_sets;
  if (set_bytes <= 0) return 1;
  return int(std::clamp(std::ceil(cache_bytes / set_bytes), 1.0, 1024.0));
}

}  // namespace ddpm::bench
