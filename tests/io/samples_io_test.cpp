#include "host/io/samples_io.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "io_test_util.hpp"

namespace ddpm::io {
namespace {

using test::float_bytes;
using test::read_bytes;
using test::same_bits;
using test::TempDir;
using test::throws_error;
using test::write_bytes;
using namespace std::string_literals;

// Writes n points through SampleWriter in chunks of `chunk` points.
void write_chunked(const std::string& path, const std::vector<float>& xy, int64_t chunk) {
  const int64_t n = int64_t(xy.size() / 2);
  SampleWriter w(path, n);
  for (int64_t first = 0; first < n; first += chunk) w.write(xy.data() + 2 * first, std::min(chunk, n - first));
  w.commit();
}

std::string npy_bytes(int major, const std::string& dict, const std::string& data) {
  std::string s = "\x93NUMPY";
  s += char(major);
  s += char(0);
  const std::size_t len = dict.size();
  s += char(len & 0xff);
  s += char((len >> 8) & 0xff);
  if (major >= 2) {
    s += char((len >> 16) & 0xff);
    s += char((len >> 24) & 0xff);
  }
  return s + dict + data;
}

std::string dict_of(const std::string& descr, const std::string& shape, const char* fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
}

TEST(SampleFormat, FromExtension) {
  EXPECT_EQ(sample_format_of("a.npy"), SampleFormat::kNpy);
  EXPECT_EQ(sample_format_of("dir.x/B.NPY"), SampleFormat::kNpy);
  EXPECT_EQ(sample_format_of("a.csv"), SampleFormat::kCsv);
  EXPECT_EQ(sample_format_of("a.CsV"), SampleFormat::kCsv);
  for (const char* bad : {"a.txt", "npy", "a.npy.gz", "", "a.npz"})
    EXPECT_TRUE(throws_error([&] { sample_format_of(bad); }, {"expected a .npy or .csv"})) << bad;
}

TEST(SampleIo, NpyRoundTripChunked) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("s.npy");
  // n is never a multiple of the chunk, so the last write is a partial chunk.
  const int64_t chunk = 64 + int64_t(rng() % 64);
  const int64_t n = chunk * (8 + int64_t(rng() % 8)) + 1 + int64_t(rng() % uint32_t(chunk - 1));
  const std::vector<float> xy = test::random_floats(rng, std::size_t(2 * n));
  write_chunked(path, xy, chunk);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"s.npy"});
  EXPECT_TRUE(same_bits(xy, read_samples(path)));

  // The exact .npy v1.0 layout.
  const std::string bytes = read_bytes(path);
  ASSERT_GT(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t hlen = std::size_t(static_cast<unsigned char>(bytes[8])) |
                           std::size_t(static_cast<unsigned char>(bytes[9])) << 8;
  EXPECT_EQ((10 + hlen) % 64, 0u);
  ASSERT_EQ(bytes.size(), 10 + hlen + std::size_t(n) * 8);
  const std::string dict = bytes.substr(10, hlen);
  const std::string expected = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ", 2), }";
  EXPECT_EQ(dict.substr(0, expected.size()), expected);
  EXPECT_EQ(dict.back(), '\n');
  EXPECT_EQ(dict.find_first_not_of(' ', expected.size()), hlen - 1);
  EXPECT_EQ(bytes.substr(10 + hlen), float_bytes(xy));
}

TEST(SampleIo, CsvRoundTripChunked) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("s.csv");
  const int64_t n = 3000 + int64_t(rng() % 3000), chunk = 1000 + int64_t(rng() % 1000);
  std::vector<float> xy = test::random_floats(rng, std::size_t(2 * n));
  // The extremes, which %.9g must carry exactly.
  const std::vector<float> edge = {0.f, -0.f, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                   std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(),
                                   -std::numeric_limits<float>::denorm_min(), 1.f / 3.f};
  std::copy(edge.begin(), edge.end(), xy.begin());
  write_chunked(path, xy, chunk);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"s.csv"});
  EXPECT_TRUE(same_bits(xy, read_samples(path)));
  const std::string text = read_bytes(path);
  EXPECT_EQ(text.substr(0, 4), "x,y\n");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), n + 1);
}

