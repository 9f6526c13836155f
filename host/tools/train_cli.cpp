#include "host/tools/train_cli.hpp"

#include <cmath>

#include "host/tools/cli.hpp"

#include "ddpm/datasets.hpp"

namespace ddpm::tools {

void add_train_options(CLI::App& app, TrainOptions& o) {
  app.option_defaults()->always_capture_default();
  app.add_option("--steps", o.steps, "optimizer steps")->check(kUnsigned & CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--batch", o.batch, "points per batch")->check(kUnsigned & CLI::Range(2, 1 << 22));
  app.add_option("--lr", o.lr, "Adam learning rate")->check(kFinite & CLI::Range(1e-12f, 1e6f));
  app.add_option("--T", o.T, "diffusion steps T")->check(kUnsigned & CLI::Range(1, kMaxT));
  app.add_option("--beta-1", o.beta_1, "beta_1, start of the linear schedule")->check(kFinite);
  app.add_option("--beta-T", o.beta_T, "beta_T, end of the linear schedule")->check(kFinite);
  app.add_option("--seed", o.seed, "random seed (weights, batches, noise)")->check(kUnsigned);
  app.add_option("--device", o.device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  add_cpu_isa_option(app, o.cpu_isa);
  app.add_option("--out", o.out, "checkpoint to write (safetensors)");
  app.add_option("--loss-csv", o.loss_csv, "loss log as CSV (step,loss); empty to skip");
  app.add_option("--loss-png", o.loss_png, "loss curve PNG; empty to skip");
  app.add_option("--forward-png", o.forward_png, "forward-process figure PNG; empty to skip");
  app.add_option("--log-every", o.log_every, "print 'step N loss L' every N steps (0: never)")
      ->check(kUnsigned & CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "also write --out every N steps, with the optimizer state, so the run can be resumed (0: at the end "
                 "only)")
      ->check(kUnsigned & CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_option("--resume", o.resume,
                 "continue the run saved in this checkpoint (written with --checkpoint-every or on interrupt) up to "
                 "--steps; its settings apply, and a flag that contradicts them is an error")
      ->type_name("CKPT");
  app.add_option("--data", o.data,
                 "training data: a built-in set (" + builtin_dataset_names() + ") or a .npy/.csv file of N x 2 points")
      ->type_name("NAME|FILE");
  app.add_option("--schedule", o.schedule, "variance schedule: linear (--beta-1..--beta-T) or cosine")
      ->check(CLI::IsMember({"linear", "cosine"}));
  app.add_option("--ema", o.ema,
                 "keep an EMA of the weights with this decay, in [0, 1) (0: none); it warms up as diffusers' "
                 "EMAModel does: the update after s earlier ones has decay min(DECAY, (1 + s) / (10 + s)), the "
                 "first is a copy")
      ->check(kFinite & CLI::Range(0.0, 1.0));
  app.add_option("--lr-decay", o.lr_decay, "learning-rate schedule after warm-up: none or cosine")
      ->check(CLI::IsMember({"none", "cosine"}));
  app.add_option("--lr-final", o.lr_final, "cosine decay: the last step's lr as a fraction of --lr")
      ->check(kFinite & CLI::Range(0.0, 1.0));
  app.add_option("--warmup", o.warmup, "linear learning-rate warm-up over this many steps")
      ->check(kUnsigned & CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_option("--eval-every", o.eval_every,
                 "every N steps, sample --eval-n points (fixed seed), print their sliced W1 beside the noise floor "
                 "and redraw --eval-png (0: never)")
      ->check(kUnsigned & CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_option("--eval-n", o.eval_n, "points sampled at each evaluation")
      ->check(kUnsigned & CLI::Range(int64_t(100), int64_t(1) << 24));
  app.add_option("--eval-png", o.eval_png, "strip of the evaluation samples over training (with --eval-every)");
  app.add_option("--recipe", o.recipe,
                 "seed: the seed's settings; quality: 10000 steps at batch 4096, lr 3e-3 with a cosine decay, EMA; "
                 "fast: 6000 steps at batch 1024, lr 1e-2, the same schedules, in a seventh of quality's time (see "
                 "README). With --steps N a recipe's schedules follow N: its warm-up keeps its share of the run "
                 "(2%), the cosine decay spans N and the EMA warms up over the run; flags given explicitly override "
                 "the recipe")
      ->check(CLI::IsMember({"seed", "quality", "fast"}));
  add_model_options(app, o.model, /*from_checkpoint=*/false);
  app.add_flag("--print-schedule", o.print_schedule,
               "print the schedule (t, beta, alpha, alpha_bar, posterior_variance) as CSV and exit");
}

namespace {
// With --steps N (apply_recipe) a recipe's schedules follow N rather than its
// own step count: the warm-up keeps its share of the run (scaled_warmup: 200
// of quality's 10,000 steps is 2%, so --steps 2500 warms up over 50), the
// cosine decay spans N (as any run's does), and the EMA's warm-up
// (ema_warmup_decay) averages over about the last ninth of the steps until its
// decay reaches the recipe's, which with 0.999 happens at step 8991: the cap
// matters only for runs longer than quality's own, where it bounds the
// average to the last ~1000 steps, whose lr the cosine has already cut.
constexpr Recipe kRecipes[] = {
    {"seed", kTrainSteps, kBatch, kLearningRate, 0.0, "none", 0.0, 0},
    // 3x the seed's lr at 8x its batch (bench/NOTES.md, "Its learning rate").
    {"quality", 10000, 4096, 3e-3f, 0.999, "cosine", 0.01, 200},
    // A seventh of quality's point-steps, spent on steps rather than batch: at
    // the same budget 8000 steps of 1024 beat 4000 of 2048 and 2000 of 4096,
    // and at batch 1024 each lr from 3e-3 up to 1e-2 did better than the one
    // below it. Moons then matches quality's chain in 10 s on two cores, 15 s
    // when the VM runs slow (bench/NOTES.md, "The fast recipe"); the sharp
    // sets with the x encoding still want quality's length.
    {"fast", 6000, 1024, 1e-2f, 0.999, "cosine", 0.01, 120},
};
}  // namespace

const Recipe& recipe_named(const std::string& name) {
  for (const Recipe& r : kRecipes)
    if (name == r.name) return r;
  throw UsageError("--recipe " + name + ": unknown (seed, quality or fast)");
}

int64_t scaled_warmup(const Recipe& r, int64_t steps) {
  return int64_t(std::llround(double(r.warmup) * double(steps) / double(r.steps)));
}

void apply_recipe(const CLI::App& app, TrainOptions& o) {
  const Recipe& r = recipe_named(o.recipe);
  const auto unset = [&](const char* flag) { return app.count(flag) == 0; };
  if (unset("--steps")) o.steps = r.steps;
  if (unset("--batch")) o.batch = r.batch;
  if (unset("--lr")) o.lr = r.lr;
  if (unset("--ema")) o.ema = r.ema;
  if (unset("--lr-decay")) o.lr_decay = r.lr_decay;
  if (unset("--lr-final")) o.lr_final = r.lr_final;
  if (unset("--warmup")) o.warmup = scaled_warmup(r, o.steps);
}

void check_train_options(const CLI::App& app, const TrainOptions& o) {
  if (app.count("--resume") > 0 && o.resume.empty()) throw UsageError("--resume: empty path");
  if (!(o.ema >= 0 && o.ema < 1)) throw UsageError("--ema " + std::to_string(o.ema) + ": need 0 <= decay < 1");
  if (o.resume.empty() && o.lr_decay == "none" && app.count("--lr-final") > 0) throw UsageError("--lr-final needs --lr-decay cosine");
  if (o.resume.empty() && o.lr_decay == "cosine" && o.warmup >= o.steps)
    throw UsageError("--warmup " + std::to_string(o.warmup) + " leaves no steps of the cosine decay (--steps " +
                     std::to_string(o.steps) + ")");
  if (!(o.beta_1 > 0 && o.beta_1 <= o.beta_T && o.beta_T < 1))
    throw UsageError("need 0 < --beta-1 <= --beta-T < 1, got " + std::to_string(o.beta_1) + " and " +
                     std::to_string(o.beta_T));
}

}  // namespace ddpm::tools
