// The checks of the harness's test kernels, written once and run twice: on
// the emulation (emu_harness_test.cpp) and on a GPU (gpu_twin_test.cpp). A
// Backend runs one kernel on host vectors; the checks build the inputs,
// compute the expected results on the host and compare.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "selftest/harness_kernels.hpp"

namespace ddpm::harness {

enum class MmaKind { kTf32, kBf16 };

class Backend {
 public:
  virtual ~Backend() = default;
  // out has kReduceGrid entries.
  virtual void block_reduce_sum(const std::vector<float>& in, std::vector<float>& out, bool dynamic_smem) = 0;
  // in and out have kScanGrid * kScanBlock entries.
  virtual void block_scan(const std::vector<int>& in, std::vector<int>& out) = 0;
  // in has kWarpOpsGrid * kWarpOpsBlock entries, out kWarpOpCount times as many.
  virtual void warp_ops(const std::vector<int>& in, std::vector<int>& out) = 0;
  virtual void tiled_matmul(const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c, int m,
                            int n, int k) = 0;
  // kMmaProblems problems, back to back: a 16xK, b Kx8, c and d 16x8, row-major.
  virtual void mma(MmaKind kind, bool wrong_layout, const std::vector<float>& a, const std::vector<float>& b,
                   const std::vector<float>& c, std::vector<float>& d) = 0;
  virtual void mma_probe(MmaKind kind, std::vector<float>& d) = 0;
  virtual void atomics(const std::vector<int>& in, AtomicsOut& out, std::vector<int>& exchange_old) = 0;
  virtual void neighbor_sum(const std::vector<float>& in, std::vector<float>& out) = 0;
};

namespace checks {

inline std::vector<float> uniform_floats(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline std::vector<int> uniform_ints(std::size_t n, int lo, int hi, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline void check_block_reduce(Backend& backend, bool dynamic_smem) {
  const int n = kReduceGrid * kReduceBlock * 3 + 17;
  const auto in = uniform_floats(n, -1.0f, 1.0f, 11);
  std::vector<float> out(kReduceGrid, std::numeric_limits<float>::quiet_NaN());
  backend.block_reduce_sum(in, out, dynamic_smem);
  for (int b = 0; b < kReduceGrid; ++b) {
    double sum = 0.0, magnitude = 0.0;
    for (int t = 0; t < kReduceBlock; ++t) {
      for (int i = b * kReduceBlock + t; i < n; i += kReduceGrid * kReduceBlock) {
        sum += in[i];
        magnitude += std::fabs(in[i]);
      }
    }
    EXPECT_NEAR(out[b], sum, 1e-5 * magnitude + 1e-6) << "block " << b;
  }
}

inline void check_block_scan(Backend& backend) {
  const int n = kScanGrid * kScanBlock;
  const auto in = uniform_ints(n, 0, 9, 12);
  std::vector<int> out(n, -1);
  backend.block_scan(in, out);
  for (int b = 0; b < kScanGrid; ++b) {
    int running = 0;
    for (int t = 0; t < kScanBlock; ++t) {
      const int i = b * kScanBlock + t;
      running += in[i];
      ASSERT_EQ(out[i], running) << "block " << b << " thread " << t;
    }
  }
}

// The expected result of every warp primitive, from the CUDA Programming
// Guide's and the PTX ISA's definitions.
inline std::vector<int> expected_warp_ops(const std::vector<int>& in) {
  const int n = kWarpOpsBlock * kWarpOpsGrid;
  std::vector<int> out(static_cast<std::size_t>(kWarpOpCount) * n);
  for (int b = 0; b < kWarpOpsGrid; ++b) {
    int block_odd = 0;
    for (int t = 0; t < kWarpOpsBlock; ++t) block_odd += in[b * kWarpOpsBlock + t] & 1;
    for (int w = 0; w < kWarpOpsBlock / 32; ++w) {
      const int base = b * kWarpOpsBlock + w * 32;
      const int* v = &in[base];
      int total = 0;
      unsigned odd = 0;
      bool any_above = false, all_non_negative = true;
      for (int l = 0; l < 32; ++l) {
        total += v[l];
        if (v[l] & 1) odd |= 1u << l;
        any_above = any_above || v[l] > 90;
        all_non_negative = all_non_negative && v[l] >= 0;
      }
      int t[32];  // tree sum with __shfl_down_sync: lanes past the end read their own value
      for (int l = 0; l < 32; ++l) t[l] = v[l];
      for (int d = 16; d >= 1; d /= 2) {
        int next[32];
        for (int l = 0; l < 32; ++l) next[l] = t[l] + (l + d < 32 ? t[l + d] : t[l]);
        std::memcpy(t, next, sizeof t);
      }
      for (int l = 0; l < 32; ++l) {
        const int i = base + l;
        auto at = [&](WarpOp op) -> int& { return out[static_cast<std::size_t>(op) * n + i]; };
        at(kShflXorSum) = total;
        at(kShflDownSum) = t[l];
        at(kShflBroadcast) = v[(b * 5 + 3) % 32];
        at(kShflWidth8) = v[(l & ~7) + 2];
        at(kShflUpWidth16) = (l % 16) >= 3 ? v[l - 3] : v[l];
        const int partner = l ^ 4;  // a later group of four is out of reach: own value
        at(kShflXorWidth4) = v[l] + (partner <= (l & ~3) + 3 ? v[partner] : v[l]);
        at(kBallotOdd) = static_cast<int>(odd);
        at(kAnyAbove) = any_above ? 1 : 0;
        at(kAllNonNegative) = all_non_negative ? 1 : 0;
        unsigned same = 0;
        for (int o = 0; o < 32; ++o) {
          if (v[o] % 4 == v[l] % 4) same |= 1u << o;
        }
        at(kMatchAny) = static_cast<int>(same);
        at(kReduceAdd) = total;
        at(kSyncthreadsCount) = block_odd;
      }
    }
  }
  return out;
}

inline void check_warp_ops(Backend& backend) {
  static const char* const kNames[kWarpOpCount] = {
      "__shfl_xor_sync sum", "__shfl_down_sync sum", "__shfl_sync broadcast", "__shfl_sync width 8",
      "__shfl_up_sync width 16", "__shfl_xor_sync width 4", "__ballot_sync", "__any_sync", "__all_sync",
      "__match_any_sync", "__reduce_add_sync", "__syncthreads_count"};
  const int n = kWarpOpsBlock * kWarpOpsGrid;
  const auto in = uniform_ints(n, 0, 99, 13);
  std::vector<int> out(static_cast<std::size_t>(kWarpOpCount) * n, -12345);
  backend.warp_ops(in, out);
  const auto expected = expected_warp_ops(in);
  for (int op = 0; op < kWarpOpCount; ++op) {
    int mismatches = 0;
    for (int i = 0; i < n; ++i) {
      const std::size_t k = static_cast<std::size_t>(op) * n + i;
      if (out[k] != expected[k] && ++mismatches <= 3) {
        ADD_FAILURE() << kNames[op] << ": thread " << i << " (lane " << i % 32 << ") got " << out[k]
                      << ", expected " << expected[k];
      }
    }
    EXPECT_EQ(mismatches, 0) << kNames[op];
  }
}

inline void check_tiled_matmul(Backend& backend) {
  const int m = 40, n = 24, k = 36;  // not multiples of the tile
  const auto a = uniform_floats(static_cast<std::size_t>(m) * k, -1.0f, 1.0f, 14);
  const auto b = uniform_floats(static_cast<std::size_t>(k) * n, -1.0f, 1.0f, 15);
  std::vector<float> c(static_cast<std::size_t>(m) * n, std::numeric_limits<float>::quiet_NaN());
  backend.tiled_matmul(a, b, c, m, n, k);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double sum = 0.0, magnitude = 0.0;
      for (int kk = 0; kk < k; ++kk) {
        sum += static_cast<double>(a[i * k + kk]) * b[kk * n + j];
        magnitude += std::fabs(static_cast<double>(a[i * k + kk]) * b[kk * n + j]);
      }
      ASSERT_NEAR(c[i * n + j], sum, 1e-5 * magnitude + 1e-6) << "C(" << i << ", " << j << ")";
    }
  }
}

// Input rounding of the tensor cores' formats, written out for the reference.
inline float round_tf32(float x) {  // cvt.rna.tf32.f32: nearest, ties away
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&x, &u, sizeof u);
  return x;
}
inline float round_bf16(float x) {  // nearest, ties to even
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&x, &u, sizeof u);
  return x;
}

