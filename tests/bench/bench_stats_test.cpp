// The statistics behind ddpm_bench's end-to-end tables: each checked against a
// computation that shares no code with it (order statistics by counting, not
// by sorting), on fresh random samples of every small size, with ties.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "bench/bench_util.hpp"

namespace {

using namespace ddpm::bench;

// The k-th smallest (0-based) of v by counting: the value with at most k
// elements below it and more than k at or below it.
double kth_by_counting(const std::vector<double>& v, std::size_t k) {
  for (const double x : v) {
    std::size_t below = 0, at_or_below = 0;
    for (const double y : v) {
      below += y < x;
      at_or_below += y <= x;
    }
    if (below <= k && k < at_or_below) return x;
  }
  ADD_FAILURE() << "no k-th element";
  return 0;
}

double median_by_counting(const std::vector<double>& v) {
  const std::size_t n = v.size();
  return n % 2 ? kth_by_counting(v, n / 2) : 0.5 * (kth_by_counting(v, n / 2 - 1) + kth_by_counting(v, n / 2));
}

// Random timings; one draw in four repeats an earlier value, as equal timings do.
std::vector<double> random_seconds(std::mt19937_64& rng, std::size_t n) {
  std::uniform_real_distribution<double> u(0.01, 20.0);
  std::vector<double> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(!v.empty() && rng() % 4 == 0 ? v[rng() % v.size()] : u(rng));
  return v;
}

struct BenchStatsRandom : ::testing::Test {
  const uint64_t seed = std::random_device{}();
  std::mt19937_64 rng{seed};
  void SetUp() override { std::printf("seed %llu\n", static_cast<unsigned long long>(seed)); }
};

TEST(BenchStats, HandWorkedExamples) {
  // Odd: the middle one; even: the mean of the two middle ones; the range of the extremes.
  const Spread odd = spread_of({4.0, 1.0, 2.5});
  EXPECT_EQ(odd.runs, 3);
  EXPECT_EQ(odd.median, 2.5);
  EXPECT_EQ(odd.min, 1.0);
  EXPECT_EQ(odd.max, 4.0);
  const Spread even = spread_of({7.0, 1.0, 3.0, 2.0});
  EXPECT_EQ(even.median, 2.5);
  EXPECT_EQ(even.min, 1.0);
  EXPECT_EQ(even.max, 7.0);
  EXPECT_EQ(spread_of({}).runs, 0);
  // Medians 9 and 3: the peer takes three times as long.
  EXPECT_DOUBLE_EQ(ratio_of_medians({9.0, 30.0, 8.0}, {3.0, 2.0, 100.0}), 3.0);
  EXPECT_EQ(ratio_of_medians({}, {1.0}), 0.0);
  EXPECT_EQ(ratio_of_medians({1.0}, {}), 0.0);
  // Round by round, over the rounds both have.
  EXPECT_EQ(same_round_ratios({4.0, 9.0, 5.0}, {2.0, 3.0}), (std::vector<double>{2.0, 3.0}));
}

TEST_F(BenchStatsRandom, SpreadMatchesCounting) {
  for (std::size_t n = 1; n <= 12; ++n)
    for (int trial = 0; trial < 50; ++trial) {
      const std::vector<double> v = random_seconds(rng, n);
      const Spread s = spread_of(v);
      double lo = v[0], hi = v[0];
      for (const double x : v) {
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
      }
      ASSERT_EQ(s.runs, int(n));
      ASSERT_EQ(s.median, median_by_counting(v)) << "n = " << n;
      ASSERT_EQ(s.min, lo);
      ASSERT_EQ(s.max, hi);
      ASSERT_EQ(median_of(v), s.median);
      // The order of the rounds does not matter.
      std::vector<double> shuffled = v;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      ASSERT_EQ(spread_of(shuffled).median, s.median);
    }
}

TEST_F(BenchStatsRandom, RatiosMatchCounting) {
  for (int trial = 0; trial < 300; ++trial) {
    const std::vector<double> peer = random_seconds(rng, 1 + rng() % 7), ours = random_seconds(rng, 1 + rng() % 7);
    ASSERT_DOUBLE_EQ(ratio_of_medians(peer, ours), median_by_counting(peer) / median_by_counting(ours));
    const std::vector<double> paired = same_round_ratios(peer, ours);
    ASSERT_EQ(paired.size(), std::min(peer.size(), ours.size()));
    for (std::size_t i = 0; i < paired.size(); ++i) ASSERT_EQ(paired[i], peer[i] / ours[i]) << "round " << i;
  }
}

// Every variant once per round, in the order given, round after round:
// slot k holds round k / variants and variant k % variants.
TEST_F(BenchStatsRandom, OrderInterleavesTheVariantsRoundByRound) {
  EXPECT_TRUE(interleaved_order(3, 0).empty());
  for (int trial = 0; trial < 50; ++trial) {
    const int variants = 1 + int(rng() % 9), rounds = 1 + int(rng() % 6);
    const std::vector<Slot> order = interleaved_order(variants, rounds);
    ASSERT_EQ(order.size(), std::size_t(variants * rounds));
    std::vector<int> seen(std::size_t(variants * rounds), 0);
    for (std::size_t k = 0; k < order.size(); ++k) {
      ASSERT_EQ(order[k].round, int(k) / variants) << "slot " << k;
      ASSERT_EQ(order[k].variant, int(k) % variants) << "slot " << k;
      ++seen[std::size_t(order[k].round * variants + order[k].variant)];
    }
    for (const int s : seen) ASSERT_EQ(s, 1);
  }
}

}  // namespace
