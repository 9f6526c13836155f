// Training batches and the forward-process figure's points, from any data set
// (ddpm/datasets.hpp), normalized per batch as the seed does.
#include <cmath>

#include "ddpm/datasets.hpp"
#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/batch.hpp"
#include "host/cpu/cpu_backend.hpp"

namespace ddpm::cpu {

void draw_batch_rows(uint64_t seed, uint64_t step, int n, int T, int r0, int r1, float* x0, float* eps, int* t,
                     const DataSource& data) {
  // make_moons uses the row's first five Philox outputs only; the other sets
  // also take outputs 5..7 (draw_train_row's words), which moons never draws.
  const bool words = data.dataset != Dataset::kMoons;
  for (int i = r0; i < r1; ++i) {
    PointRandom r{};
    const TrainDraw d = words ? draw_train_row(seed, step, n, i, T, r.word) : draw_train_row(seed, step, n, i, T);
    r.normal[0] = d.noise_x;
    r.normal[1] = d.noise_y;
    batch_point(data, i, n, r, x0[2 * i], x0[2 * i + 1]);
    eps[2 * i] = d.eps_x;
    eps[2 * i + 1] = d.eps_y;
    t[i] = d.t;
  }
}

BatchStats batch_stats(const float* x0, int n) {
  // x = (x - x.mean(0)) / x.std(0), torch.std being the unbiased (n - 1) estimate.
  double sum[2] = {0, 0}, sq[2] = {0, 0};
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < 2; ++d) sum[d] += x0[2 * i + d];
  BatchStats s;
  for (int d = 0; d < 2; ++d) s.mean[d] = sum[d] / n;
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < 2; ++d) {
      const double c = x0[2 * i + d] - s.mean[d];
      sq[d] += c * c;
    }
  // A coordinate without spread (every row the same point of a user's file,
  // possible only for tiny batches) is centred only: dividing by 0 would give NaN.
  for (int d = 0; d < 2; ++d) s.inv_std[d] = sq[d] > 0 ? 1.0 / std::sqrt(sq[d] / (n - 1)) : 1.0;
  return s;
}

void normalize_rows(const BatchStats& s, int r0, int r1, float* x0) {
  for (int i = r0; i < r1; ++i)
    for (int d = 0; d < 2; ++d) x0[2 * i + d] = float((x0[2 * i + d] - s.mean[d]) * s.inv_std[d]);
}

void train_batch(uint64_t seed, uint64_t step, int n, int T, float* x0, float* eps, int* t, const DataSource& data) {
  if (data.dataset == Dataset::kFile) check_points(data.points, 2 * data.count, "training data");
  draw_batch_rows(seed, step, n, T, 0, n, x0, eps, t, data);
  normalize_rows(batch_stats(x0, n), 0, n, x0);
}

std::vector<std::vector<float>> forward_process(const Schedule& sched, uint64_t seed, int n,
                                                const std::vector<int>& timesteps, const DataSource& data) {
  // x0 = get_batch(n), normalized per batch. Point i's noise z (make_moons' noise
  // for moons) is pair 0 of its Stream::kForwardProcess pairs; the other sets
  // take their words from Stream::kForwardData item i.
  if (data.dataset == Dataset::kFile) check_points(data.points, 2 * data.count, "training data");
  std::vector<float> x0(2 * std::size_t(n));
  std::vector<NormalPairs> rng(n);
  for (int i = 0; i < n; ++i) {
    philox_init(&rng[i].state, seed, Stream::kForwardProcess, uint64_t(i));
    PointRandom r{};
    if (data.dataset != Dataset::kMoons) draw_words(seed, Stream::kForwardData, uint64_t(i), r.word);
    rng[i].next(r.normal[0], r.normal[1]);
    batch_point(data, i, n, r, x0[2 * i], x0[2 * i + 1]);
  }
  normalize_rows(batch_stats(x0.data(), n), 0, n, x0.data());
  std::vector<std::vector<float>> out;
  for (int t : timesteps) {
    std::vector<float> xt(x0.size());
    for (int i = 0; i < n; ++i) {
      float e0, e1;
      rng[i].next(e0, e1);  // fresh noise for each snapshot, as q_sample(x0, tt) draws
      xt[2 * i] = q_sample(x0[2 * i], e0, sched.forward[t]);
      xt[2 * i + 1] = q_sample(x0[2 * i + 1], e1, sched.forward[t]);
    }
    out.push_back(std::move(xt));
  }
  return out;
}

}  // namespace ddpm::cpu