inline int mma_k(MmaKind kind) { return kind == MmaKind::kTf32 ? kMmaTf32K : kMmaBf16K; }

// Largest error of d against the plain product of the rounded inputs, in
// units of the tolerance (a result within tolerance scores at most 1).
inline double mma_error(MmaKind kind, const std::vector<float>& a, const std::vector<float>& b,
                        const std::vector<float>& c, const std::vector<float>& d, std::string* where) {
  const int k = mma_k(kind);
  auto round = [kind](float x) { return kind == MmaKind::kTf32 ? round_tf32(x) : round_bf16(x); };
  double worst = 0.0;
  for (int p = 0; p < kMmaProblems; ++p) {
    for (int i = 0; i < 16; ++i) {
      for (int j = 0; j < 8; ++j) {
        double sum = c[p * 128 + i * 8 + j], magnitude = std::fabs(sum);
        for (int kk = 0; kk < k; ++kk) {
          const double term = static_cast<double>(round(a[p * 16 * k + i * k + kk])) * round(b[p * k * 8 + kk * 8 + j]);
          sum += term;
          magnitude += std::fabs(term);
        }
        const double error = std::fabs(d[p * 128 + i * 8 + j] - sum) / (1e-5 * magnitude + 1e-6);
        if (!(error <= worst)) {  // NaN counts as the worst
          worst = std::isnan(error) ? std::numeric_limits<double>::infinity() : error;
          if (where) {
            std::ostringstream s;
            s << "problem " << p << " D(" << i << ", " << j << ") = " << d[p * 128 + i * 8 + j] << ", expected "
              << sum;
            *where = s.str();
          }
        }
      }
    }
  }
  return worst;
}

