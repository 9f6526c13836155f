// ddpm_cuda_train: trains the seed's eps-predictor on two moons (or --data) and
// writes the checkpoint, the loss log and curve, and the forward-process figure.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <charconv>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/gpu/gpu_trainer.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/checkpoint.hpp"
#include "host/plot/plot.hpp"
#include "host/tools/cli.hpp"
#include "host/tools/device.hpp"
#include "host/tools/interrupt.hpp"
#include "host/tools/train_cli.hpp"
#include "host/eval/likelihood_report.hpp"
#include "host/eval/metrics.hpp"

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
  Progress(int64_t first, int64_t total, int64_t log_every)
      : first_(first), total_(total), log_every_(log_every), tty_(tools::stderr_is_terminal()) {}

  void update(int64_t step, float loss) {
    // The seed logs at 0-based steps 0, 1000, 2000, ...
    if (log_every_ > 0 && (step - 1) % log_every_ == 0) {
      clear();
      std::printf("step %5" PRId64 " loss %.4f\n", step - 1, loss);
      std::fflush(stdout);
    }
    if (!tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = (step - first_) / std::max(secs, 1e-9);
    const int width = 30, filled = int(width * step / total_);
    std::fprintf(stderr, "\r\033[K[%s%s] %" PRId64 "/%" PRId64 " %.0f steps/s ETA %.1fs loss %.4f",
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), step, total_, rate,
                 (total_ - step) / std::max(rate, 1e-9), loss);
    if (step == total_) std::fprintf(stderr, "\n");
  }

  // Clears the progress line before another message.
  void clear() const {
    if (tty_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  int64_t first_, total_, log_every_;
  bool tty_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_draw_{};
};

// Binds the flags that define a training run to the checkpoint's run.*
// metadata. On --resume each setting takes the stored value through the
// flag's own parser and checks, and an explicit flag must agree with it.
class RunSettings {
 public:
  RunSettings(CLI::App& app, const io::Checkpoint* resumed, const std::string& resume_path)
      : app_(app), resumed_(resumed), resume_path_(resume_path) {}

  template <class V>
  void bind(const char* flag, V& value) {
    CLI::Option* opt = app_.get_option(flag);
    const std::string key = flag + 2;
    if (resumed_ != nullptr) {
      const auto it = resumed_->meta.run.find(key);
      if (it == resumed_->meta.run.end())
        throw Error(resume_path_ + ": metadata key \"run." + key + "\" missing; cannot resume");
      const bool given = opt->count() > 0;
      const V asked = value;
      opt->clear();
      opt->add_result(it->second);
      try {
        opt->run_callback();
      } catch (const CLI::Error& e) {
        throw Error(resume_path_ + ": run." + key + " = \"" + it->second + "\" is not valid: " + e.what());
      }
      if (given && !(asked == value))
        throw tools::UsageError(std::string(flag) + " " + encode(asked) + " contradicts " + resume_path_ + ", which has " +
                                it->second);
    }
    stored_[key] = encode(value);
  }

  const std::map<std::string, std::string>& stored() const { return stored_; }

 private:
  static std::string encode(const std::string& v) { return v; }
  static std::string encode(float v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", double(v));  // round-trips exactly
    return buf;
  }
  static std::string encode(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }
  template <class Int>
  static std::string encode(Int v) {
    return std::to_string(v);
  }

  CLI::App& app_;
  const io::Checkpoint* resumed_;
  const std::string& resume_path_;
  std::map<std::string, std::string> stored_;
};

// --eval-every: a fixed-seed sample set drawn with the current weights (the
// EMA when kept) at every N-th step, judged by ddpm_eval's metrics against the
// data's true distribution beside the noise floor, and a strip of the sets;
// beside them the variational bound of held-out points (ddpm_cuda_nll's, at
// its default seed: a fresh draw of a built-in set, a file's first points
// normalized as the file), so likelihood and sample quality can be followed
// together.
class TrainingEval {
 public:
  static constexpr int kStripPanels = 8;      // the strip shows at most this many evaluations
  static constexpr int64_t kPanelPoints = 2000;
  static constexpr int64_t kBoundPoints = 1000;  // held-out points of the bound: standard error ~0.05 nats
  static constexpr uint64_t kBoundSeed = 1;      // ddpm_cuda_nll's default --seed

  TrainingEval(const Options& o, const Schedule& sched, const DataSource& data, const ModelConfig& model)
      : o_(o), sched_(sched), data_(data), model_(model), bound_table_(vlb_table(sched, Variance::kPosterior)) {
    if (data.dataset == Dataset::kFile) {
      held_out_ = eval::file_reference(data);
      held_out_.resize(std::min(held_out_.size(), std::size_t(2 * kBoundPoints)));
    } else {
      held_out_ = eval::true_draw(data.dataset, kBoundPoints, kBoundSeed, Stream::kHeldOut);
    }
  }

  void at(int64_t step, const cpu::TrainState& state, const Progress& progress) {
    const std::vector<float>& weights = state.ema.empty() ? state.params : state.ema;
    std::vector<float> xy(std::size_t(2 * o_.eval_n));
    cpu::sample(sched_, weights.data(), o_.seed, 0, o_.eval_n, xy.data(), {}, cpu::CpuPrecision::kFp32, model_);
    const eval::Report r = eval::evaluate(xy, o_.seed, data_);
    std::vector<VlbSums> sums(held_out_.size() / 2);
    cpu::vlb_sums(sched_, weights.data(), bound_table_, kBoundSeed, 0, int64_t(sums.size()), held_out_.data(),
                  sums.data(), model_);
    eval::NllReport bound;
    eval::add_bound(bound, bound_table_, sums, held_out_);
    progress.clear();
    std::printf("eval  step %5" PRId64 " sliced W1 %.4f (floor %.4f)  precision %.3f (floor %.3f)  recall %.3f "
                "(floor %.3f)  bound %.3f +- %.3f nats\n",
                step, r.sample.sliced_w1, r.floor.sliced_w1, r.sample.precision, r.floor.precision, r.sample.recall,
                r.floor.recall, bound.bound.mean, bound.bound.se);
    std::fflush(stdout);
    if (o_.eval_png.empty()) return;
    xy.resize(std::size_t(2 * std::min(o_.eval_n, kPanelPoints)));
    panels_.push_back({"step " + std::to_string(step), std::move(xy)});
    // Evenly spaced evaluations, always the first and the latest.
    std::vector<plot::Panel> shown;
    const int count = std::min<int>(kStripPanels, int(panels_.size()));
    for (int i = 0; i < count; ++i)
      shown.push_back(panels_[count == 1 ? 0 : std::size_t(i) * (panels_.size() - 1) / std::size_t(count - 1)]);
    plot::write_panels_png(o_.eval_png, shown);
  }

 private:
  const Options& o_;
  const Schedule& sched_;
  DataSource data_;
  ModelConfig model_;
  VlbTable bound_table_;
  std::vector<float> held_out_;
  std::vector<plot::Panel> panels_;
};

struct Diverged : Error {
  using Error::Error;
};

// FNV-1a over the points' bytes: tells a resumed run that its --data file changed.
std::string points_checksum(const std::vector<float>& points) {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(points.data());
  for (std::size_t i = 0; i < points.size() * sizeof(float); ++i) h = (h ^ bytes[i]) * 0x100000001b3ull;
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

void run(CLI::App& app, Options& o) {  // o is bound to app's flags
  std::optional<io::Checkpoint> resumed;
  if (!o.resume.empty()) {
    resumed = io::load_checkpoint(o.resume);
    if (!resumed->training)
      throw Error(o.resume + ": holds no training state; only checkpoints written with --checkpoint-every or on "
                             "an interrupt can be resumed");
  }
  tools::apply_recipe(app, o);
  RunSettings settings(app, resumed ? &*resumed : nullptr, o.resume);
  settings.bind("--batch", o.batch);
  settings.bind("--lr", o.lr);
  settings.bind("--T", o.T);
  settings.bind("--beta-1", o.beta_1);
  settings.bind("--beta-T", o.beta_T);
  settings.bind("--seed", o.seed);
  settings.bind("--schedule", o.schedule);
  settings.bind("--data", o.data);
  settings.bind("--ema", o.ema);
  settings.bind("--lr-decay", o.lr_decay);
  settings.bind("--lr-final", o.lr_final);
  settings.bind("--warmup", o.warmup);
  tools::check_train_options(app, o);
  // The model variant is the checkpoint's on --resume, where a flag given must agree.
  const ModelConfig model = resumed ? resumed->meta.model : tools::model_from_flags(app, o.model);
  if (resumed) tools::check_model_flags(app, o.model, model, o.resume);
  // The cosine decay spans the first run's --steps; a resumed run keeps that span.
  int64_t decay_steps = o.steps;
  if (resumed && o.lr_decay == "cosine") {
    const auto it = resumed->meta.run.find("lr-decay-steps");
    const auto [end, ec] = it == resumed->meta.run.end()
                               ? std::from_chars_result{nullptr, std::errc::invalid_argument}
                               : std::from_chars(it->second.data(), it->second.data() + it->second.size(), decay_steps);
    if (ec != std::errc() || end != it->second.data() + it->second.size() || decay_steps <= o.warmup)
      throw Error(o.resume + ": metadata run.lr-decay-steps missing or invalid; cannot resume");
  }

  const Schedule sched = Schedule::by_name(o.schedule, o.T, o.beta_1, o.beta_T);
  if (o.print_schedule) {
    std::fputs(schedule_csv(sched).c_str(), stdout);
    return;
  }
  const tools::Device device = tools::choose_device(o.device, tools::CudaPath::kOnRequest, kTool);
  if (!o.cpu_isa.empty()) cpu::select_cpu_isa(o.cpu_isa);
  for (const std::string* path : {&o.out, &o.loss_csv, &o.loss_png, &o.forward_png}) tools::check_writable(*path);
  if (o.eval_every > 0) tools::check_writable(o.eval_png);

  const tools::DataChoice data = tools::load_data(o.data);
  if (resumed && data.dataset == Dataset::kFile &&
      resumed->meta.run["data-checksum"] != points_checksum(data.points))
    throw Error("--data " + o.data + ": the file's points differ from those " + o.resume + " was trained on");

  cpu::TrainConfig cfg;
  cfg.batch = o.batch;
  cfg.lr = o.lr;
  cfg.seed = o.seed;
  cfg.dataset = data.dataset;
  cfg.points = data.points;
  cfg.model = model;
  if (o.ema > 0) cfg.ema_decay = o.ema;
  cfg.ema_warmup = true;  // --ema's help: the decay warms up to --ema
  if (o.lr_decay == "cosine") cfg.lr_schedule = {true, decay_steps, o.lr_final, o.warmup};
  else cfg.lr_schedule.warmup_steps = o.warmup;
  cpu::TrainState state;
  std::vector<float> losses;
  if (resumed) {
    state.params = resumed->params;
    state.adam_m = resumed->training->adam_m;
    state.adam_v = resumed->training->adam_v;
    state.ema = resumed->ema;
    if (o.ema > 0 && state.ema.empty()) throw Error(o.resume + ": --ema " + std::to_string(o.ema) + " but no EMA weights");
    state.step = resumed->meta.steps;
    losses = resumed->training->losses;
    if (state.step >= o.steps)
      throw tools::UsageError("--steps " + std::to_string(o.steps) + ": " + o.resume + " has already trained " +
                              std::to_string(state.step) + " steps");
  } else {
    state = cpu::TrainState::fresh(o.seed, model);
  }
  cfg.steps = o.steps - state.step;
  losses.reserve(std::size_t(o.steps));
  // A file's mean and population std, stored so that its model samples in the
  // file's units: a batch drawn from the file with replacement has that variance
  // as the expectation of the (n - 1) estimate each batch is divided by.
  std::optional<io::CheckpointMeta::DataScale> data_scale;
  if (data.dataset == Dataset::kFile) {
    const eval::Moments m = eval::points_moments(data.points.data(), int64_t(data.points.size() / 2));
    data_scale = {{m.mean[0], m.mean[1]}, {m.std[0], m.std[1]}};
  }

  // What every checkpoint of this run holds; `resumable` adds the training state.
  int64_t saved_step = -1;
  const auto save = [&](bool resumable) {
    if (!all_finite(state.params) || !all_finite(state.adam_m) || !all_finite(state.adam_v) || !all_finite(state.ema))
      throw Diverged("a weight or an Adam moment became non-finite by step " + std::to_string(state.step));
    io::Checkpoint ckpt;
    ckpt.params = state.params;
    ckpt.meta.T = o.T;
    ckpt.meta.beta_1 = sched.beta_1;  // the cosine schedule's own first and last beta
    ckpt.meta.beta_T = sched.beta_T;
    ckpt.meta.steps = state.step;
    ckpt.meta.seed = o.seed;
    ckpt.meta.last_loss = losses.empty() ? 0.f : losses.back();
    ckpt.meta.run = settings.stored();
    if (o.lr_decay == "cosine") ckpt.meta.run["lr-decay-steps"] = std::to_string(decay_steps);
    if (data.dataset == Dataset::kFile) ckpt.meta.run["data-checksum"] = points_checksum(data.points);
    ckpt.meta.data_scale = data_scale;
    ckpt.meta.schedule = sched.name;
    ckpt.meta.model = model;
    ckpt.ema = state.ema;
    if (resumable) ckpt.training = io::TrainingState{state.adam_m, state.adam_v, losses};
    io::save_checkpoint(o.out, ckpt);
    saved_step = state.step;
  };

  Progress progress(state.step, o.steps, o.log_every);
  std::optional<TrainingEval> evaluation;
  if (o.eval_every > 0) evaluation.emplace(o, sched, data.source(), model);
  const int64_t first_step = state.step;
  const auto t0 = std::chrono::steady_clock::now();
  // Every step's loss: checked, kept, shown.
  const auto record = [&](int64_t step, float loss) {
    if (!std::isfinite(loss)) throw Diverged("loss became non-finite (" + std::to_string(loss) + ") at step " + std::to_string(step));
    losses.push_back(loss);
    progress.update(step, loss);
  };
  // What happens after a step, with `state` at that step: evaluation, checkpoints, a pending signal.
  const auto after = [&](int64_t step) {
    if (evaluation && step % o.eval_every == 0) evaluation->at(step, state, progress);
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0 && step != o.steps) save(true);
    if (const int sig = tools::pending_interrupt()) {
      progress.clear();
      save(true);
      throw tools::Interrupted(std::string("interrupted by ") + tools::signal_name(sig) + " at step " +
                                   std::to_string(step) + " of " + std::to_string(o.steps) + "; wrote " + o.out +
                                   "; continue with --resume " + o.out,
                               sig);
    }
  };
  try {
    const tools::DeferInterrupts defer;  // a signal stops the loop at a step boundary
    if (device == tools::Device::kCuda) {
      // The GPU runs segments of steps without the host; a segment ends at every
      // step the host acts on (evaluation, checkpoint) and at least every
      // kGpuSegment steps, where a signal is seen.
      constexpr int64_t kGpuSegment = 250;
      gpu::GpuTrainer trainer(sched, cfg, state);
      auto next_multiple = [](int64_t step, int64_t every) {
        return every > 0 ? (step / every + 1) * every : INT64_MAX;
      };
      for (int64_t step = state.step; step < o.steps;) {
        const int64_t next = std::min({o.steps, next_multiple(step, kGpuSegment), next_multiple(step, o.eval_every),
                                       next_multiple(step, o.checkpoint_every)});
        trainer.run(next - step);
        const std::vector<float> segment = trainer.losses(step + 1, next - step);  // absolute step numbers
        for (int64_t k = 0; k < next - step; ++k) record(step + k + 1, segment[std::size_t(k)]);
        step = next;
        trainer.download(state);
        after(step);
      }
    } else {
      cpu::train(sched, cfg, state, [&](int64_t step, float loss) {
        record(step, loss);
        after(step);
      });
    }
  } catch (const Diverged& e) {
    progress.clear();
    throw Error(std::string(e.what()) + "; training stopped" +
                (saved_step >= 0 ? "; the last good checkpoint, " + o.out + " at step " + std::to_string(saved_step) +
                                       ", is kept"
                                 : o.checkpoint_every > 0 ? "; no checkpoint had been written yet"
                                                          : "; nothing written (--checkpoint-every N keeps one every N steps)"));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string where = device == tools::Device::kCuda ? std::string("GPU")
                                                           : std::string("CPU ") + cpu::name_of(cpu::active_cpu_isa());
  std::fprintf(stderr, "%s: %" PRId64 " steps in %.2f s (%.0f steps/s, %s), final loss %.4f\n", kTool,
               o.steps - first_step, secs, (o.steps - first_step) / secs, where.c_str(), losses.back());

  try {
    save(/*resumable=*/o.checkpoint_every > 0);
  } catch (const Diverged& e) {
    throw Error(std::string(e.what()) + "; nothing more written");
  }
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
    const auto snaps = cpu::forward_process(sched, o.seed, kForwardPoints, ts, data.source());
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
  return tools::run_tool(kTool, app, argc, argv, [&] { run(app, o); });
}
