// What a long run survives: SIGKILL and resume, SIGINT/SIGTERM, a diverging
// loss, a full disk. Each test drives the real tools as a user would.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "host/io/checkpoint.hpp"
#include "tests/tools/tool_runner.hpp"

namespace ddpm {
namespace {

using testing::Background;
using testing::run;
using testing::ScratchDir;
using testing::slurp;
using testing::wait_until;

const std::string kTrain = DDPM_TRAIN_BIN;
const std::string kSample = DDPM_SAMPLE_BIN;

std::vector<std::string> train_args(int64_t steps, const std::string& out) {
  return {"--steps", std::to_string(steps), "--batch", "128", "--checkpoint-every", "100", "--log-every", "0",
          "--loss-png", "", "--forward-png", "", "--loss-csv", "loss.csv", "--out", out};
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const std::string& a : args) s += " '" + a + "'";
  return s;
}

bool exists(const std::string& path) { return std::filesystem::exists(path); }

std::string last_line(const std::string& s) {
  const std::size_t end = s.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  const std::size_t begin = s.rfind('\n', end);
  return s.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1) + 1);
}

// Files of the directory other than the tests' own captured output.
std::vector<std::string> outputs(const ScratchDir& dir) {
  std::vector<std::string> names;
  for (const std::string& f : dir.files())
    if (f != "out.txt" && f != "err.txt") names.push_back(f);
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Reliability, KilledRunResumesBitIdentically) {
  constexpr int64_t kSteps = 2000;
  ScratchDir whole, killed;
  const auto r = run(kTrain, joined(train_args(kSteps, "ckpt.safetensors")), whole);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // The same run, killed with SIGKILL once its first periodic checkpoint exists.
  Background bg(kTrain, train_args(kSteps, "ckpt.safetensors"), killed.path.string(), killed / "out.txt",
                killed / "err.txt");
  ASSERT_TRUE(bg.started());
  ASSERT_TRUE(wait_until([&] { return exists(killed / "ckpt.safetensors"); }, 120)) << slurp(killed / "err.txt");
  bg.signal(SIGKILL);
  ASSERT_EQ(bg.wait(), 128 + SIGKILL);
  const io::Checkpoint cut = io::load_checkpoint(killed / "ckpt.safetensors");
  ASSERT_TRUE(cut.training.has_value());
  ASSERT_GT(cut.meta.steps, 0);
  ASSERT_LT(cut.meta.steps, kSteps) << "the run ended before it could be killed";
  EXPECT_EQ(cut.meta.steps % 100, 0);

  // Resumed with the same command line plus --resume: the same bytes as the whole run.
  std::vector<std::string> resume = train_args(kSteps, "ckpt.safetensors");
  resume.insert(resume.end(), {"--resume", "ckpt.safetensors"});
  const auto rr = run(kTrain, joined(resume), killed);
  ASSERT_EQ(rr.exit_code, 0) << rr.err;
  EXPECT_TRUE(slurp(whole / "ckpt.safetensors") == slurp(killed / "ckpt.safetensors"));
  EXPECT_TRUE(slurp(whole / "loss.csv") == slurp(killed / "loss.csv"));
}