inline void mma_inputs(MmaKind kind, std::vector<float>& a, std::vector<float>& b, std::vector<float>& c) {
  const int k = mma_k(kind);
  const unsigned seed = kind == MmaKind::kTf32 ? 16 : 17;
  a = uniform_floats(static_cast<std::size_t>(kMmaProblems) * 16 * k, -2.0f, 2.0f, seed);
  b = uniform_floats(static_cast<std::size_t>(kMmaProblems) * k * 8, -2.0f, 2.0f, seed + 100);
  c = uniform_floats(static_cast<std::size_t>(kMmaProblems) * 16 * 8, -1.0f, 1.0f, seed + 200);
}

inline void check_mma_product(Backend& backend, MmaKind kind) {
  std::vector<float> a, b, c;
  mma_inputs(kind, a, b, c);
  std::vector<float> d(static_cast<std::size_t>(kMmaProblems) * 128, std::numeric_limits<float>::quiet_NaN());
  backend.mma(kind, false, a, b, c, d);
  std::string where;
  EXPECT_LE(mma_error(kind, a, b, c, d, &where), 1.0) << where;
}

// The same product with two fragment registers swapped must come out wrong.
inline void check_mma_wrong_layout_detected(Backend& backend, MmaKind kind) {
  std::vector<float> a, b, c;
  mma_inputs(kind, a, b, c);
  std::vector<float> d(static_cast<std::size_t>(kMmaProblems) * 128, std::numeric_limits<float>::quiet_NaN());
  backend.mma(kind, true, a, b, c, d);
  EXPECT_GT(mma_error(kind, a, b, c, d, nullptr), 1000.0) << "a wrong lane mapping went unnoticed";
}

