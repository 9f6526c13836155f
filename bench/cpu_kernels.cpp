// ddpm_bench's CPU suite: each kernel of the CPU backend (host/cpu/layers.hpp),
// Adam over the flat parameter buffer, one whole training step, the
// sampler's chain and the likelihood's bound and ODE, timed one by one at
// several batch sizes. Compiled once per
// instruction set, as the backend is (host/cpu/isa_target.hpp): cpu_suite.cpp
// runs each build the CPU has, side by side, each row against its own width's
// FMA peak. The per-layer
// kernels run as the trainer runs them: OpenMP over 64-row blocks (the rows
// phase), or over 12-output tiles (the weight gradients). Each is checked
// against a plain double-precision loop before it is timed.
//
// Napkin math: FLOPs count a multiply-add as 2 and leave SiLU's exp and
// reciprocal out (they are extra instructions, not useful FLOPs); bytes are
// the compulsory traffic of one call (inputs read once, outputs written once;
// the weights, 33-65 KB, stay in L1/L2 and are left out). Against this VM's
// ceilings, ~230 GFLOP/s of FMA and some 20-40 GB/s of DRAM, the balance
// point is ~6-10 FLOP/byte: the hidden layers (21-32 FLOP/byte) are
// compute-bound, the output layer, its backward pass and Adam (<= 1
// FLOP/byte) are memory-bound unless their inputs are still in cache.
#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>

#include "bench/cpu_suite.hpp"
#include "ddpm/error.hpp"
#include "ddpm/likelihood.hpp"
#include "ddpm/math.hpp"
#include "ddpm/params.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/cpu/mlp.hpp"
#include "host/cpu/isa_target.hpp"
#include "host/cpu/likelihood_loops.hpp"

DDPM_CPU_ISA_BEGIN
#include "host/cpu/layers.hpp"

namespace ddpm::bench::DDPM_CPU_ISA {

namespace layers = cpu::DDPM_CPU_ISA;
namespace simd = cpu::DDPM_CPU_ISA::simd;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr int kRowBlock = 64;                 // the trainer's rows-phase block (host/cpu/train.cpp)
constexpr int kSamplerTile = 48;              // the sampler's tile (host/cpu/sample.cpp)
constexpr int kOutTile = 2 * simd::kTileM;    // the trainer's weight-gradient task: two micro-kernel tiles

// Runs f(r0, rows) over fixed blocks of `block` rows on all threads.
template <class F>
void for_row_blocks(int64_t rows, int block, F&& f) {
  const int64_t blocks = (rows + block - 1) / block;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) f(b * block, int(std::min<int64_t>(block, rows - b * block)));
}

// Compares a kernel's outputs with a double-precision reference: |got - want|
// <= 2e-5 (mag + |want|) + 1e-6, where mag is the sum of the magnitudes of the
// terms summed (a float sum's rounding grows with it). A wrong layout or
// operand gives errors of the order of the values themselves.
class Check {
 public:
  explicit Check(std::string what) : what_(std::move(what)) {}
  void expect(double got, double want, double mag, const char* quantity, int64_t row, int col) {
    if (std::abs(got - want) <= 2e-5 * (mag + std::abs(want)) + 1e-6) return;
    if (bad_++ == 0)
      first_ = std::string(quantity) + "[" + std::to_string(row) + "][" + std::to_string(col) +
               "] = " + std::to_string(got) + ", want " + std::to_string(want);
  }
  void done() const {
    if (bad_ > 0)
      throw Error("benchmark check: " + what_ + " disagrees with its reference in " + std::to_string(bad_) +
                  " values; first: " + first_);
  }

 private:
  std::string what_, first_;
  int bad_ = 0;
};

double silu_ref(double z) { return z / (1 + std::exp(-z)); }
double silu_grad_ref(double z) {
  const double s = 1 / (1 + std::exp(-z));
  return s * (1 + z * (1 - s));
}

// Rows checked by the references: the first block, one in the middle, the last.
std::vector<int64_t> rows_to_check(int64_t rows) {
  std::vector<int64_t> r;
  for (int64_t i = 0; i < std::min<int64_t>(rows, kRowBlock); ++i) r.push_back(i);
  r.push_back(rows / 2);
  r.push_back(rows - 1);
  return r;
}

// One case of the suite: per-call counts, and one input set's size in floats.
struct Spec {
  std::string kernel;
  int64_t rows = 0;
  double items = 0;
  std::string unit = "row";
  double flops = 0, bytes = 0;
  std::size_t set_floats = 0;
};

// A row of the CPU suite as its spec describes it, not yet run.
Result result_of(const Spec& s) {
  Result r;
  r.suite = "cpu";
  r.kernel = s.kernel;
  r.size = s.rows;
  r.items = s.items;
  r.item_unit = s.unit;
  r.flops = s.flops;
  r.bytes = s.bytes;
  return r;
}

