#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>

#include "ddpm/params.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"

namespace ddpm {
namespace {

TEST(Params, LayoutIsContiguousPyTorchOrder) {
  std::size_t next = 0;
  const int ins[] = {66, 128, 128, 128}, outs[] = {128, 128, 128, 2};
  for (int l = 0; l < kNumLayers; ++l) {
    EXPECT_EQ(kLayers[l].in, ins[l]);
    EXPECT_EQ(kLayers[l].out, outs[l]);
    EXPECT_EQ(kLayers[l].weight, next);
    EXPECT_EQ(kLayers[l].bias, next + std::size_t(ins[l]) * outs[l]);
    next = kLayers[l].bias + outs[l];
  }
  EXPECT_EQ(next, kParamCount);
}

TEST(Params, InitIsUniformInPlusMinusOneOverSqrtFanIn) {
  const uint64_t seed = std::random_device{}();
  const std::vector<float> p = cpu::init_params(seed);
  ASSERT_EQ(p.size(), kParamCount);
  for (const LayerShape& l : kLayers) {
    const double bound = 1 / std::sqrt(double(l.in));
    for (auto [offset, count] : {std::pair{l.weight, std::size_t(l.in) * l.out}, std::pair{l.bias, std::size_t(l.out)}}) {
      double sum = 0, sq = 0;
      for (std::size_t i = 0; i < count; ++i) {
        const float v = p[offset + i];
        ASSERT_LE(std::abs(v), bound * (1 + 1e-6)) << l.weight_name;
        sum += v;
        sq += v * v;
      }
      if (count >= 128) {  // U(-b, b): mean 0, variance b^2 / 3
        const double var = bound * bound / 3;
        EXPECT_NEAR(sum / count, 0, 5 * std::sqrt(var / count)) << l.weight_name;
        EXPECT_NEAR(sq / count, var, 6 * var * std::sqrt(0.8 / count)) << l.weight_name;
      }
    }
  }
  EXPECT_EQ(cpu::init_params(seed), p);
  EXPECT_NE(cpu::init_params(seed + 1), p);
}

TEST(Rng, SubsequencesSeparatePurposesAndItems) {
  std::set<std::vector<float>> seen;
  for (Stream s : {Stream::kInit, Stream::kTrainBatch, Stream::kSample, Stream::kForwardProcess})
    for (uint64_t item : {0ull, 1ull, 1ull << 40}) {
      Philox st;
      philox_init(&st, 7, s, item);
      const float4 n = curand_normal4(&st);
      EXPECT_TRUE(seen.insert({n.x, n.y, n.z, n.w}).second);
    }
}

TEST(Rng, NormalPairsConsumeNormal4InOrder) {
  Philox a;
  philox_init(&a, 11, Stream::kSample, 5);
  NormalPairs pairs{};
  philox_init(&pairs.state, 11, Stream::kSample, 5);
  for (int i = 0; i < 10; ++i) {
    const float4 want = curand_normal4(&a);
    float x, y, z, w;
    pairs.next(x, y);
    pairs.next(z, w);
    ASSERT_EQ(x, want.x);
    ASSERT_EQ(y, want.y);
    ASSERT_EQ(z, want.z);
    ASSERT_EQ(w, want.w);
  }
}

// The host's normals are Box-Muller of the Philox words to within float
// rounding (what rng.hpp states; the device's, made with __sincosf, are held
// to the CPU's by the GPU twins' tolerances). The uniforms u and v are part
// of cuRAND's definition: a word times 2^-32 (times 2 pi for v), plus half a
// step, in float. Near u = 1 that float rounding alone moves the radius
// r = sqrt(-2 log u) by 2^-25 / r, so the double reference takes the same
// float u and v, and what is left is logf, sqrtf, sinf, cosf and the final
// product: a few ulp of r, whatever the draw.
TEST(Rng, HostNormalsAreBoxMullerOfTheSameWords) {
  const uint64_t seed = std::random_device{}();
  double worst_ulps = 0;
  for (uint64_t item = 0; item < 20000; ++item) {
    Philox words, normals;
    philox_init(&words, seed, Stream::kSample, item);
    philox_init(&normals, seed, Stream::kSample, item);
    const uint4 w = curand4(&words);
    const float4 z = curand_normal4(&normals);
    const uint32_t bits[4] = {w.x, w.y, w.z, w.w};
    const float got[4] = {z.x, z.y, z.z, z.w};
    for (int pair = 0; pair < 2; ++pair) {
      const float u = bits[2 * pair] * CURAND_2POW32_INV + CURAND_2POW32_INV / 2;
      const float v = bits[2 * pair + 1] * CURAND_2POW32_INV_2PI + CURAND_2POW32_INV_2PI / 2;
      const double r = std::sqrt(-2 * std::log(double(u)));
      const double ulp_of_r = r * 0x1p-23;
      worst_ulps = std::max({worst_ulps, std::abs(got[2 * pair] - r * std::sin(double(v))) / ulp_of_r,
                             std::abs(got[2 * pair + 1] - r * std::cos(double(v))) / ulp_of_r});
    }
  }
  EXPECT_LT(worst_ulps, 4) << "seed " << seed;
  std::printf("  max |host normal - double Box-Muller| = %.3g ulp of the radius\n", worst_ulps);
}

TEST(Rng, PairAtSkipsAheadToTheSequentialPair) {
  const uint64_t seed = std::random_device{}();
  for (uint64_t item : {0ull, 5ull, 999999ull}) {
    NormalPairs seq{};
    philox_init(&seq.state, seed, Stream::kSample, item);
    for (uint64_t p = 0; p < 1001; ++p) {
      float a, b, c, d;
      seq.next(a, b);
      normal_pair_at(seed, Stream::kSample, item, p, c, d);
      ASSERT_EQ(a, c) << "pair " << p;
      ASSERT_EQ(b, d) << "pair " << p;
    }
  }
  EXPECT_EQ(sample_noise_pair(500, 500), 1u);
  EXPECT_EQ(sample_noise_pair(2, 500), 499u);
}

TEST(Rng, UniformIntCoversTheRangeEvenly) {
  std::vector<int> counts(500, 0);
  Philox st;
  philox_init(&st, std::random_device{}(), Stream::kTrainBatch, 0);
  const int n = 500000;
  for (int i = 0; i < n; ++i) {
    const int t = uniform_int(curand(&st), 1, 500);
    ASSERT_GE(t, 1);
    ASSERT_LE(t, 500);
    ++counts[t - 1];
  }
  for (int c : counts) EXPECT_NEAR(c, 1000, 5 * std::sqrt(1000.0));
  EXPECT_EQ(uniform_int(0u, 1, 500), 1);
  EXPECT_EQ(uniform_int(0xffffffffu, 1, 500), 500);
}

}  // namespace
}  // namespace ddpm
