// ddpm_cuda_train: trains the seed's eps-predictor on two moons and writes the
// checkpoint, the loss log and curve, and the forward-process figure.
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/checkpoint.hpp"
#include "host/plot/plot.hpp"
#include "host/tools/cli.hpp"
#include "host/tools/device.hpp"
#include "host/tools/train_cli.hpp"

namespace {

using namespace ddpm;
constexpr const char* kTool = "ddpm_cuda_train";

using Options = tools::TrainOptions;

std::string schedule_csv(const Schedule& s) {
  std::string csv = "t,beta,alpha,alpha_bar,posterior_variance\n";
  char line[160];
  for (int t = 0; t <= s.T; ++t) {
    std::snprintf(line, sizeof line, "%d,%.9g,%.9g,%.9g,%.9g\n", t, s.beta[t], s.alpha[t], s.alpha_bar[t],
                  s.posterior_variance[t]);
    csv += line;
  }
  return csv;
}

// A progress line on a terminal; the seed's "step N loss L" lines otherwise (and on a terminal too).
class Progress {
 public:
  Progress(int64_t total, int64_t log_every) : total_(total), log_every_(log_every), tty_(tools::stderr_is_terminal()) {}

  void update(int64_t step, float loss) {
    // The seed logs at 0-based steps 0, 1000, 2000, ...
    if (log_every_ > 0 && (step - 1) % log_every_ == 0) {
      if (tty_) std::fprintf(stderr, "\r\033[K");
      std::printf("step %5" PRId64 " loss %.4f\n", step - 1, loss);
      std::fflush(stdout);
    }
    if (!tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = step / std::max(secs, 1e-9);
    const int width = 30, filled = int(width * step / total_);
    std::fprintf(stderr, "\r\033[K[%s%s] %" PRId64 "/%" PRId64 " %.0f steps/s ETA %.1fs loss %.4f",
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), step, total_, rate,
                 (total_ - step) / std::max(rate, 1e-9), loss);
    if (step == total_) std::fprintf(stderr, "\n");
  }

 private:
  int64_t total_, log_every_;
  bool tty_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_draw_{};
};

void run(const Options& o) {
  const Schedule sched = Schedule::linear(o.T, o.beta_1, o.beta_T);
  if (o.print_schedule) {
    std::fputs(schedule_csv(sched).c_str(), stdout);
    return;
  }
  tools::choose_device(o.device, /*has_cuda_path=*/false, kTool);
  for (const std::string* path : {&o.out, &o.loss_csv, &o.loss_png, &o.forward_png}) tools::check_writable(*path);

  cpu::TrainConfig cfg;
  cfg.steps = o.steps;
  cfg.batch = o.batch;
  cfg.lr = float(o.lr);
  cfg.seed = o.seed;
  cpu::TrainState state = cpu::TrainState::fresh(o.seed);
  std::vector<float> losses;
  losses.reserve(std::size_t(o.steps));
  Progress progress(o.steps, o.log_every);
  const auto t0 = std::chrono::steady_clock::now();
  cpu::train(sched, cfg, state, [&](int64_t step, float loss) {
    if (!std::isfinite(loss)) throw Error("loss became " + std::to_string(loss) + " at step " + std::to_string(step));
    losses.push_back(loss);
    progress.update(step, loss);
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%s: %" PRId64 " steps in %.2f s (%.0f steps/s), final loss %.4f\n", kTool, o.steps, secs,
               o.steps / secs, losses.back());

  io::Checkpoint ckpt;
  ckpt.params = state.params;
  ckpt.meta.T = o.T;
  ckpt.meta.beta_1 = o.beta_1;
  ckpt.meta.beta_T = o.beta_T;
  ckpt.meta.steps = state.step;
  ckpt.meta.seed = o.seed;
  ckpt.meta.last_loss = losses.back();
  io::save_checkpoint(o.out, ckpt);
  std::fprintf(stderr, "%s: wrote %s\n", kTool, o.out.c_str());

  if (!o.loss_csv.empty()) {
    std::string csv = "step,loss\n";
    char line[64];
    for (std::size_t i = 0; i < losses.size(); ++i) {
      std::snprintf(line, sizeof line, "%zu,%.7g\n", i + 1, losses[i]);
      csv += line;
    }
    io::write_file_atomic(o.loss_csv, csv.data(), csv.size());
    std::fprintf(stderr, "%s: wrote %s\n", kTool, o.loss_csv.c_str());
  }
  if (!o.loss_png.empty()) {
    plot::write_loss_curve_png(o.loss_png, losses, "training loss (MSE on eps)");
    std::fprintf(stderr, "%s: wrote %s\n", kTool, o.loss_png.c_str());
  }
  if (!o.forward_png.empty()) {
    const std::vector<int> ts = {0, o.T / 20, o.T / 10, o.T / 5, o.T};
    const auto snaps = cpu::forward_process(sched, o.seed, kForwardPoints, ts);
    std::vector<plot::Panel> panels;
    for (std::size_t i = 0; i < ts.size(); ++i) panels.push_back({"t=" + std::to_string(ts[i]), snaps[i]});
    plot::write_panels_png(o.forward_png, panels);
    std::fprintf(stderr, "%s: wrote %s\n", kTool, o.forward_png.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  tools::TrainOptions o;
  CLI::App app{"Train the DDPM eps-predictor on two moons (defaults reproduce the seed)", kTool};
  tools::add_train_options(app, o);
  return tools::run_tool(kTool, app, argc, argv, [&] {
    tools::check_train_options(app, o);
    run(o);
  });
}