// Estimated seconds of one call, pessimistic (40% of the FMA peak, half the bandwidth).
double estimate_seconds(const Spec& s, const Ceilings& c) {
  return s.flops / (0.4 * c.compute_gflops * 1e9) + s.bytes / (0.5 * c.bandwidth_gbs * 1e9);
}

std::string skip_reason(const Spec& s, const Ceilings& c, const Options& o, double mem_bytes) {
  char buf[160];
  if (const double est = estimate_seconds(s, c); est > o.max_run_seconds) {
    std::snprintf(buf, sizeof buf, "about %.1f s a call, over --max-run-seconds %.1f", est, o.max_run_seconds);
    return buf;
  }
  if (mem_bytes > 0.5 * physical_memory_bytes()) {
    std::snprintf(buf, sizeof buf, "needs %.1f GB, over half of this machine's memory", mem_bytes / 1e9);
    return buf;
  }
  return "";
}

// Allocates the rotating input sets (fresh random values: fill(set, seed)),
// runs the kernel once on set 0 and checks it, then times it.
Result run_case(const Options& o, const Ceilings& c, const Spec& s, const std::function<void(float*)>& call,
                const std::function<void(float*)>& check, const std::function<void(float*, uint64_t)>& fill = {}) {
  Result r = result_of(s);
  const double set_bytes = double(s.set_floats) * sizeof(float);
  r.sets = rotation_sets(set_bytes, cpu_rotation_bytes(), o.rotate);
  r.skipped = skip_reason(s, c, o, r.sets * set_bytes);
  if (!r.skipped.empty()) return r;
  std::vector<Floats> sets;
  for (int k = 0; k < r.sets; ++k) {
    sets.emplace_back(s.set_floats);
    if (fill)
      fill(sets.back().data(), uint64_t(k) + 1);
    else
      fill_random(sets.back().data(), s.set_floats, uint64_t(k) + 1);
  }
  {
    NvtxRange phase("check");
    call(sets[0].data());
    check(sets[0].data());
  }
  r.seconds = repeat(o, s.kernel + " n=" + std::to_string(s.rows), [&](int i) {
    float* d = sets[std::size_t(i) % sets.size()].data();
    const auto t0 = Clock::now();
    call(d);
    return seconds_since(t0);
  });
  return r;
}

// ---- The network's layers, forward ----

// layer 0 with silu' kept for the backward pass (training), and hidden layers
// 1 and 2 likewise: h = silu(A W^T + b), g = silu'(A W^T + b).
//   FLOPs per row: 2 K 128 (K = 66: 16,896; K = 128: 32,768)
//   bytes per row: A (K floats) + h + g (2 x 128 floats): 1,288 B (K = 66), 1,536 B (K = 128)
//   -> 13 and 21 FLOP/byte: compute-bound; floor = FLOPs / FMA peak.
// The sampler's hidden layers drop g (bytes per row 1,024: 32 FLOP/byte) and run on 48-point tiles.
void bench_linear_silu(const Options& o, const Ceilings& c, const float* params, const cpu::TransposedWeights& wt,
                       int layer, bool with_grad, std::vector<Result>& out) {
  const int in = layer == 0 ? kInDim : kHidden;
  const int64_t lda = layer == 0 ? layers::in0_padded(kSeedNet) : kHidden;
  const float* w = layer == 0 ? wt.wt0.data() : layer == 1 ? wt.wt1.data() : wt.wt2.data();
  const float* bias = params + kLayers[layer].bias;
  const int block = with_grad ? kRowBlock : kSamplerTile;
  const std::string name = std::string(layer == 0 ? "layer0" : "hidden") + " linear+silu K=" + std::to_string(in) +
                           (with_grad ? " +silu'" : " (sampler)");
  if (!o.wants(name)) return;
  for (const int64_t rows : o.sizes) {
    Spec s{name,
           rows,
           double(rows),
           "row",
           2.0 * in * kHidden * rows,
           4.0 * rows * (in + (with_grad ? 2 : 1) * kHidden),
           std::size_t(rows) * (lda + 2 * kHidden)};
    // Set layout: A [rows][lda], h [rows][128], g [rows][128].
    auto parts = [rows, lda](float* d) {
      return std::array<float*, 3>{d, d + rows * lda, d + rows * lda + rows * kHidden};
    };
    out.push_back(run_case(
        o, c, s,
        [&](float* d) {
          const auto [A, h, g] = parts(d);
          for_row_blocks(rows, block, [&](int64_t r0, int n) {
            layers::linear_silu(n, A + r0 * lda, lda, in, w, bias, h + r0 * kHidden,
                             with_grad ? g + r0 * kHidden : nullptr);
          });
        },
        [&](float* d) {
          const auto [A, h, g] = parts(d);
          Check chk(name);
          for (const int64_t r : rows_to_check(rows))
            for (int j = 0; j < kHidden; ++j) {
              double z = bias[j], mag = std::abs(bias[j]);
              for (int k = 0; k < in; ++k) {
                z += double(A[r * lda + k]) * w[k * kHidden + j];
                mag += std::abs(double(A[r * lda + k]) * w[k * kHidden + j]);
              }
              chk.expect(h[r * kHidden + j], silu_ref(z), mag, "h", r, j);
              if (with_grad) chk.expect(g[r * kHidden + j], silu_grad_ref(z), mag, "g", r, j);
            }
          chk.done();
        }));
  }
}

