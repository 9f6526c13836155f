// End to end on the CPU: `ddpm_cuda_train --recipe fast` reaches the target of
// its search (bench/NOTES.md, "The fast recipe"), the ancestral chain's
// quality after `--recipe quality`, judged as the search judged it: 20,000
// samples drawn with seed 1, evaluated with seed 7 (k = 3):
//   sliced W1 <= 0.008, precision >= 0.93, recall >= 0.92.
// The same draw's first 20,000 points are those of a draw of 100,000 (the
// sampler's prefix property), so one run of the sampler also gives the older,
// steadier bar of the quality recipe's search, at n = 100,000 against the
// noise floor of an exact draw of that size:
//   sliced W1 <= 0.012                  (the seed's settings: ~0.036; the floor: ~0.005),
//   precision >= the floor's - 0.02     (the seed's settings: ~0.07 below the floor).
// (At n = 20,000 the floor's own sliced W1 with seed 7 is 0.0086: that bar is
// one a model at the floor meets only with a lucky draw, the one at 100,000
// is not.) The training time is printed, never asserted: the machine may be
// busy with other work.
// And `--recipe quality` with the sinusoidal x encoding on the two sharp sets,
// judged as the README's table is (n = 10,000, seeds 0): precision within 0.03
// of the floor's (without the encoding: spiral ~0.31 below, checkerboard ~0.10).
// Not the fast recipe: with it checkerboard ends 0.032 below its floor (the
// search's table).
// Training, sampling and the judgement are deterministic, so each test's
// outcome is the same on every run.
// Labelled `long`: each trains for 10 s (fast) to over a minute (quality) on both cores.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "host/io/samples_io.hpp"
#include "tests/tools/tool_runner.hpp"
#include "host/eval/metrics.hpp"

namespace ddpm {
namespace {

using testing::run;
using testing::ScratchDir;

constexpr int64_t kSamples = 100000, kTargetSamples = 20000;
constexpr uint64_t kEvalSeed = 7;
// #24's target at n = 20,000.
constexpr double kTargetSlicedW1 = 0.008, kTargetPrecision = 0.93, kTargetRecall = 0.92;
// The quality recipe's search's bar at n = 100,000.
constexpr double kMaxSlicedW1 = 0.012, kPrecisionBelowFloor = 0.02;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(EndToEnd, FastRecipeReachesItsTarget) {
  ScratchDir dir;
  auto t0 = std::chrono::steady_clock::now();
  const auto t = run(DDPM_TRAIN_BIN,
                     "--recipe fast --device cpu --log-every 0 --loss-csv '' --loss-png '' --forward-png ''", dir);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const double train_s = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  const auto s = run(DDPM_SAMPLE_BIN,
                     "--n " + std::to_string(kSamples) + " --seed 1 --device cpu --png '' --density '' --out samples.npy",
                     dir);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const double sample_s = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  const std::vector<float> samples = io::read_samples(dir / "samples.npy");
  ASSERT_EQ(static_cast<int64_t>(samples.size()), 2 * kSamples);
  const std::vector<float> first(samples.begin(), samples.begin() + 2 * kTargetSamples);
  const eval::Report target = eval::evaluate(first, kEvalSeed);
  const eval::Report all = eval::evaluate(samples, kEvalSeed);
  const double eval_s = seconds_since(t0);

  std::printf("n = %lld:\n%sn = %lld:\n%s", static_cast<long long>(kTargetSamples), eval::to_text(target).c_str(),
              static_cast<long long>(kSamples), eval::to_text(all).c_str());
  // The tool's own line says how long the steps alone took.
  std::printf("%strain %.1f s, sample %.1f s, evaluate %.1f s\n", t.err.c_str(), train_s, sample_s, eval_s);
  EXPECT_LE(target.sample.sliced_w1, kTargetSlicedW1) << eval::to_text(target);
  EXPECT_GE(target.sample.precision, kTargetPrecision) << eval::to_text(target);
  EXPECT_GE(target.sample.recall, kTargetRecall) << eval::to_text(target);
  EXPECT_LE(all.sample.sliced_w1, kMaxSlicedW1) << eval::to_text(all);
  EXPECT_GE(all.sample.precision, all.floor.precision - kPrecisionBelowFloor) << eval::to_text(all);
}

void expect_x_embedding_learns(Dataset set) {
  ScratchDir dir;
  const auto t = run(DDPM_TRAIN_BIN,
                     std::string("--recipe quality --data ") + dataset_name(set) +
                         " --x-embedding sinusoidal --device cpu --log-every 0 --loss-csv '' --loss-png '' "
                         "--forward-png ''",
                     dir);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const auto s = run(DDPM_SAMPLE_BIN, "--n 10000 --device cpu --png '' --out samples.npy", dir);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const eval::Report r = eval::evaluate(io::read_samples(dir / "samples.npy"), 0, DataSource{set});
  std::printf("%s", eval::to_text(r).c_str());
  EXPECT_GE(r.sample.precision, r.floor.precision - 0.03) << eval::to_text(r);
}

TEST(EndToEnd, XEmbeddingLearnsTheSpiral) { expect_x_embedding_learns(Dataset::kSpiral); }

TEST(EndToEnd, XEmbeddingLearnsTheCheckerboard) { expect_x_embedding_learns(Dataset::kCheckerboard); }

}  // namespace
}  // namespace ddpm
