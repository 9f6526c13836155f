// What any backend's trainer checks of its configuration, and the learning
// rate schedule (cpu_backend.hpp); compiled once, for every instruction set.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "ddpm/error.hpp"
#include "ddpm/math.hpp"
#include "host/cpu/cpu_backend.hpp"

namespace ddpm::cpu {

namespace {
std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace


void validate_model(const ModelConfig& model) {
  if (model.x_embedding == XEmbedding::kSinusoidal && !(std::isfinite(model.x_scale) && model.x_scale > 0))
    throw Error("x-scale must be a positive finite number, got " + number(model.x_scale));
}

void validate_training(const TrainConfig& config, const TrainState& state) {
  if (config.steps < 0) throw Error("steps must be at least 0, got " + std::to_string(config.steps));
  if (config.batch < 2) throw Error("batch must be at least 2 (the per-batch std needs two points), got " +
                                    std::to_string(config.batch));
  if (config.ema_decay && !(*config.ema_decay >= 0 && *config.ema_decay < 1))
    throw Error("EMA decay must be in [0, 1), got " + number(*config.ema_decay));
  const LrSchedule& lr = config.lr_schedule;
  if (lr.warmup_steps < 0) throw Error("warm-up steps must be at least 0, got " + std::to_string(lr.warmup_steps));
  if (lr.cosine) {
    if (!(lr.final_fraction >= 0 && lr.final_fraction <= 1))
      throw Error("final learning-rate fraction must be in [0, 1], got " + number(lr.final_fraction));
    if (lr.total_steps <= lr.warmup_steps)
      throw Error("cosine decay over " + std::to_string(lr.total_steps) + " steps leaves nothing after " +
                  std::to_string(lr.warmup_steps) + " warm-up steps");
  }
  if (config.dataset == Dataset::kFile)
    check_points(config.points.data(), int64_t(config.points.size()), "training data");
  validate_model(config.model);
  const std::size_t count = config.model.net().param_count;
  if (state.params.size() != count || state.adam_m.size() != count || state.adam_v.size() != count)
    throw Error("train: state buffers do not match the parameter layout");
  if (config.ema_decay && !state.ema.empty() && state.ema.size() != count)
    throw Error("train: the EMA buffer does not match the parameter layout");
}

double TrainConfig::ema_decay_at(int64_t k) const {
  const double decay = ema_decay.value_or(0.0);
  return ema_warmup ? ema_warmup_decay(decay, k) : decay;
}

double LrSchedule::factor(int64_t k) const {
  constexpr double kPiD = 3.14159265358979323846;
  if (k <= warmup_steps) return double(k) / double(warmup_steps);  // only reached with W >= k >= 1
  if (!cosine) return 1.0;
  const double p = std::min(1.0, double(k - warmup_steps) / double(total_steps - warmup_steps));
  return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + std::cos(kPiD * p));
}

}  // namespace ddpm::cpu