// The output layer, eps = h3 W3^T + b3: 128 -> 2.
//   FLOPs per row: 2 x 128 x 2 = 512;  bytes per row: 512 in + 8 out = 520
//   -> 1 FLOP/byte: memory-bound from DRAM; floor = bytes / bandwidth.
void bench_output_layer(const Options& o, const Ceilings& c, const float* params, std::vector<Result>& out) {
  const std::string name = "output layer 128->2";
  if (!o.wants(name)) return;
  const float* w3 = params + kLayer3.weight;
  const float* b3 = params + kLayer3.bias;
  for (const int64_t rows : o.sizes) {
    Spec s{name, rows, double(rows), "row", 512.0 * rows, 520.0 * rows, std::size_t(rows) * (kHidden + 2)};
    out.push_back(run_case(
        o, c, s,
        [&](float* d) {
          for_row_blocks(rows, kRowBlock, [&](int64_t r0, int n) {
            layers::output_layer(n, d + r0 * kHidden, params + kLayer3.weight, params + kLayer3.bias, d + rows * kHidden + 2 * r0);
          });
        },
        [&](float* d) {
          Check chk(name);
          for (const int64_t r : rows_to_check(rows))
            for (int j = 0; j < 2; ++j) {
              double e = b3[j], mag = std::abs(b3[j]);
              for (int k = 0; k < kHidden; ++k) {
                e += double(d[r * kHidden + k]) * w3[j * kHidden + k];
                mag += std::abs(double(d[r * kHidden + k]) * w3[j * kHidden + k]);
              }
              chk.expect(d[rows * kHidden + 2 * r + j], e, mag, "eps", r, j);
            }
          chk.done();
        }));
  }
}

// ---- Backward ----

// dZ3 = (dout W3) * g3: 2 -> 128.
//   FLOPs per row: 128 x (mul + FMA + mul) = 512;  bytes per row: 8 + 512 (g3) + 512 (dZ3) = 1,032
//   -> 0.5 FLOP/byte: memory-bound; floor = bytes / bandwidth.
void bench_backward_output(const Options& o, const Ceilings& c, const float* params, std::vector<Result>& out) {
  const std::string name = "backward output 2->128 *silu'";
  if (!o.wants(name)) return;
  const float* w3 = params + kLayer3.weight;
  for (const int64_t rows : o.sizes) {
    Spec s{name, rows, double(rows), "row", 512.0 * rows, 1032.0 * rows, std::size_t(rows) * (2 + 2 * kHidden)};
    // Set layout: dout [rows][2], g3 [rows][128], dZ3 [rows][128].
    auto g3 = [rows](float* d) { return d + 2 * rows; };
    auto dz3 = [rows](float* d) { return d + 2 * rows + rows * kHidden; };
    out.push_back(run_case(
        o, c, s,
        [&](float* d) {
          for_row_blocks(rows, kRowBlock, [&](int64_t r0, int n) {
            layers::backward_output(n, d + 2 * r0, params + kLayer3.weight, g3(d) + r0 * kHidden, dz3(d) + r0 * kHidden);
          });
        },
        [&](float* d) {
          Check chk(name);
          for (const int64_t r : rows_to_check(rows))
            for (int k = 0; k < kHidden; ++k) {
              const double t0 = double(d[2 * r]) * w3[k], t1 = double(d[2 * r + 1]) * w3[kHidden + k];
              const double gk = g3(d)[r * kHidden + k];
              chk.expect(dz3(d)[r * kHidden + k], (t0 + t1) * gk, (std::abs(t0) + std::abs(t1)) * std::abs(gk), "dz3",
                         r, k);
            }
          chk.done();
        }));
  }
}

