// End to end on the CPU: the README's main job at the seed's settings, judged
// by ddpm_eval's metrics against the noise floor of exact draws of the same size.
#include <gtest/gtest.h>

#include "host/io/samples_io.hpp"
#include "tests/tools/tool_runner.hpp"
#include "host/eval/metrics.hpp"

namespace ddpm {
namespace {

using testing::run;
using testing::ScratchDir;

// The stated bar, at n = 2000 (see README, "Sample quality"):
//   sliced W1 <= 3 x the floor's + 0.02   (the floor's own wobble at n = 2000 is 0.02-0.05),
//   MMD^2     <= the floor's + 0.01       (exact draws: |MMD^2| < 2e-3; N(0, I): ~0.12),
//   precision >= the floor's - 0.15       (exact draws: ~0.97; N(0, I): ~0.3).
std::string quality_failures(const eval::Report& r) {
  std::string why;
  if (r.sample.sliced_w1 > 3 * r.floor.sliced_w1 + 0.02) why += " sliced_w1=" + std::to_string(r.sample.sliced_w1);
  if (r.sample.mmd2 > r.floor.mmd2 + 0.01) why += " mmd2=" + std::to_string(r.sample.mmd2);
  if (r.sample.precision < r.floor.precision - 0.15) why += " precision=" + std::to_string(r.sample.precision);
  return why;
}

eval::Report train_sample_evaluate(const std::string& train_args, const ScratchDir& dir) {
  const auto t = run(DDPM_TRAIN_BIN, train_args + " --device cpu --loss-png '' --forward-png ''", dir);
  EXPECT_EQ(t.exit_code, 0) << t.err;
  const auto s = run(DDPM_SAMPLE_BIN, "--n 2000 --device cpu --png '' --out samples.npy", dir);
  EXPECT_EQ(s.exit_code, 0) << s.err;
  return eval::evaluate(io::read_samples(dir / "samples.npy"), 0);
}

TEST(EndToEnd, SeedSettingsReachTheQualityBarAndAnUntrainedModelDoesNot) {
  ScratchDir trained, untrained;
  const eval::Report good = train_sample_evaluate("", trained);  // the seed's defaults: 5000 steps, batch 512
  std::printf("%s", eval::to_text(good).c_str());
  EXPECT_EQ(quality_failures(good), "") << eval::to_text(good);

  const eval::Report bad = train_sample_evaluate("--steps 1", untrained);
  std::printf("%s", eval::to_text(bad).c_str());
  EXPECT_NE(quality_failures(bad), "") << eval::to_text(bad);
}

}  // namespace
}  // namespace ddpm