TEST(Reliability, ResumeRefusesContradictionsAndPlainCheckpoints) {
  ScratchDir dir;
  ASSERT_EQ(run(kTrain, joined(train_args(100, "a.safetensors")), dir).exit_code, 0);
  std::vector<std::string> plain = train_args(100, "plain.safetensors");
  plain[5] = "0";  // --checkpoint-every 0: a final checkpoint without the training state
  ASSERT_EQ(run(kTrain, joined(plain), dir).exit_code, 0);
  const auto expect = [&](const std::string& args, int code, const std::string& needle) {
    SCOPED_TRACE(args);
    const auto r = run(kTrain, args, dir);
    EXPECT_EQ(r.exit_code, code);
    EXPECT_NE(last_line(r.err).find(needle), std::string::npos) << r.err;
  };
  expect("--steps 200 --resume a.safetensors --out b.safetensors --batch 64", 2,
         "--batch 64 contradicts a.safetensors, which has 128");
  expect("--steps 200 --resume a.safetensors --out b.safetensors --seed 3", 2, "--seed 3 contradicts");
  expect("--steps 200 --resume a.safetensors --out b.safetensors --lr 0.002", 2, "--lr 0.00200000009 contradicts");
  expect("--steps 100 --resume a.safetensors --out b.safetensors", 2, "has already trained 100 steps");
  expect("--steps 200 --resume plain.safetensors --out b.safetensors", 1, "holds no training state");
  expect("--steps 200 --resume missing.safetensors --out b.safetensors", 1, "missing.safetensors");
  // Agreeing flags (the seed's defaults spelled out) are accepted.
  const auto ok = run(kTrain,
                      "--steps 150 --resume a.safetensors --out b.safetensors --batch 128 --lr 0.001 --T 500 "
                      "--beta-1 0.0001 --beta-T 0.02 --seed 0 --loss-png '' --forward-png '' --loss-csv ''",
                      dir);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(io::load_checkpoint(dir / "b.safetensors").meta.steps, 150);
}