// dZ_prev = (dZ W) * g_prev, W the layer's own [128][128] weight.
//   FLOPs per row: 2 x 128 x 128 + 128 = 32,896;  bytes per row: 512 (dZ) + 512 (g) + 512 (dZ_prev) = 1,536
//   -> 21 FLOP/byte: compute-bound; floor = FLOPs / FMA peak.
void bench_backward_hidden(const Options& o, const Ceilings& c, const float* params, std::vector<Result>& out) {
  const std::string name = "backward hidden dZ W *silu'";
  if (!o.wants(name)) return;
  const float* w = params + kLayer2.weight;
  for (const int64_t rows : o.sizes) {
    Spec s{name, rows, double(rows), "row", 32896.0 * rows, 1536.0 * rows, std::size_t(rows) * 3 * kHidden};
    // Set layout: dZ, g_prev, dZ_prev, each [rows][128].
    const int64_t m = rows * kHidden;
    out.push_back(run_case(
        o, c, s,
        [&](float* d) {
          for_row_blocks(rows, kRowBlock, [&](int64_t r0, int n) {
            layers::backward_hidden(n, d + r0 * kHidden, w, d + m + r0 * kHidden, d + 2 * m + r0 * kHidden);
          });
        },
        [&](float* d) {
          Check chk(name);
          for (const int64_t r : rows_to_check(rows))
            for (int k = 0; k < kHidden; ++k) {
              double s_ = 0, mag = 0;
              for (int j = 0; j < kHidden; ++j) {
                s_ += double(d[r * kHidden + j]) * w[j * kHidden + k];
                mag += std::abs(double(d[r * kHidden + j]) * w[j * kHidden + k]);
              }
              const double gk = d[m + r * kHidden + k];
              chk.expect(d[2 * m + r * kHidden + k], s_ * gk, mag * std::abs(gk), "dz_prev", r, k);
            }
          chk.done();
        }));
  }
}

// Weight and bias gradients over the whole batch, dW = dZ^T A, db = sum of dZ's
// rows, split over 12-output tasks as the trainer splits them.
//   hidden (128 x 128): FLOPs per row 2 x 128 x 128 + 128 = 32,896; bytes per row 512 (dZ) + 512 (A) = 1,024
//   layer 0 (128 x 66): FLOPs per row 2 x 128 x 66 + 128 = 17,024;  bytes per row 512 + 264 = 776
//   output (2 x 128):   FLOPs per row 2 x 2 x 128 + 2 = 514;        bytes per row 8 + 512 = 520
// Compulsory traffic puts the first two at 22-32 FLOP/byte, but every task
// streams all of A again: with A beyond the caches (large batches) the
// traffic is ~11x that of dZ's columns and A, about 5 FLOP/byte -- expect
// these to fall off at 65,536 rows and beyond, where the floor (compulsory
// bytes) is not what limits them.
void bench_weight_grad(const Options& o, const Ceilings& c, int layer, std::vector<Result>& out) {
  const LayerShape& L = kLayers[layer];
  const int64_t lda = layer == 0 ? layers::in0_padded(kSeedNet) : kHidden;
  const std::string name = "weight grad dZ^T A " + std::to_string(L.out) + "x" + std::to_string(L.in);
  if (!o.wants(name)) return;
  std::vector<std::pair<int, int>> tasks;
  for (int o0 = 0; o0 < L.out; o0 += kOutTile) tasks.push_back({o0, std::min(o0 + kOutTile, L.out)});
  for (const int64_t rows : o.sizes) {
    if (rows > (int64_t(1) << 30)) continue;  // weight_grad counts rows in an int
    Spec s{name,
           rows,
           double(rows),
           "row",
           (2.0 * L.in + 1) * L.out * rows,
           4.0 * rows * (L.out + L.in),
           std::size_t(rows) * (L.out + lda) + std::size_t(L.out) * (L.in + 1)};
    // Set layout: dZ [rows][out], A [rows][lda], dW [out][in], db [out].
    const int64_t a_off = rows * L.out, dw_off = a_off + rows * lda, db_off = dw_off + int64_t(L.out) * L.in;
    out.push_back(run_case(
        o, c, s,
        [&](float* d) {
#pragma omp parallel for schedule(dynamic)
          for (std::size_t t = 0; t < tasks.size(); ++t)
            layers::weight_grad(int(rows), d, L.out, d + a_off, lda, L.in, tasks[t].first, tasks[t].second, d + dw_off,
                             d + db_off);
        },
        [&](float* d) {
          Check chk(name);
          const std::pair<int, int> spots[] = {
              {0, 0}, {L.out - 1, L.in - 1}, {L.out / 2, L.in / 3}, {std::min(13, L.out - 1), L.in - 2}, {1, 17}};
          for (const auto& [oo, k] : spots) {
            double s_ = 0, mag = 0, b = 0, bmag = 0;
            for (int64_t r = 0; r < rows; ++r) {
              const double t = double(d[r * L.out + oo]) * d[a_off + r * lda + k];
              s_ += t;
              mag += std::abs(t);
              b += d[r * L.out + oo];
              bmag += std::abs(d[r * L.out + oo]);
            }
            chk.expect(d[dw_off + int64_t(oo) * L.in + k], s_, mag, "dW", oo, k);
            chk.expect(d[db_off + oo], b, bmag, "db", oo, 0);
          }
          chk.done();
        }));
  }
}

// ---- The optimizer ----

