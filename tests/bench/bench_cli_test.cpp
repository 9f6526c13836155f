// ddpm_bench's command line: bad --repeat and --peers values refused in one
// line; and the end-to-end rounds, run against planted peers (a stand-in for
// the peer environment's interpreter that logs each run and reports a planted
// time), interleaved round by round, with the medians, spreads and ratios of
// the JSON recomputed here from the planted times.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/tools/tool_runner.hpp"

namespace {

using ddpm::testing::Result;
using ddpm::testing::ScratchDir;
using ddpm::testing::slurp;
using nlohmann::json;

const std::string kBench = DDPM_BENCH_BIN;

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void expect_one_error_line(const Result& r, const std::string& names) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  const std::vector<std::string> err = lines_of(r.err);
  ASSERT_EQ(err.size(), 1u) << r.err;
  EXPECT_EQ(err[0].rfind("ddpm_bench: error: ", 0), 0u) << err[0];
  EXPECT_NE(err[0].find(names), std::string::npos) << err[0];
  EXPECT_EQ(r.out.find("End to end"), std::string::npos) << "nothing should have run:\n" << r.out;
}

TEST(BenchCli, RepeatBelowOneIsRefused) {
  ScratchDir dir;
  for (const char* bad : {"0", "-1"}) {
    SCOPED_TRACE(bad);
    const Result r = ddpm::testing::run(kBench, std::string("--only e2e --steps 1 --n 1 --repeat ") + bad, dir);
    expect_one_error_line(r, "--repeat");
    EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
  }
  expect_one_error_line(ddpm::testing::run(kBench, "--only e2e --repeat three", dir), "three");
}

TEST(BenchCli, UnknownPeerIsRefused) {
  ScratchDir dir;
  expect_one_error_line(ddpm::testing::run(kBench, "--only e2e --peer --peers jax,tensorflow", dir), "tensorflow");
}

// The stand-in interpreter: `-c 'import X'` succeeds; a run appends its
// arguments to `log`, takes the next line of `times` as its seconds (the
// count of runs so far in `count`), and fails for --compile, as a torch
// without a compiler does.
const char* kFakePython = R"(#!/bin/sh
[ "$1" = -c ] && exit 0
dir=$(dirname "$0")
script=$(basename "$1"); shift
args="$*"
what=; out=
while [ $# -gt 0 ]; do
  case "$1" in --what) what=$2; shift ;; --json) out=$2; shift ;; esac
  shift
done
n=$(( $(cat "$dir/count") + 1 )); echo "$n" > "$dir/count"
echo "$script $args" >> "$dir/log"
case "$args" in *--compile*) echo "planted failure: no compiler here" >&2; exit 1 ;; esac
t=$(sed -n "${n}p" "$dir/times")
printf '{"torch_version": "2.99.0+cpu", "jax_version": "0.99.1", "adam": "fused", "%s_seconds": %s}\n' "$what" "$t" > "$out"
)";

