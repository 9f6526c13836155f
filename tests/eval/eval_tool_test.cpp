// ddpm_eval as a user runs it: reports, and one-line errors that leave no output behind.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "ddpm/rng.hpp"
#include "host/io/samples_io.hpp"
#include "tests/tools/tool_runner.hpp"
#include "host/eval/metrics.hpp"

namespace {

using ddpm::testing::count_lines;
using ddpm::testing::Result;
using ddpm::testing::ScratchDir;

Result eval(const std::string& args, const ScratchDir& dir) { return ddpm::testing::run(DDPM_EVAL_BIN, args, dir); }

void write_samples(const std::string& path, const std::vector<float>& xy) {
  ddpm::io::SampleWriter w(path, int64_t(xy.size() / 2));
  w.write(xy.data(), int64_t(xy.size() / 2));
  w.commit();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A failed run: non-zero exit `code`, exactly one line on stderr naming `needle`, nothing on stdout,
// and no report file.
void expect_error(const Result& r, int code, const std::string& needle, const ScratchDir& dir) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("ddpm_eval: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "'" << needle << "' not in: " << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "report.json"));
  for (const std::string& name : dir.files()) EXPECT_EQ(name.find("report.json"), std::string::npos) << name;
}

TEST(EvalTool, TextJsonAndOut) {
  ScratchDir dir;
  write_samples(dir / "s.npy", ddpm::eval::true_moons(2000, 3, ddpm::Stream::kSample));
  const Result text = eval("s.npy", dir);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* word : {"sliced W1", "MMD^2", "precision", "recall", "noise floor", "note:"})
    EXPECT_NE(text.out.find(word), std::string::npos) << word;

  const Result json = eval("s.npy --json --seed 5 --out report.json", dir);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["n"], 2000);
  EXPECT_EQ(j["seed"], 5);
  EXPECT_EQ(ddpm::testing::slurp(dir / "report.json"), json.out);
  // Draws of the true distribution score like the floor.
  EXPECT_GT(j["samples"]["precision"].get<double>(), 0.9);
  EXPECT_LT(j["samples"]["sliced_w1"].get<double>(), 3 * j["floor"]["sliced_w1"].get<double>());
}

TEST(EvalTool, CsvInput) {
  ScratchDir dir;
  const std::vector<float> xy = ddpm::eval::true_moons(50, 1, ddpm::Stream::kSample);
  std::string csv = "x,y\n";
  for (std::size_t i = 0; i < xy.size(); i += 2) csv += std::to_string(xy[i]) + "," + std::to_string(xy[i + 1]) + "\n";
  write_text(dir / "s.csv", csv);
  const Result r = eval("s.csv --json", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["n"], 50);
}

TEST(EvalTool, HelpListsEveryFlagWithItsDefault) {
  ScratchDir dir;
  const Result r = eval("--help", dir);
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"--seed", "--json", "--out", "--data", "--units", "SAMPLES", "default"})
    EXPECT_NE(r.out.find(word), std::string::npos) << word << " not in:\n" << r.out;
  EXPECT_NE(r.out.find("=0"), std::string::npos) << r.out;  // --seed's default
}

TEST(EvalTool, UsageErrors) {
  ScratchDir dir;
  write_samples(dir / "s.npy", ddpm::eval::true_moons(100, 3, ddpm::Stream::kSample));
  expect_error(eval("", dir), 2, "SAMPLES", dir);
  expect_error(eval("s.npy --seed abc --out report.json", dir), 2, "abc", dir);
  expect_error(eval("s.npy --seed -1 --out report.json", dir), 2, "-1", dir);
  expect_error(eval("s.npy --seed 0x10 --out report.json", dir), 2, "0x10", dir);
  expect_error(eval("s.npy --seed 18446744073709551616 --out report.json", dir), 2, "18446744073709551616", dir);
  expect_error(eval("s.npy --frobnicate", dir), 2, "frobnicate", dir);
  expect_error(eval("s.npy --out ''", dir), 2, "--out", dir);
  expect_error(eval("s.npy --units meters --out report.json", dir), 2, "--units", dir);
}

