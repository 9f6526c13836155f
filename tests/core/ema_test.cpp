// The EMA of the weights (ddpm/math.hpp) against the recurrence in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ddpm/math.hpp"

namespace ddpm {
namespace {

TEST(Ema, StepsFollowTheRecurrenceInDouble) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::normal_distribution<double> n(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  for (int trial = 0; trial < 1000; ++trial) {
    const double decay = trial == 0 ? 0.0 : trial == 1 ? 0.9999 : u(gen);
    const float d = float(decay), omd = float(1.0 - decay);
    float e = float(n(gen));
    double ed = e;
    for (int k = 0; k < 20; ++k) {
      const float p = float(n(gen));
      ema_update(e, p, d, omd);
      ed = decay * ed + (1 - decay) * p;  // e <- decay e + (1 - decay) p
      // Each step rounds d, 1 - d and three operations: a few float ulps of the magnitudes involved.
      ASSERT_NEAR(e, ed, 1e-6 * (1 + std::abs(ed)) * (k + 1)) << "decay " << decay << " step " << k;
    }
  }
  float e = 3.f;
  ema_update(e, -1.f, 0.f, 1.f);  // decay 0: the EMA is the weight itself
  EXPECT_EQ(e, -1.f);
}

}  // namespace
}  // namespace ddpm