// Adam over the flat buffer (41,858 parameters), the trainer's loop.
//   FLOPs per parameter ~13 (m: 3, v: 4, the update: sqrt, FMA, divide, multiply, subtract: 6);
//   bytes per parameter: reads p, m, v, g, writes p, m, v = 28 -> 0.5 FLOP/byte: memory-bound.
// In a training step the four arrays (670 KB) are still in L2/L3 from the
// gradient phase; rotated here, this is the DRAM case.
void bench_adam(const Options& o, const Ceilings& c, std::vector<Result>& out) {
  const std::string name = "adam flat buffer";
  if (!o.wants(name)) return;
  const int64_t n = int64_t(kParamCount);
  Spec s{name, n, double(n), "param", 13.0 * n, 28.0 * n, std::size_t(4 * n)};
  int64_t k = 0;
  out.push_back(run_case(
      o, c, s,
      [&](float* d) {
        const AdamStep step = AdamStep::at(++k, kLearningRate);
        float *p = d, *m = d + n, *v = d + 2 * n;
        const float* g = d + 3 * n;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) adam_update(p[i], m[i], v[i], g[i], step);
      },
      [&](float* d) {
        for (int64_t i = 0; i < n; ++i)
          if (!std::isfinite(d[i])) throw Error("benchmark check: Adam produced a non-finite parameter");
      },
      [n](float* d, uint64_t seed) {
        fill_random(d, std::size_t(2 * n), seed, 0.1f);                    // p, m
        fill_random(d + 2 * n, std::size_t(n), seed + 1000, 1e-3f, true);  // v: second moments are positive
        fill_random(d + 3 * n, std::size_t(n), seed + 2000, 1e-2f);        // g
      }));
}

// ---- Whole paths ----

// One training step at batch B through cpu::train, timed between the step
// callbacks: batch draw, forward, loss, backward, weight gradients, Adam and
// the W^T refresh. A fresh batch every step, as in training.
//   FLOPs per row: 231,936 (bench/NOTES.md);  bytes per row if nothing stayed
//   in cache: the 9 activation arrays and layer 0's inputs written and read
//   back once, 2 x (320 + 9 x 512) = 9,856 -> 24 FLOP/byte: compute-bound.
void bench_train_step(const Options& o, const Ceilings& c, const Schedule& sched, std::vector<Result>& out) {
  const std::string name = "train step (cpu::train)";
  if (!o.wants(name)) return;
  for (const int64_t rows : o.sizes) {
    const Spec s{name, rows, double(rows), "row", 231936.0 * rows, 9856.0 * rows + 28.0 * kParamCount, 0};
    Result r = result_of(s);
    r.skipped = skip_reason(s, c, o, 4928.0 * rows);
    if (r.skipped.empty() && rows > (int64_t(1) << 22)) r.skipped = "over the trainer's batch limit";
    if (!r.skipped.empty()) {
      out.push_back(r);
      continue;
    }
    // As many steps as min_time asks for, from the estimate; the first `warmup` are dropped.
    const double est = estimate_seconds(s, c);
    const int reps = std::clamp(int(std::ceil(o.min_time / est)), o.min_reps, o.max_reps);
    cpu::TrainConfig cfg;
    cfg.batch = int(rows);
    cfg.steps = std::max(o.warmup, 1) + reps;
    cpu::TrainState st = cpu::TrainState::fresh(7);
    std::vector<double> at;
    float last = 0;
    NvtxRange phase("timed");
    NvtxRange what((name + " n=" + std::to_string(rows)).c_str());
    at.push_back(0);
    const auto t0 = Clock::now();
    cpu::train(sched, cfg, st, [&](int64_t, float loss) {
      at.push_back(seconds_since(t0));
      last = loss;
    });
    if (!std::isfinite(last)) throw Error("benchmark check: the training step's loss is not finite");
    // The first interval also holds train()'s setup: always dropped.
    for (std::size_t i = std::size_t(std::max(o.warmup, 1)) + 1; i < at.size(); ++i)
      r.seconds.push_back(at[i] - at[i - 1]);
    out.push_back(r);
  }
}

// The sampler's whole chain, T = 500 reverse steps, for n points (cpu::sample:
// 48-point tiles over the threads), a new seed (new x_T and noise) each call.
//   FLOPs per point-step: 66,560 (layer 0's time term hoisted);  bytes: 8 per point written once
//   -> compute-bound; floor = FLOPs / FMA peak. ns/item is one point's reverse step.
// bf16 (AVX512_BF16): the hidden layers' 65,536 of those FLOPs on vdpbf16ps,
// whose peak (bf16_peak_gflops) is this row's ceiling.
// The smallest size is one tile per thread: the latency of a tile's chain.
void bench_sampler(const Options& o, const Ceilings& c, const Schedule& sched, const float* params,
                   cpu::CpuPrecision precision, std::vector<Result>& out) {
  const std::string name = "sampler chain T=" + std::to_string(sched.T) + " (cpu::sample" +
                           (precision == cpu::CpuPrecision::kBf16 ? ", bf16)" : ")");
  if (!o.wants(name)) return;
  std::vector<int64_t> sizes = {int64_t(kSamplerTile) * omp_get_max_threads()};
  for (const int64_t n : o.sizes)
    if (n != sizes[0]) sizes.push_back(n);
  for (const int64_t n : sizes) {
    const Spec s{name, n, double(n) * sched.T, "pt-step", 66560.0 * sched.T * n, 8.0 * n, 0};
    Result r = result_of(s);
    if (precision == cpu::CpuPrecision::kBf16) r.ceiling_gflops = bf16_peak_gflops();
    r.skipped = skip_reason(s, c, o, 8.0 * n);
    if (r.skipped.empty()) {
      std::vector<float> xy(2 * std::size_t(n));
      r.seconds = repeat(o, name + " n=" + std::to_string(n), [&](int i) {
        const auto t0 = Clock::now();
        cpu::sample(sched, params, uint64_t(i) + 11, 0, n, xy.data(), {}, precision);
        return seconds_since(t0);
      });
      for (const float v : xy)
        if (!std::isfinite(v)) throw Error("benchmark check: the sampler produced a non-finite point");
    }
    out.push_back(r);
  }
}