TEST(SampleIo, ZeroPoints) {
  TempDir dir;
  for (const char* name : {"z.npy", "z.csv"}) {
    SCOPED_TRACE(name);
    SampleWriter w(dir.file(name), 0);
    w.write(nullptr, 0);
    w.commit();
    EXPECT_TRUE(read_samples(dir.file(name)).empty());
  }
  EXPECT_EQ(read_bytes(dir.file("z.csv")), "x,y\n");
}

TEST(SampleIo, WrongCountThrowsAndLeavesNothing) {
  TempDir dir;
  const float xy[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (const char* name : {"s.npy", "s.csv"}) {
    SCOPED_TRACE(name);
    const std::string path = dir.file(name);
    {
      SampleWriter w(path, 4);
      w.write(xy, 3);
      EXPECT_TRUE(throws_error([&] { w.commit(); }, {path, "wrote 3 points but announced 4"}));
    }
    EXPECT_TRUE(dir.entries().empty());
    {
      SampleWriter w(path, 4);
      w.write(xy, 3);
      EXPECT_TRUE(throws_error([&] { w.write(xy, 2); }, {path, "exceeds the announced 4"}));
      EXPECT_TRUE(throws_error([&] { w.write(xy, -1); }, {path}));
    }
    EXPECT_TRUE(dir.entries().empty());
  }
}

TEST(SampleIo, BadOutputPathsThrow) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { SampleWriter w(dir.file("none/s.npy"), 1); }, {"none/s.npy", "No such file"}));
  EXPECT_TRUE(throws_error([&] { SampleWriter w(dir.file("none/s.csv"), 1); }, {"none/s.csv"}));
  EXPECT_TRUE(throws_error([&] { SampleWriter w(dir.file("s.txt"), 1); }, {"s.txt", "expected a .npy or .csv"}));
  EXPECT_TRUE(throws_error([&] { SampleWriter w(dir.file("s.npy"), -1); }, {"negative"}));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(SampleIo, ReadsOtherNpyVersionsAndFloat64) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("in.npy");
  const std::vector<float> xy = test::random_floats(rng, 2 * 37);
  for (const int major : {1, 2, 3}) {
    SCOPED_TRACE("version " + std::to_string(major));
    write_bytes(path, npy_bytes(major, dict_of("<f4", "(37, 2)"), float_bytes(xy)));
    EXPECT_TRUE(same_bits(xy, read_samples(path)));
  }
  // float64, as numpy writes by default; "shape" first and no trailing comma.
  std::string f64;
  for (const float v : xy) {
    const double d = v;
    f64.append(reinterpret_cast<const char*>(&d), 8);
  }
  write_bytes(path, npy_bytes(1, "{\"shape\": (37,2), \"fortran_order\": False, \"descr\": \"<f8\"}", f64));
  EXPECT_TRUE(same_bits(xy, read_samples(path)));
}