TEST(Reliability, SigintStopsTrainingWithAResumableCheckpoint) {
  for (const int sig : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(sig == SIGINT ? "SIGINT" : "SIGTERM");
    ScratchDir dir;
    Background bg(kTrain, train_args(1000000, "ckpt.safetensors"), dir.path.string(), dir / "out.txt",
                  dir / "err.txt");
    ASSERT_TRUE(wait_until([&] { return exists(dir / "ckpt.safetensors"); }, 120)) << slurp(dir / "err.txt");
    bg.signal(sig);
    EXPECT_EQ(bg.wait(), 128 + sig);
    const std::string err = slurp(dir / "err.txt");
    const std::string line = last_line(err);
    EXPECT_NE(line.find(std::string("interrupted by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + " at step "),
              std::string::npos)
        << err;
    EXPECT_NE(line.find("wrote ckpt.safetensors; continue with --resume ckpt.safetensors"), std::string::npos) << err;
    // The checkpoint is of the step the message names, resumable, and nothing else was left.
    const io::Checkpoint ckpt = io::load_checkpoint(dir / "ckpt.safetensors");
    ASSERT_TRUE(ckpt.training.has_value());
    EXPECT_NE(line.find("at step " + std::to_string(ckpt.meta.steps) + " of 1000000"), std::string::npos) << err;
    EXPECT_EQ(outputs(dir), std::vector<std::string>{"ckpt.safetensors"});

    // Resuming it for 20 more steps gives what an uninterrupted run of that length gives.
    const int64_t total = ckpt.meta.steps + 20;
    std::vector<std::string> resume = train_args(total, "ckpt.safetensors");
    resume.insert(resume.end(), {"--resume", "ckpt.safetensors"});
    ASSERT_EQ(run(kTrain, joined(resume), dir).exit_code, 0);
    ScratchDir whole;
    ASSERT_EQ(run(kTrain, joined(train_args(total, "ckpt.safetensors")), whole).exit_code, 0);
    EXPECT_TRUE(slurp(whole / "ckpt.safetensors") == slurp(dir / "ckpt.safetensors"));
  }
}

TEST(Reliability, InterruptedSamplingLeavesNoFile) {
  ScratchDir dir;
  ASSERT_EQ(run(kTrain, "--steps 2 --batch 16 --loss-png '' --forward-png '' --loss-csv '' --out c.safetensors", dir)
                .exit_code,
            0);
  for (const int sig : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(sig == SIGINT ? "SIGINT" : "SIGTERM");
    Background bg(kSample, {"--ckpt", "c.safetensors", "--n", "100000000", "--chunk", "1000", "--out", "s.npy"},
                  dir.path.string(), dir / "out.txt", dir / "err.txt");
    // Wait until the sample file is being written (its temporary exists).
    const auto writing = [&] {
      for (const std::string& f : dir.files())
        if (f.rfind("s.npy.tmp.", 0) == 0) return true;
      return false;
    };
    ASSERT_TRUE(wait_until(writing, 120)) << slurp(dir / "err.txt");
    bg.signal(sig);
    EXPECT_EQ(bg.wait(), 128 + sig);
    const std::string err = slurp(dir / "err.txt");
    EXPECT_NE(last_line(err).find("interrupted by"), std::string::npos) << err;
    EXPECT_EQ(outputs(dir), std::vector<std::string>{"c.safetensors"});
  }
}

TEST(Reliability, DivergenceStopsTrainingAndKeepsTheLastGoodCheckpoint) {
  ScratchDir dir;
  // An absurd learning rate: the first step is finite, the second overflows.
  const auto r = run(kTrain,
                     "--steps 100 --batch 64 --lr 100000 --checkpoint-every 1 --log-every 0 --loss-png '' "
                     "--forward-png '' --loss-csv loss.csv --out ckpt.safetensors",
                     dir);
  EXPECT_EQ(r.exit_code, 1);
  const std::string line = last_line(r.err);
  EXPECT_NE(line.find("error: "), std::string::npos) << r.err;
  EXPECT_NE(line.find("non-finite"), std::string::npos) << r.err;
  EXPECT_NE(line.find("the last good checkpoint, ckpt.safetensors at step "), std::string::npos) << r.err;
  const io::Checkpoint kept = io::load_checkpoint(dir / "ckpt.safetensors");  // finite, or it would not load
  EXPECT_GE(kept.meta.steps, 1);
  EXPECT_NE(line.find("at step " + std::to_string(kept.meta.steps) + ", is kept"), std::string::npos) << r.err;
  EXPECT_EQ(outputs(dir), std::vector<std::string>{"ckpt.safetensors"});  // no loss log of a failed run
}

TEST(Reliability, FullDiskIsAClearErrorAndLeavesNoFile) {
  ScratchDir dir;
  ASSERT_EQ(run(kTrain, "--steps 2 --batch 16 --T 4 --loss-png '' --forward-png '' --loss-csv '' --out c.safetensors",
                dir)
                .exit_code,
            0);
  const std::string before = slurp(dir / "c.safetensors");
  // A file-size limit stands in for a full disk: writes past 64 KiB fail
  // (EFBIG) like writes to a full file system (ENOSPC) do; SIGXFSZ is ignored
  // so the write reports the error instead of killing the tool.
  const auto limited = [&](const std::string& bin, const std::string& args) {
    return run("/bin/sh", "-c \"ulimit -f 128; trap '' XFSZ; exec '" + bin + "' " + args + "\"", dir);
  };
  const auto s = limited(kSample, "--ckpt c.safetensors --n 100000 --chunk 1000 --out s.npy --png ''");
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_NE(last_line(s.err).find("s.npy: "), std::string::npos) << s.err;
  EXPECT_NE(last_line(s.err).find("File too large"), std::string::npos) << s.err;
  // The checkpoint (167 KiB) cannot be written either; the good one in its place is kept.
  const auto t = limited(kTrain, "--steps 2 --batch 16 --T 4 --loss-png '' --forward-png '' --loss-csv '' "
                                 "--out c.safetensors");
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_NE(last_line(t.err).find("c.safetensors: "), std::string::npos) << t.err;
  EXPECT_TRUE(slurp(dir / "c.safetensors") == before);
  EXPECT_EQ(outputs(dir), std::vector<std::string>{"c.safetensors"});
}

TEST(Reliability, OutputsThatAreNotRegularFilesAreRefused) {
  ScratchDir dir;
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0600), 0);
  std::filesystem::create_directory(dir / "sub");
  const auto r = run(kTrain, "--steps 2 --batch 16 --out pipe", dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(last_line(r.err).find("pipe: is not a regular file"), std::string::npos) << r.err;
  const auto d = run(kTrain, "--steps 2 --batch 16 --out sub", dir);
  EXPECT_EQ(d.exit_code, 1);
  EXPECT_NE(last_line(d.err).find("sub: is a directory"), std::string::npos) << d.err;
  struct stat st;
  ASSERT_EQ(::stat((dir / "pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));  // the pipe is still a pipe
  EXPECT_TRUE(std::filesystem::is_directory(dir / "sub"));
  EXPECT_EQ(outputs(dir), (std::vector<std::string>{"pipe", "sub"}));
}

}  // namespace
}  // namespace ddpm