// ---- The likelihood (ddpm/likelihood.hpp) ----

// eps_theta(x, tau) of the seed's network in double, and d eps / d x beside it
// by forward-mode tangents (jac[2 a + b] = d eps_a / d x_b) where jac is given:
// written apart from the backend's tiles (tile_net.hpp). emb(tau) is the
// backend's float embedding (math.hpp), the network's input as the kernels see
// it; the rest is double.
void eps_ref(const float* p, double x0, double x1, float tau, double eps[2], double* jac) {
  std::vector<double> a(kInDim), da0(kInDim, 0.0), da1(kInDim, 0.0);
  a[0] = x0;
  a[1] = x1;
  da0[0] = 1;
  da1[1] = 1;
  for (int k = 0; k < kEmbDim; ++k) a[kDataDim + k] = timestep_embedding(tau, k);
  for (int l = 0; l < kNumLayers; ++l) {
    const LayerShape& L = kLayers[l];
    std::vector<double> z(L.out), dz0(L.out), dz1(L.out);
    for (int o = 0; o < L.out; ++o) {
      double s = p[L.bias + o], s0 = 0, s1 = 0;
      const float* w = p + L.weight + std::size_t(o) * L.in;
      for (int k = 0; k < L.in; ++k) {
        s += double(w[k]) * a[k];
        s0 += double(w[k]) * da0[k];
        s1 += double(w[k]) * da1[k];
      }
      const bool hidden = l + 1 < kNumLayers;
      z[o] = hidden ? silu_ref(s) : s;
      dz0[o] = hidden ? silu_grad_ref(s) * s0 : s0;
      dz1[o] = hidden ? silu_grad_ref(s) * s1 : s1;
    }
    a = std::move(z);
    da0 = std::move(dz0);
    da1 = std::move(dz1);
  }
  eps[0] = a[0];
  eps[1] = a[1];
  if (jac) {
    jac[0] = da0[0];
    jac[1] = da1[0];
    jac[2] = da0[1];
    jac[3] = da1[1];
  }
}

// |got - want| <= tol (1 + |want|) for each value, as the GPU suite's check.
void expect_near(const std::string& what, const char* quantity, int64_t point, double got, double want, double tol) {
  if (!(std::abs(got - want) <= tol * (1 + std::abs(want))))
    throw Error("benchmark check: " + what + " disagrees with its double-precision reference: " + quantity + "[" +
                std::to_string(point) + "] = " + std::to_string(got) + ", want " + std::to_string(want));
}

// Both likelihood rows run at two of the 48-point tiles per thread: every
// thread busy, no tile left over, and ~0.1 s a call on any machine (--sizes
// does not apply: at 2,048 points a call takes ~0.9 s (the bound) and ~1.3 s
// (the ODE) on a 2-core VM, and the two rows' warm-up and 5 timed calls in
// each build would add ~25 s to the suite; here they add ~4 s).
int64_t likelihood_points() { return 2 * int64_t(cpu::kLikelihoodTile) * omp_get_max_threads(); }