TEST(SampleIo, RejectsMalformedNpy) {
  TempDir dir;
  const std::string path = dir.file("bad.npy");
  const std::string d2 = float_bytes({1, 2, 3, 4});  // two points
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const double big = 1e300;
  const std::string f64_big = std::string(8, '\0') + std::string(reinterpret_cast<const char*>(&big), 8);
  struct Case {
    const char* what;
    std::string bytes;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"empty", "", {"bad magic"}},
      {"bad magic", npy_bytes(1, dict_of("<f4", "(2, 2)"), d2).replace(1, 1, "X"), {"bad magic"}},
      {"version 4", npy_bytes(3, dict_of("<f4", "(2, 2)"), d2).replace(6, 1, "\x04"), {"version 4.0 not supported"}},
      {"version 1.1", npy_bytes(1, dict_of("<f4", "(2, 2)"), d2).replace(7, 1, "\x01"), {"version 1.1"}},
      {"header past the end", npy_bytes(1, dict_of("<f4", "(2, 2)"), "").substr(0, 30), {"runs past the end"}},
      {"big-endian", npy_bytes(1, dict_of(">f4", "(2, 2)"), d2), {"dtype '>f4' not supported"}},
      {"int32", npy_bytes(1, dict_of("<i4", "(2, 2)"), d2), {"dtype '<i4' not supported"}},
      {"fortran order", npy_bytes(1, dict_of("<f4", "(2, 2)", "True"), d2), {"fortran_order True not supported"}},
      {"three columns", npy_bytes(1, dict_of("<f4", "(2, 3)"), d2 + float_bytes({5, 6})), {"shape (2, 3) is not (N, 2)"}},
      {"one dimension", npy_bytes(1, dict_of("<f4", "(4,)"), d2), {"shape (4,) is not (N, 2)"}},
      {"three dimensions", npy_bytes(1, dict_of("<f4", "(1, 2, 2)"), d2), {"is not (N, 2)"}},
      {"negative rows", npy_bytes(1, dict_of("<f4", "(-2, 2)"), d2), {"malformed .npy header", "non-negative integer"}},
      {"missing byte", npy_bytes(1, dict_of("<f4", "(2, 2)"), d2.substr(1)), {"data holds 15 bytes", "needs 16"}},
      {"extra byte", npy_bytes(1, dict_of("<f4", "(2, 2)"), d2 + "x"), {"data holds 17 bytes", "needs 16"}},
      {"huge rows", npy_bytes(1, dict_of("<f4", "(18446744073709551615, 2)"), d2), {"data holds 16 bytes"}},
      {"rows past uint64", npy_bytes(1, dict_of("<f4", "(18446744073709551616, 2)"), d2), {"non-negative integer"}},
      {"missing key", npy_bytes(1, "{'descr': '<f4', 'shape': (2, 2)}", d2), {"lacks one of"}},
      {"repeated key", npy_bytes(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}", d2),
       {"repeats the key 'descr'"}},
      {"unexpected key", npy_bytes(1, "{'descr': '<f4', 'x': 1, 'fortran_order': False, 'shape': (2, 2)}", d2),
       {"malformed .npy header"}},
      {"unknown key", npy_bytes(1, "{'descr': '<f4', 'x': 'y', 'fortran_order': False, 'shape': (2, 2)}", d2),
       {"unexpected key 'x'"}},
      {"structured descr", npy_bytes(1, "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2, 2)}", d2),
       {"malformed .npy header"}},
      {"unterminated dict", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False", d2), {"malformed .npy header"}},
      {"text after the dict", npy_bytes(1, dict_of("<f4", "(2, 2)") + "x", d2), {"unexpected text"}},
      {"unterminated string", npy_bytes(1, "{'descr: <f4}", d2), {"unterminated string"}},
      {"empty header", npy_bytes(1, "", d2), {"malformed .npy header"}},
      {"NaN", npy_bytes(1, dict_of("<f4", "(2, 2)"), float_bytes({1, 2, 3, nan})), {"row 1, column 1", "nan"}},
      {"infinity", npy_bytes(1, dict_of("<f4", "(2, 2)"), float_bytes({std::numeric_limits<float>::infinity(), 2, 3, 4})),
       {"row 0, column 0", "inf"}},
      {"float64 out of float range", npy_bytes(1, dict_of("<f8", "(1, 2)"), f64_big), {"row 0, column 1", "out of range"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    write_bytes(path, c.bytes);
    EXPECT_TRUE(throws_error([&] { read_samples(path); }, c.needles, path + ": "));
  }
}

TEST(SampleIo, EveryNpyTruncationThrows) {
  TempDir dir;
  const std::string path = dir.file("cut.npy");
  const std::vector<float> xy = {1, 2, 3, 4, 5, 6};
  write_chunked(path, xy, 2);
  const std::string full = read_bytes(path);
  for (std::size_t len = 0; len < full.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    write_bytes(path, full.substr(0, len));
    EXPECT_TRUE(throws_error([&] { read_samples(path); }, {path}));
  }
}

TEST(SampleIo, SurvivesRandomNpyCorruption) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("fuzz.npy");
  write_chunked(path, {1, 2, 3, 4, 5, 6}, 3);
  const std::string good = read_bytes(path);
  const std::string alphabet = "{}()[],:'\" 0123456789<>f48TrueFalse\n";
  for (int iter = 0; iter < 600; ++iter) {
    std::string bytes = good;
    for (int e = 0; e < 1 + int(rng() % 3); ++e) {
      const std::size_t at = rng() % bytes.size();
      if (rng() % 2)
        bytes[at] = char(rng() & 0xff);
      else
        bytes[at] = alphabet[rng() % alphabet.size()];
    }
    write_bytes(path, bytes);
    try {
      const std::vector<float> xy = read_samples(path);
      for (const float v : xy) ASSERT_TRUE(std::isfinite(v));
    } catch (const ddpm::Error& e) {
      ASSERT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
}

TEST(SampleIo, ReadsCsvVariants) {
  TempDir dir;
  const std::string path = dir.file("in.csv");
  const auto reads = [&](const std::string& text, const std::vector<float>& expected) {
    SCOPED_TRACE(text);
    write_bytes(path, text);
    EXPECT_TRUE(same_bits(expected, read_samples(path)));
  };
  reads("x,y\n1,2\n3,4\n", {1, 2, 3, 4});
  reads("1,2\n3,4", {1, 2, 3, 4});                          // no header, no final newline
  reads("x0,x1\r\n1.5,-2\r\n", {1.5f, -2});                 // CRLF
  reads("\xEF\xBB\xBFx,y\n1,2\n", {1, 2});                  // byte order mark
  reads(" 1 , 2 \n+3,\t-4e-1\n", {1, 2, 3, -0.4f});         // spaces, a plus sign, an exponent
  reads("x,y\n1,2\n\n\n", {1, 2});                          // blank lines at the end
  reads("x,y\n", {});                                       // header only
  reads("x,y\n-0,1e-45\n", {-0.f, std::numeric_limits<float>::denorm_min()});
}

TEST(SampleIo, RejectsMalformedCsv) {
  TempDir dir;
  const std::string path = dir.file("bad.csv");
  struct Case {
    std::string text;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"", {"empty file"}},
      {"x,y\n1,2\n3\n", {"line 3", "expected 2 comma-separated fields, got 1"}},
      {"x,y\n1,2,3\n", {"line 2", "got 3"}},
      {"x,y\n1,2\n3,abc\n", {"line 3", "field 2 \"abc\" is not a number"}},
      {"x,y\n1,\n", {"line 2", "field 2", "not a number"}},
      {"x,y\n1,2x\n", {"line 2", "not a number"}},
      {"x,y\n1 2,3\n", {"line 2", "not a number"}},
      {"x,y\nnan,1\n", {"line 2", "field 1 \"nan\" is not finite"}},
      {"1,inf\n", {"line 1", "field 2 \"inf\" is not finite"}},
      {"x,y\n-infinity,0\n", {"line 2", "not finite"}},
      {"x,y\n1e39,0\n", {"line 2", "out of float32 range"}},
      {"x,y\n1,2\n\n3,4\n", {"line 3", "empty line"}},
      {"x,y\nx,y\n", {"line 2", "not a number"}},
      {"x,y,z\n", {"line 1", "got 3"}},
      {"x,1\n", {"line 1", "field 1 \"x\" is not a number"}},
      {"x,y\n1,2\0\n"s, {"line 2", "not a number"}},
      {"x,y\n0x10,1\n", {"line 2", "not a number"}},
      {"x,y\n++1,1\n", {"line 2", "not a number"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    write_bytes(path, c.text);
    EXPECT_TRUE(throws_error([&] { read_samples(path); }, c.needles, path + ": "));
  }
}

TEST(SampleIo, ReadRejectsMissingFileAndUnknownFormat) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { read_samples(dir.file("none.npy")); }, {"none.npy", "cannot open"}));
  write_bytes(dir.file("s.txt"), "1,2\n");
  EXPECT_TRUE(throws_error([&] { read_samples(dir.file("s.txt")); }, {"s.txt", "expected a .npy or .csv"}));
}

}  // namespace
}  // namespace ddpm::io