TEST(EvalTool, BadInputFiles) {
  ScratchDir dir;
  expect_error(eval("missing.npy --out report.json", dir), 1, "missing.npy", dir);

  write_samples(dir / "good.npy", ddpm::eval::true_moons(100, 3, ddpm::Stream::kSample));
  const std::string bytes = ddpm::testing::slurp(dir / "good.npy");
  write_text(dir / "short.npy", bytes.substr(0, bytes.size() - 12));
  expect_error(eval("short.npy --out report.json", dir), 1, "short.npy", dir);

  write_text(dir / "word.csv", "x,y\n0.5,0.25\n0.1,banana\n");
  expect_error(eval("word.csv --out report.json", dir), 1, "word.csv", dir);

  write_samples(dir / "few.npy", ddpm::eval::true_moons(9, 3, ddpm::Stream::kSample));
  expect_error(eval("few.npy --out report.json", dir), 1, "at least 10", dir);

  std::vector<float> xy = ddpm::eval::true_moons(100, 3, ddpm::Stream::kSample);
  xy[41] = std::nanf("");
  write_samples(dir / "nan.npy", xy);
  expect_error(eval("nan.npy --out report.json", dir), 1, "finite", dir);

  write_text(dir / "s.txt", "0,0\n");
  expect_error(eval("s.txt --out report.json", dir), 1, "s.txt", dir);
}

// A user's file far from the origin, scaled unevenly, and samples of it in its units (a fresh
// draw of the same two blobs) and normalized as the file is (in double, here).
TEST(EvalTool, FileSamplesAreReadInTheFilesUnits) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::normal_distribution<float> z;
  const auto blobs = [&](std::size_t n) {
    std::vector<float> xy(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
      const float side = (gen() & 1) ? 1.f : -1.f;
      xy[2 * i] = 100.f + 10.f * (side + 0.3f * z(gen));
      xy[2 * i + 1] = -50.f + 0.1f * (0.5f * side + 0.3f * z(gen));
    }
    return xy;
  };
  const std::vector<float> file = blobs(3000), samples = blobs(2000);
  std::vector<float> normalized(samples.size());
  for (int d = 0; d < 2; ++d) {
    double sum = 0, sq = 0;
    for (std::size_t i = 0; i < file.size() / 2; ++i) sum += file[2 * i + d];
    const double mean = sum / double(file.size() / 2);
    for (std::size_t i = 0; i < file.size() / 2; ++i) sq += (file[2 * i + d] - mean) * (file[2 * i + d] - mean);
    const double sd = std::sqrt(sq / double(file.size() / 2));
    for (std::size_t i = 0; i < samples.size() / 2; ++i)
      normalized[2 * i + d] = float((double(samples[2 * i + d]) - mean) / sd);
  }
  ScratchDir dir;
  write_samples(dir / "file.npy", file);
  write_samples(dir / "data.npy", samples);
  write_samples(dir / "norm.npy", normalized);
  const auto report = [&](const std::string& args) {
    const Result r = eval("--json --data file.npy " + args, dir);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  // The default reads the file's units, --units normalized the model's: the same report.
  const std::string in_data = report("data.npy");
  EXPECT_EQ(in_data, report("--units data data.npy"));
  EXPECT_EQ(in_data, report("--units normalized norm.npy"));
  const auto j = nlohmann::json::parse(in_data);
  EXPECT_EQ(j["data"], "file");
  EXPECT_GT(j["samples"]["precision"].get<double>(), 0.9);
  // Each read in the other's units is far off.
  for (const std::string& args : {std::string("norm.npy"), std::string("--units normalized data.npy")})
    EXPECT_LT(nlohmann::json::parse(report(args))["samples"]["precision"].get<double>(), 0.05) << args;
  // A built-in set has one unit: --units changes nothing.
  write_samples(dir / "moons.npy", ddpm::eval::true_moons(500, 3, ddpm::Stream::kSample));
  const Result a = eval("--json moons.npy", dir), b = eval("--json --units normalized moons.npy", dir);
  EXPECT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
}

}  // namespace