// The bound's chain, T = 500 evaluations a point (cpu::vlb_sums: 48-point
// tiles over the threads), a new seed (new eps draws) each call.
//   FLOPs per point-step: 66,560, the sampler's forward pass (layer 0's time
//   term hoisted: 2 (2*128 + 2*128*128 + 128*2)), q_sample and the weighted
//   error (~12) not counted; bytes: x_0 read, the two sums written = 16 a point
//   -> compute-bound; floor = FLOPs / FMA peak. ns/item is one point-step.
// Checked first against the bound summed in double (eps_ref) on the same
// Philox draws, for points of a whole and a partial tile at an offset first.
void bench_vlb(const Options& o, const Ceilings& c, const Schedule& sched, const float* params,
               std::vector<Result>& out) {
  const std::string name = "vlb_sums T=" + std::to_string(sched.T);
  if (!o.wants(name)) return;
  const VlbTable table = vlb_table(sched, Variance::kPosterior);
  {
    NvtxRange phase("check");
    const int64_t n = 2 * cpu::kLikelihoodTile + 5, first = 5000;
    const uint64_t seed = 29;
    std::vector<float> x0(2 * std::size_t(n));
    fill_random(x0.data(), x0.size(), 51, 1.5f);
    std::vector<VlbSums> got(n);
    cpu::vlb_sums(sched, params, table, seed, first, n, x0.data(), got.data());
    for (const int64_t i : {int64_t(0), int64_t(cpu::kLikelihoodTile) - 1, int64_t(cpu::kLikelihoodTile), n - 1}) {
      NormalPairs rng{};
      philox_init(&rng.state, seed, Stream::kLikelihood, uint64_t(first + i));
      double steps = 0, decoder = 0;
      for (int t = 1; t <= sched.T; ++t) {
        float z0, z1;
        rng.next(z0, z1);
        const VlbTerm& term = table.terms[t];
        double e[2];
        eps_ref(params, q_sample(x0[2 * i], z0, term.forward), q_sample(x0[2 * i + 1], z1, term.forward), float(t), e,
                nullptr);
        const double err = term.weight * ((z0 - e[0]) * (z0 - e[0]) + (z1 - e[1]) * (z1 - e[1]));
        (t == 1 ? decoder : steps) += err;
      }
      // A float sum of 499 positive terms, each from a float network: within ~7e-7 here.
      expect_near(name, "steps", i, got[i].steps, steps, 2e-5);
      expect_near(name, "decoder", i, got[i].decoder, decoder, 2e-5);
    }
  }
  const int64_t n = likelihood_points();
  const Spec s{name, n, double(n) * sched.T, "pt-step", 66560.0 * sched.T * n, 16.0 * n, 0};
  Result r = result_of(s);
  r.skipped = skip_reason(s, c, o, 24.0 * n);
  if (r.skipped.empty()) {
    std::vector<float> x0(2 * std::size_t(n));
    fill_random(x0.data(), x0.size(), 52, 1.5f);
    std::vector<VlbSums> sums(n);
    r.seconds = repeat(o, name + " n=" + std::to_string(n), [&](int i) {
      const auto t0 = Clock::now();
      cpu::vlb_sums(sched, params, table, uint64_t(i) + 1, 0, n, x0.data(), sums.data());
      return seconds_since(t0);
    });
    for (const VlbSums& v : sums)
      if (!std::isfinite(v.steps) || !std::isfinite(v.decoder))
        throw Error("benchmark check: the bound's sums are not finite");
  }
  out.push_back(r);
}

// The probability-flow ODE through the RK4 table, 64 steps = 256 stages a
// point (cpu::ode_end_states: 48-point tiles over the threads).
//   FLOPs per point-stage: the forward pass and its two tangents through the
//   same MLP: the hidden layers on three rows, 3 * 2 * 2*128*128 = 196,608;
//   layer 0, 2 * 2*128 (x) + the tangents' 2*128 products; the output layer's
//   eps and the Jacobian's diagonal, 4 * 2*128: 198,400 (3.0x the forward
//   pass, as the GPU row counts it); SiLU and silu' not counted; bytes: 8 read
//   + 12 written a point -> compute-bound; floor = FLOPs / FMA peak. ns/item is
//   one point-stage.
// Checked first against the same table integrated in double (eps_ref with its
// forward-mode Jacobian) for points of a whole and a partial tile.
void bench_ode(const Options& o, const Ceilings& c, const Schedule& sched, const float* params,
               std::vector<Result>& out) {
  const int steps = kOdeDefaultSteps;
  const std::string name = "ode_end_states RK4 " + std::to_string(steps) + " steps";
  if (!o.wants(name)) return;
  const OdeTable table = ode_rk4_table(sched, steps);
  const int64_t stages = int64_t(table.stages.size());
  {
    NvtxRange phase("check");
    const int64_t n = cpu::kLikelihoodTile + 5;
    std::vector<float> x0(2 * std::size_t(n));
    fill_random(x0.data(), x0.size(), 53, 1.5f);
    std::vector<float> got(3 * std::size_t(n));
    cpu::ode_end_states(params, table, n, x0.data(), got.data());
    for (const int64_t i : {int64_t(0), int64_t(cpu::kLikelihoodTile) - 1, n - 1}) {
      double y[2] = {x0[2 * i], x0[2 * i + 1]}, l = 0, g[3] = {0, 0, 0}, acc[3] = {0, 0, 0};
      for (const OdeStage& st : table.stages) {
        double e[2], jac[4];
        eps_ref(params, st.x_scale * (y[0] + st.in_coef * g[0]), st.x_scale * (y[1] + st.in_coef * g[1]), st.tau, e,
                jac);
        g[0] = e[0];
        g[1] = e[1];
        g[2] = st.x_scale * (jac[0] + jac[3]);
        for (int k = 0; k < 3; ++k) acc[k] += st.out_coef * g[k];
        if (st.ends_step) {
          y[0] += acc[0];
          y[1] += acc[1];
          l += acc[2];
          acc[0] = acc[1] = acc[2] = 0;
        }
      }
      // 256 float stages against double ones: within ~2e-7 here.
      expect_near(name, "y_T0", i, got[3 * i], y[0], 1e-5);
      expect_near(name, "y_T1", i, got[3 * i + 1], y[1], 1e-5);
      expect_near(name, "l", i, got[3 * i + 2], l, 1e-5);
    }
  }
  const int64_t n = likelihood_points();
  const Spec s{name, n, double(n) * double(stages), "pt-stage", 198400.0 * double(stages) * n, 20.0 * n, 0};
  Result r = result_of(s);
  r.skipped = skip_reason(s, c, o, 20.0 * n);
  if (r.skipped.empty()) {
    std::vector<float> x0(2 * std::size_t(n)), end(3 * std::size_t(n));
    fill_random(x0.data(), x0.size(), 54, 1.5f);
    r.seconds = repeat(o, name + " n=" + std::to_string(n), [&](int) {
      const auto t0 = Clock::now();
      cpu::ode_end_states(params, table, n, x0.data(), end.data());
      return seconds_since(t0);
    });
    for (const float v : end)
      if (!std::isfinite(v)) throw Error("benchmark check: the ODE's end states are not finite");
  }
  out.push_back(r);
}

}  // namespace

