// The two model variants every CPU test of the network runs on: the seed's,
// and the sinusoidal x encoding at its default scale.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "ddpm/params.hpp"

namespace ddpm::test {

inline auto model_variants() {
  return ::testing::Values(ModelConfig{}, ModelConfig{XEmbedding::kSinusoidal, kXScale});
}

inline std::string model_variant_name(const ::testing::TestParamInfo<ModelConfig>& info) {
  return name_of(info.param.x_embedding);
}

}  // namespace ddpm::test
