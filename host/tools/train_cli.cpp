#include "host/tools/train_cli.hpp"

#include "host/tools/cli.hpp"

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
  app.add_flag("--print-schedule", o.print_schedule,
               "print the schedule (t, beta, alpha, alpha_bar, posterior_variance) as CSV and exit");
}

void check_train_options(const CLI::App& app, const TrainOptions& o) {
  if (app.count("--resume") > 0 && o.resume.empty()) throw UsageError("--resume: empty path");
  if (!(o.beta_1 > 0 && o.beta_1 <= o.beta_T && o.beta_T < 1))
    throw UsageError("need 0 < --beta-1 <= --beta-T < 1, got " + std::to_string(o.beta_1) + " and " +
                     std::to_string(o.beta_T));
}

}  // namespace ddpm::tools