// 12 independent FMA chains per thread, on all OpenMP threads: the rate of
// this build's vector width. (AVX-512 doubles it only on cores with two
// 512-bit FMA units; Zen 4 splits a 512-bit FMA in two 256-bit halves.)
double fma_peak_gflops() {
  const long iters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    float sink = 0;
#pragma omp parallel reduction(+ : sink)
    {
      simd::vf acc[12];
      for (int i = 0; i < 12; ++i) acc[i] = simd::set1(float(i + omp_get_thread_num()));
      const simd::vf a = simd::set1(0.999999f), b = simd::set1(1e-7f);
      for (long k = 0; k < iters / (simd::kLanes / 8); ++k)
        for (int i = 0; i < 12; ++i) acc[i] = simd::fmadd(acc[i], a, b);
      alignas(64) float v[simd::kLanes];
      for (int i = 1; i < 12; ++i) acc[0] = simd::add(acc[0], acc[i]);
      simd::store(v, acc[0]);
      sink += v[0];
    }
    const double secs = seconds_since(t0);
    if (sink == 12345.f) std::puts("");
    best = std::max(best, double(iters / (simd::kLanes / 8)) * 12 * 2 * simd::kLanes * omp_get_max_threads() / secs / 1e9);
  }
  return best;
}

#if DDPM_CPU_ISA_AVX512
// The same with vdpbf16ps (two bf16 products summed into each fp32 lane: 64
// FLOPs an instruction); 0 where the CPU lacks AVX512_BF16.
double bf16_peak_gflops() {
  if (!cpu::cpu_supports_bf16()) return 0;
  const long iters = 10'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    float sink = 0;
#pragma omp parallel reduction(+ : sink)
    {
      __m512 acc[12];
      for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(float(i + omp_get_thread_num()));
      const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
      for (long k = 0; k < iters; ++k)
        for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, a);
      for (int i = 1; i < 12; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
      sink += _mm512_reduce_add_ps(acc[0]);
    }
    const double secs = seconds_since(t0);
    if (sink == 12345.f) std::puts("");
    best = std::max(best, double(iters) * 12 * 64 * omp_get_max_threads() / secs / 1e9);
  }
  return best;
}
#else
double bf16_peak_gflops() { return 0; }
#endif

std::vector<Result> run_cpu_kernels(const Options& o, const Ceilings& c) {
  const Schedule sched = Schedule::linear();
  const std::vector<float> params = cpu::init_params(3);
  cpu::TransposedWeights wt(kSeedNet);
  wt.refresh(params.data());
  std::vector<Result> rows;
  bench_linear_silu(o, c, params.data(), wt, 0, true, rows);
  bench_linear_silu(o, c, params.data(), wt, 1, true, rows);
  bench_linear_silu(o, c, params.data(), wt, 1, false, rows);
  bench_output_layer(o, c, params.data(), rows);
  bench_backward_output(o, c, params.data(), rows);
  bench_backward_hidden(o, c, params.data(), rows);
  bench_weight_grad(o, c, 1, rows);
  bench_weight_grad(o, c, 0, rows);
  bench_weight_grad(o, c, 3, rows);
  bench_adam(o, c, rows);
  bench_train_step(o, c, sched, rows);
  bench_sampler(o, c, sched, params.data(), cpu::CpuPrecision::kFp32, rows);
#if DDPM_CPU_ISA_AVX512
  if (cpu::cpu_supports_bf16()) bench_sampler(o, c, sched, params.data(), cpu::CpuPrecision::kBf16, rows);
#endif
  bench_vlb(o, c, sched, params.data(), rows);
  bench_ode(o, c, sched, params.data(), rows);
  return rows;
}

}  // namespace ddpm::bench::DDPM_CPU_ISA

DDPM_CPU_ISA_END