// Each probe sets one element of A, B or C to one (see harness_kernels.cuh);
// D must be exactly the plain product. A mismatch names the element and the
// lane and register the PTX layout assigns it to.
inline void check_mma_probe(Backend& backend, MmaKind kind) {
  const bool tf32 = kind == MmaKind::kTf32;
  const int k = tf32 ? 8 : 16;
  const int count = tf32 ? kProbeTf32Count : kProbeBf16Count;
  std::vector<float> d(static_cast<std::size_t>(count) * 128, std::numeric_limits<float>::quiet_NaN());
  backend.mma_probe(kind, d);

  const int a_probes = 16 * k, b_probes = k * 8;
  int failures = 0;
  for (int p = 0; p < count && failures < 8; ++p) {
    float a[16][16] = {}, b[16][8] = {}, c[16][8] = {};
    std::string element;
    std::ostringstream s;
    if (p < a_probes) {
      const int r = p / k, col = p % k;
      for (int kk = 0; kk < k; ++kk)
        for (int j = 0; j < 8; ++j) b[kk][j] = static_cast<float>(8 * kk + j + 1);
      a[r][col] = 1.0f;
      const int g = r % 8, half = r / 8;
      if (tf32) {
        s << "A(" << r << ", " << col << ") in lane " << g * 4 + col % 4 << " register a" << (half + 2 * (col / 4));
      } else {
        const int reg = half + 2 * (col / 8);
        s << "A(" << r << ", " << col << ") in lane " << g * 4 + (col % 8) / 2 << " register a" << reg << ", "
          << (col % 2 ? "high" : "low") << " half";
      }
    } else if (p < a_probes + b_probes) {
      const int q = p - a_probes, r = q / 8, col = q % 8;
      for (int i = 0; i < 16; ++i)
        for (int kk = 0; kk < k; ++kk) a[i][kk] = static_cast<float>(k * i + kk + 1);
      b[r][col] = 1.0f;
      if (tf32) {
        s << "B(" << r << ", " << col << ") in lane " << col * 4 + r % 4 << " register b" << r / 4;
      } else {
        s << "B(" << r << ", " << col << ") in lane " << col * 4 + (r % 8) / 2 << " register b" << r / 8 << ", "
          << (r % 2 ? "high" : "low") << " half";
      }
    } else {
      const int q = p - a_probes - b_probes, r = q / 8, col = q % 8;
      c[r][col] = 1.0f;
      s << "C(" << r << ", " << col << ") in lane " << (r % 8) * 4 + col / 2 << " register c" << 2 * (r / 8) + col % 2;
    }
    element = s.str();
    for (int i = 0; i < 16; ++i) {
      for (int j = 0; j < 8; ++j) {
        float expected = c[i][j];
        for (int kk = 0; kk < k; ++kk) expected += a[i][kk] * b[kk][j];
        const float got = d[static_cast<std::size_t>(p) * 128 + i * 8 + j];
        if (got != expected) {
          ADD_FAILURE() << (tf32 ? "m16n8k8.tf32" : "m16n8k16.bf16") << " probe of " << element << ": D(" << i
                        << ", " << j << ") = " << got << ", expected " << expected;
          ++failures;
          i = 16;
          break;
        }
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

inline AtomicsOut atomics_initial() {
  AtomicsOut out{};
  out.max = std::numeric_limits<int>::min();
  out.min = std::numeric_limits<int>::max();
  out.and_bits = 0xffffffffu;
  out.exchanged = -1;
  return out;
}

inline void check_atomics(Backend& backend) {
  const auto in = uniform_ints(kAtomicsThreads, 0, 999, 18);
  AtomicsOut out = atomics_initial();
  std::vector<int> exchange_old(kAtomicsThreads, -2);
  backend.atomics(in, out, exchange_old);

  int histogram[kHistogramBins] = {};
  long long sum = 0;
  int max = std::numeric_limits<int>::min(), min = std::numeric_limits<int>::max();
  unsigned or_bits = 0, xor_bits = 0;
  for (int v : in) {
    ++histogram[v % kHistogramBins];
    sum += v;
    max = std::max(max, v);
    min = std::min(min, v);
    or_bits |= 1u << (v % 32);
    xor_bits ^= static_cast<unsigned>(v) * 2654435761u;
  }
  for (int b = 0; b < kHistogramBins; ++b) EXPECT_EQ(out.histogram[b], histogram[b]) << "bin " << b;
  EXPECT_EQ(out.float_sum, static_cast<float>(sum));  // integers below 2^24: exact in any order
  EXPECT_EQ(out.double_sum, 0.25 * static_cast<double>(sum));
  EXPECT_EQ(out.u64_sum, static_cast<unsigned long long>(sum) << 20);
  EXPECT_EQ(out.cas_sum, sum);
  EXPECT_EQ(out.max, max);
  EXPECT_EQ(out.min, min);
  EXPECT_EQ(out.inc, static_cast<unsigned>(kAtomicsThreads % (kIncLimit + 1)));
  EXPECT_EQ(out.sub, -sum);
  EXPECT_EQ(out.or_bits, or_bits);
  EXPECT_EQ(out.xor_bits, xor_bits);
  EXPECT_EQ(out.and_bits, ~or_bits);
  // atomicExch hands every value on exactly once: the old values and the
  // final one are the initial -1 and every thread id.
  std::vector<int> seen(exchange_old);
  seen.push_back(out.exchanged);
  std::sort(seen.begin(), seen.end());
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kAtomicsThreads) + 1);
  EXPECT_EQ(seen[0], -1);
  for (int i = 0; i < kAtomicsThreads; ++i) {
    ASSERT_EQ(seen[i + 1], i) << "atomicExch lost or duplicated a value";
  }
}

inline void check_neighbor_sum(Backend& backend) {
  const int n = kNeighborGrid * kNeighborBlock;
  const auto in = uniform_floats(n, -1.0f, 1.0f, 19);
  std::vector<float> out(n, std::numeric_limits<float>::quiet_NaN());
  backend.neighbor_sum(in, out);
  for (int b = 0; b < kNeighborGrid; ++b) {
    for (int t = 0; t < kNeighborBlock; ++t) {
      const int i = b * kNeighborBlock + t;
      ASSERT_EQ(out[i], in[i] + in[b * kNeighborBlock + (t + 1) % kNeighborBlock]) << "thread " << i;
    }
  }
}

}  // namespace checks
}  // namespace ddpm::harness