// The variant a logged run was, named as ddpm_bench names it ("torch-pypi fused Adam 2T"), worked out
// from the script and its flags.
std::string variant_of(const std::string& logged) {
  const auto has = [&](const std::string& s) { return logged.find(s) != std::string::npos; };
  const std::string threads = has("--threads 1 ") ? "1T" : has("--threads 2 ") ? "2T" : "?T";
  if (logged.rfind("ddpm_jax.py", 0) == 0) return "jax jit " + threads;
  if (has("--compile")) return "torch-pypi compile " + threads;
  if (has("--adam fused")) return "torch-pypi fused Adam " + threads;
  return "torch-pypi eager " + threads;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

TEST(BenchCli, RoundsInterleaveOursAndThePeers) {
  ScratchDir dir;
  const std::string venv = dir / "venv";
  std::filesystem::create_directories(venv + "/bin");
  {
    std::ofstream(venv + "/bin/python") << kFakePython;
    chmod((venv + "/bin/python").c_str(), 0755);
    std::ofstream(venv + "/bin/count") << "0\n";
    // Fresh times for every run (more lines than runs), distinct, with 6 decimals as JSON carries them.
    std::mt19937_64 rng{std::random_device{}()};
    std::ofstream times(venv + "/bin/times");
    for (int i = 0; i < 100; ++i) times << (1 + int(rng() % 9000000)) * 1e-6 + 0.5 << "\n";
  }
  std::vector<double> planted;
  for (const std::string& l : lines_of(slurp(venv + "/bin/times"))) planted.push_back(std::stod(l));

  const int rounds = 3;
  const Result r = ddpm::testing::run(kBench,
                                      "--only e2e --steps 3 --n 16 --repeat 3 --peer --peers torch-pypi,jax "
                                      "--peer-venv '" +
                                          venv + "' --gpu-jobs none --json e.json",
                                      dir);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const json j = json::parse(slurp(dir / "e.json"));
  EXPECT_EQ(j["repeat"], rounds);

  // Ours: every variant without a peer, in the JSON's order (the builds this CPU has).
  std::map<std::string, std::vector<std::string>> ours;
  for (const json& v : j["variants"])
    if (!v.contains("peer")) ours[v["job"]].push_back(v["variant"]);
  const std::string train = "train 3 x 512", sample = "sample 16 x 500";
  ASSERT_FALSE(ours[train].empty());
  ASSERT_FALSE(ours[sample].empty());
  // Every peer variant at 1 and 2 threads, in ddpm_bench's order; compile fails in round 1 and drops out.
  const std::vector<std::string> train_peers = {"torch-pypi eager 1T",
                                                "torch-pypi eager 2T",
                                                "torch-pypi fused Adam 1T",
                                                "torch-pypi fused Adam 2T",
                                                "torch-pypi compile 1T",
                                                "torch-pypi compile 2T",
                                                "jax jit 1T",
                                                "jax jit 2T"};
  std::vector<std::string> want;
  for (const std::string& job : {train, sample})
    for (int round = 1; round <= rounds; ++round) {
      for (const std::string& o : ours[job]) want.push_back(job + " " + std::to_string(round) + " " + o);
      for (const std::string& p : train_peers) {
        if (job == sample && p.find("fused Adam") != std::string::npos) continue;  // no optimizer to fuse
        if (round > 1 && p.find("compile") != std::string::npos) continue;
        want.push_back(job + " " + std::to_string(round) + " " + p);
      }
    }
  std::vector<std::string> got, peers_in_order;
  for (const json& o : j["order"]) {
    const std::string variant = o["variant"];
    got.push_back(o["job"].get<std::string>() + " " + std::to_string(o["round"].get<int>()) + " " + variant);
    if (variant.rfind("ddpm cpu", 0) != 0) peers_in_order.push_back(variant);
  }
  EXPECT_EQ(got, want);

  // The interpreter's own log: the peers' runs in the order above, each with its planted time.
  const std::vector<std::string> logged = lines_of(slurp(venv + "/bin/log"));
  std::map<std::string, std::vector<double>> times_of;  // "job|variant" -> seconds, round by round
  ASSERT_EQ(logged.size(), peers_in_order.size()) << slurp(venv + "/bin/log");
  for (std::size_t i = 0; i < logged.size(); ++i) {
    const std::string job = logged[i].find("--what train") != std::string::npos ? train : sample;
    EXPECT_EQ(variant_of(logged[i]), peers_in_order[i]) << logged[i];
    if (logged[i].find("--compile") == std::string::npos)
      times_of[job + "|" + variant_of(logged[i])].push_back(planted[i]);
  }

  // Each variant: its rounds' seconds as planted, their median and range; ours: the median of its own.
  std::map<std::string, json> variants;
  for (const json& v : j["variants"]) {
    const std::string key = v["job"].get<std::string>() + "|" + v["variant"].get<std::string>();
    variants[key] = v;
    if (v["variant"].get<std::string>().find("compile") != std::string::npos) {
      EXPECT_NE(v.value("error", "").find("planted failure"), std::string::npos) << v.dump();
      EXPECT_TRUE(v["runs_seconds"].empty());
      continue;
    }
    const std::vector<double> secs = v["runs_seconds"];
    ASSERT_EQ(secs.size(), std::size_t(rounds)) << v.dump();
    if (v.contains("peer")) {
      ASSERT_EQ(times_of[key].size(), secs.size()) << key;
      for (std::size_t k = 0; k < secs.size(); ++k) EXPECT_NEAR(secs[k], times_of[key][k], 1e-9) << key;
    }
    EXPECT_DOUBLE_EQ(v["median_seconds"].get<double>(), median(secs)) << key;
    EXPECT_DOUBLE_EQ(v["min_seconds"].get<double>(), *std::min_element(secs.begin(), secs.end())) << key;
    EXPECT_DOUBLE_EQ(v["max_seconds"].get<double>(), *std::max_element(secs.begin(), secs.end())) << key;
  }

  // Ratios: each of ours against each peer's fastest variant (by median), the best of them marked.
  for (const std::string& job : {train, sample}) {
    std::map<std::string, std::string> fastest;  // peer -> its variant of the smallest median
    for (const auto& [key, v] : variants) {
      if (key.rfind(job + "|", 0) != 0 || !v.contains("peer") || v["runs_seconds"].empty()) continue;
      const std::string peer = v["peer"];
      const std::string name = v["variant"];
      if (!fastest.count(peer) ||
          median(v["runs_seconds"]) < median(variants.at(job + "|" + fastest[peer])["runs_seconds"]))
        fastest[peer] = name;
    }
    ASSERT_EQ(fastest.size(), 2u) << job;
    std::string best = fastest.begin()->second;
    for (const auto& [peer, name] : fastest)
      if (median(variants.at(job + "|" + name)["runs_seconds"]) < median(variants.at(job + "|" + best)["runs_seconds"]))
        best = name;
    int checked = 0;
    for (const json& ratio : j["ratios"]) {
      if (ratio["job"] != job) continue;
      ++checked;
      const std::string peer = ratio["peer"];
      const json& p = variants.at(job + "|" + fastest.at(peer));
      EXPECT_EQ(ratio["against"], p["impl"]) << ratio.dump();
      const json* o = nullptr;
      for (const auto& [key, v] : variants)
        if (key.rfind(job + "|", 0) == 0 && !v.contains("peer") && v["impl"] == ratio["ours"]) o = &v;
      ASSERT_NE(o, nullptr) << ratio.dump();
      const std::vector<double> ps = p["runs_seconds"], os = (*o)["runs_seconds"];
      EXPECT_DOUBLE_EQ(ratio["ratio_of_medians"].get<double>(), median(ps) / median(os)) << ratio.dump();
      double lo = 1e300, hi = 0;
      for (int k = 0; k < rounds; ++k) {
        lo = std::min(lo, ps[k] / os[k]);
        hi = std::max(hi, ps[k] / os[k]);
      }
      EXPECT_DOUBLE_EQ(ratio["same_round_min"].get<double>(), lo);
      EXPECT_DOUBLE_EQ(ratio["same_round_max"].get<double>(), hi);
      EXPECT_EQ(ratio["best_peer"].get<bool>(), fastest.at(peer) == best) << ratio.dump();
    }
    EXPECT_EQ(checked, int(ours[job].size() * 2)) << job;
  }
  // The table says which spread it shows, and the failure in one line.
  EXPECT_NE(r.out.find("min..max"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("torch-pypi compile 1T failed: planted failure"), std::string::npos) << r.out;
}

}  // namespace
