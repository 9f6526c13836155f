#include "host/io/safetensors.hpp"

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
using test::u64_le;
using test::write_bytes;

// A hand-made file: length prefix, header text, data bytes.
std::string st_file(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

// The small valid file the malformed cases start from: a [2] at [0, 8), b [1, 3] at [8, 20).
const std::string kGoodHeader =
    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
    R"("b":{"dtype":"F32","shape":[1,3],"data_offsets":[8,20]},"__metadata__":{"k":"v"}})";
const std::vector<float> kGoodValues = {1.f, -2.f, 3.5f, 0.f, -0.f};

std::string good_file() { return st_file(kGoodHeader, float_bytes(kGoodValues)); }

TEST(Safetensors, RoundTripIsBitExact) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("t.safetensors");

  SafetensorsFile in;
  const int count = 1 + int(rng() % 6);
  for (int i = 0; i < count; ++i) {
    Tensor t;
    t.name = "layer." + std::to_string(i) + (i % 2 ? ".weight" : ".bias");
    const int rank = int(rng() % 4);  // rank 0 is a scalar of one element
    std::size_t n = 1;
    for (int d = 0; d < rank; ++d) {
      t.shape.push_back(int64_t(rng() % 9));  // zero-sized dimensions too
      n *= std::size_t(t.shape.back());
    }
    t.data = test::random_floats(rng, n);
    in.tensors.push_back(t);
  }
  in.tensors.push_back({"z.empty", {0, 5}, {}});
  in.metadata = {{"format", "test"}, {"unicode", "\xce\xb2_1 \xe2\x88\x88 (0, 1)"}, {"empty", ""}};
  write_safetensors(path, in);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"t.safetensors"});

  const SafetensorsFile out = read_safetensors(path);
  EXPECT_EQ(out.metadata, in.metadata);
  ASSERT_EQ(out.tensors.size(), in.tensors.size());
  for (const Tensor& t : in.tensors) {
    SCOPED_TRACE(t.name);
    const Tensor* u = out.find(t.name);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->shape, t.shape);
    EXPECT_TRUE(same_bits(t.data, u->data));
  }
  EXPECT_EQ(out.find("missing"), nullptr);

  // The layout: the header padded with spaces to a multiple of 8, then the
  // tensors' data in the given order.
  const std::string bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(bytes[std::size_t(i)])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_LE(8 + n, bytes.size());
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));
  std::string data;
  for (const Tensor& t : in.tensors) data += float_bytes(t.data);
  EXPECT_EQ(bytes.substr(8 + n), data);
  std::size_t last = 0;
  for (const Tensor& t : in.tensors) {
    const std::size_t at = header.find("\"" + t.name + "\"");
    ASSERT_NE(at, std::string::npos) << t.name;
    EXPECT_GE(at, last) << t.name << " is out of order in the header";
    last = at;
  }
  EXPECT_NE(header.find("\"F32\""), std::string::npos);
}

TEST(Safetensors, ReadsInDataOffsetOrder) {
  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  // The header lists b first, but a's data comes first.
  write_bytes(path, st_file(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                            float_bytes({1.f, 2.f})));
  const SafetensorsFile f = read_safetensors(path);
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "a");
  EXPECT_EQ(f.tensors[0].data, std::vector<float>{1.f});
  EXPECT_EQ(f.tensors[1].name, "b");
  EXPECT_EQ(f.tensors[1].data, std::vector<float>{2.f});
  EXPECT_TRUE(f.metadata.empty());
}

TEST(Safetensors, AcceptsTheHandMadeBaseFile) {
  TempDir dir;
  const std::string path = dir.file("good.safetensors");
  write_bytes(path, good_file());
  const SafetensorsFile f = read_safetensors(path);
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[1].shape, (std::vector<int64_t>{1, 3}));
  EXPECT_TRUE(same_bits({3.5f, 0.f, -0.f}, f.tensors[1].data));
  EXPECT_EQ(f.metadata.at("k"), "v");
}

struct BadCase {
  const char* what;
  std::string bytes;
  std::vector<std::string> needles;
};

std::string entry(const std::string& name, const std::string& body) { return "\"" + name + "\":{" + body + "}"; }

std::vector<BadCase> bad_cases() {
  const std::string data20 = float_bytes({1, 2, 3, 4, 5});
  const std::string a = entry("a", R"("dtype":"F32","shape":[2],"data_offsets":[0,8])");
  const std::string b = entry("b", R"("dtype":"F32","shape":[1,3],"data_offsets":[8,20])");
  const auto with_b = [&](const std::string& bad_b) { return st_file("{" + a + "," + bad_b + "}", data20); };
  const auto only = [&](const std::string& body, const std::string& data) {
    return st_file("{" + entry("t", body) + "}", data);
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::string deep_meta = R"({"__metadata__":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  std::string deep_shape = "{" + entry("t", R"("dtype":"F32","data_offsets":[0,4],"shape":)" +
                                                std::string(50000, '[') + std::string(50000, ']')) + "}";
  return {
      {"empty file", "", {"too short"}},
      {"7 bytes", std::string(7, '\0'), {"too short"}},
      {"length past the end", u64_le(100) + "{}", {"header length 100", "exceeds"}},
      {"absurd length", u64_le(uint64_t(1) << 62) + "{}      ", {"exceeds the limit"}},
      {"maximal length", u64_le(~uint64_t(0)) + "{}      ", {"exceeds the limit"}},
      {"empty header", st_file("", ""), {"not a JSON object"}},
      {"invalid JSON", st_file(R"({"a":{"dtype":)", ""), {"not valid JSON"}},
      {"trailing garbage", st_file("{} x", ""), {"not valid JSON"}},
      {"NUL padding", st_file(std::string("{}") + '\0', ""), {"not valid JSON"}},
      {"invalid UTF-8", st_file("{\"a\xff\":1}", ""), {"not valid JSON"}},
      {"array header", st_file("[1,2]", ""), {"not a JSON object"}},
      {"leading space", st_file(" {}", ""), {"not a JSON object"}},
      {"entry not an object", with_b(R"("b":[1,2])"), {"tensor b", "not an object"}},
      {"entry a number", with_b(R"("b":5)"), {"tensor b", "not an object"}},
      {"empty name", with_b(entry("", R"("dtype":"F32","shape":[1,3],"data_offsets":[8,20])")), {"empty name"}},
      {"missing dtype", with_b(entry("b", R"("shape":[1,3],"data_offsets":[8,20])")), {"tensor b", "missing dtype"}},
      {"dtype not a string", with_b(entry("b", R"("dtype":7,"shape":[1,3],"data_offsets":[8,20])")),
       {"tensor b", "dtype is not a string"}},
      {"unknown dtype", with_b(entry("b", R"("dtype":"F33","shape":[1,3],"data_offsets":[8,20])")),
       {"tensor b", "unknown dtype \"F33\""}},
      {"BF16", with_b(entry("b", R"("dtype":"BF16","shape":[1,3],"data_offsets":[8,20])")),
       {"tensor b", "dtype BF16 not supported, expected F32"}},
      {"F64", with_b(entry("b", R"("dtype":"F64","shape":[1,3],"data_offsets":[8,20])")),
       {"dtype F64 not supported, expected F32"}},
      {"I64", with_b(entry("b", R"("dtype":"I64","shape":[1,3],"data_offsets":[8,20])")),
       {"dtype I64 not supported, expected F32"}},
      {"unexpected field", with_b(entry("b", R"("dtype":"F32","shape":[1,3],"data_offsets":[8,20],"x":1)")),
       {"tensor b", "unexpected field \"x\""}},
      {"missing shape", with_b(entry("b", R"("dtype":"F32","data_offsets":[8,20])")), {"tensor b", "missing shape"}},
      {"shape not an array", with_b(entry("b", R"("dtype":"F32","shape":3,"data_offsets":[8,20])")),
       {"tensor b", "shape is not an array"}},
      {"negative dimension", with_b(entry("b", R"("dtype":"F32","shape":[-1,3],"data_offsets":[8,20])")),
       {"tensor b", "shape [-1, 3]", "non-negative integer"}},
      {"fractional dimension", with_b(entry("b", R"("dtype":"F32","shape":[1.5,2],"data_offsets":[8,20])")),
       {"tensor b", "non-negative integer"}},
      {"string dimension", with_b(entry("b", R"("dtype":"F32","shape":["3"],"data_offsets":[8,20])")),
       {"tensor b", "non-negative integer"}},
      {"dimension past int64", with_b(entry("b", R"("dtype":"F32","shape":[9223372036854775808],"data_offsets":[8,20])")),
       {"tensor b", "non-negative integer"}},
      {"dimension past uint64", with_b(entry("b", R"("dtype":"F32","shape":[18446744073709551616],"data_offsets":[8,20])")),
       {"tensor b", "non-negative integer"}},
      {"product overflow", with_b(entry("b", R"("dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[8,20])")),
       {"tensor b", "too large"}},
      {"product overflow of bytes", with_b(entry("b", R"("dtype":"F32","shape":[4611686018427387904],"data_offsets":[8,20])")),
       {"tensor b", "too large"}},
      {"product overflow to zero bytes",
       with_b(entry("b", R"("dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[8,8])")),
       {"tensor b", "too large"}},
      {"missing data_offsets", with_b(entry("b", R"("dtype":"F32","shape":[1,3])")), {"tensor b", "missing data_offsets"}},
      {"data_offsets not an array", with_b(entry("b", R"("dtype":"F32","shape":[1,3],"data_offsets":8)")),
       {"tensor b", "data_offsets", "non-decreasing"}},
      {"one offset", with_b(entry("b", R"("dtype":"F32","shape":[1,3],"data_offsets":[8])")),
       {"tensor b", "data_offsets [8]", "non-decreasing"}},
      {"three offsets", with_b(entry("b", R"("dtype":"F32","shape":[1,3],"data_offsets":[8,20,20])")),
       {"tensor b", "non-decreasing"}},
      {"decreasing offsets", with_b(entry("b", R"("dtype":"F32","shape":[1,3],"data_offsets":[20,8])")),
       {"tensor b", "data_offsets [20, 8]", "non-decreasing"}},
      {"negative offset", with_b(entry("b", R"("dtype":"F32","shape":[1,3],"data_offsets":[-4,8])")),
       {"tensor b", "non-decreasing non-negative"}},
      {"fractional offset", with_b(entry("b", R"("dtype":"F32","shape":[1,3],"data_offsets":[8.0,20])")),
       {"tensor b", "non-decreasing"}},
      {"byte count mismatch", with_b(entry("b", R"("dtype":"F32","shape":[128],"data_offsets":[8,20])")),
       {"tensor b: data_offsets [8, 20] hold 12 bytes but shape [128] of F32 needs 512"}},
      {"past the data section", st_file("{" + a + "," + entry("b", R"("dtype":"F32","shape":[4],"data_offsets":[8,24])") + "}", data20),
       {"tensor b", "data_offsets [8, 24]", "run past the 20-byte data section"}},
      {"far past the data section",
       st_file("{" + a + "," + entry("b", R"("dtype":"F32","shape":[3],"data_offsets":[1000000000008,1000000000020])") + "}", data20),
       {"tensor b", "run past"}},
      {"overlap", st_file("{" + a + "," + entry("b", R"("dtype":"F32","shape":[3],"data_offsets":[4,16])") + "}", data20.substr(0, 16)),
       {"tensor b overlaps tensor a"}},
      {"same offsets", st_file("{" + a + "," + entry("b", R"("dtype":"F32","shape":[2],"data_offsets":[0,8])") + "}", data20.substr(0, 8)),
       {"overlaps"}},
      {"gap between", st_file("{" + a + "," + entry("b", R"("dtype":"F32","shape":[3],"data_offsets":[12,24])") + "}", data20 + "1234"),
       {"bytes [8, 12)", "belong to no tensor"}},
      {"gap before", only(R"("dtype":"F32","shape":[1],"data_offsets":[4,8])", data20.substr(0, 8)),
       {"bytes [0, 4)", "belong to no tensor"}},
      {"unused bytes after", st_file("{" + a + "," + b + "}", data20 + "xyz"), {"3 bytes at the end", "no tensor"}},
      {"data but no tensors", st_file("{}", "1234"), {"4 bytes at the end"}},
      {"metadata not an object", st_file(R"({"__metadata__":["a"]})", ""), {"__metadata__ is not an object"}},
      {"metadata value a number", st_file(R"({"__metadata__":{"k":1}})", ""), {"__metadata__ value of \"k\" is not a string"}},
      {"metadata value an object", st_file(R"({"__metadata__":{"k":{"x":"y"}}})", ""), {"not a string"}},
      {"metadata value null", st_file(R"({"__metadata__":{"k":null}})", ""), {"not a string"}},
      {"NaN", st_file("{" + a + "," + b + "}", float_bytes({1, 2, 3, nan, 5})), {"tensor b: value at index 1 is NaN"}},
      {"infinity", st_file("{" + a + "," + b + "}", float_bytes({-inf, 2, 3, 4, 5})), {"tensor a: value at index 0 is infinite"}},
      {"duplicate tensor", st_file("{" + a + "," + a + "}", data20.substr(0, 8)), {"duplicate key \"a\""}},
      {"duplicate metadata key", st_file(R"({"__metadata__":{"k":"1","k":"2"}})", ""), {"duplicate key \"k\""}},
      {"duplicate field", with_b(entry("b", R"("dtype":"F32","dtype":"F32","shape":[1,3],"data_offsets":[8,20])")),
       {"duplicate key \"dtype\""}},
      {"deeply nested metadata", st_file(deep_meta, ""), {"__metadata__ is not an object"}},
      {"deeply nested shape", st_file(deep_shape, float_bytes({1})), {"tensor t", "non-negative integer"}},
      {"control characters in a name", st_file("{" + entry("a\\nb", R"("dtype":"X")") + "}", ""),
       {"tensor a\\x0ab", "unknown dtype"}},
  };
}

TEST(Safetensors, RejectsEachMalformedFile) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.what);
    write_bytes(path, c.bytes);
    std::vector<std::string> needles = c.needles;
    try {
      read_safetensors(path);
      ADD_FAILURE() << "accepted";
    } catch (const ddpm::Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg << "\nlacks: " << n;
    }
  }
}

TEST(Safetensors, RejectsMissingAndNonRegularFiles) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { read_safetensors(dir.file("none.safetensors")); },
                           {dir.file("none.safetensors"), "cannot open", "No such file"}));
  EXPECT_TRUE(throws_error([&] { read_safetensors(dir.path()); }, {dir.path(), "not a regular file"}));
}

TEST(Safetensors, EveryTruncationThrows) {
  TempDir dir;
  const std::string path = dir.file("cut.safetensors");
  const std::string full = good_file();
  for (std::size_t len = 0; len < full.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    write_bytes(path, full.substr(0, len));
    EXPECT_TRUE(throws_error([&] { read_safetensors(path); }, {path}));
  }
  write_bytes(path, full);
  EXPECT_NO_THROW(read_safetensors(path));
}

// Random corruption: every outcome is a parsed file or a ddpm::Error, never a crash.
TEST(Safetensors, SurvivesRandomCorruption) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("fuzz.safetensors");
  const std::string good = good_file();
  const std::string alphabet = "{}[],:\"0123456789-.eE FBIU_a\\";
  int accepted = 0;
  for (int iter = 0; iter < 1000; ++iter) {
    std::string bytes = good;
    const int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0: bytes[at] = char(rng() & 0xff); break;
        case 1: bytes[at] = alphabet[rng() % alphabet.size()]; break;
        case 2: bytes.erase(at, 1 + rng() % 3); break;
        default: bytes.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
      if (bytes.empty()) bytes = "x";
    }
    write_bytes(path, bytes);
    try {
      const SafetensorsFile f = read_safetensors(path);
      ++accepted;
      for (const Tensor& t : f.tensors)
        for (const float v : t.data) ASSERT_TRUE(std::isfinite(v));
    } catch (const ddpm::Error& e) {
      ASSERT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
  EXPECT_LT(accepted, 1000);
}

TEST(Safetensors, WriterRejectsInvalidInputAndLeavesNothing) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  const auto rejects = [&](SafetensorsFile f, std::initializer_list<std::string> needles) {
    EXPECT_TRUE(throws_error([&] { write_safetensors(path, f); }, needles));
    EXPECT_TRUE(dir.entries().empty());
  };
  rejects({{{"a", {3}, {1, 2}}}, {}}, {path, "tensor a", "shape [3] needs 3 values, got 2"});
  rejects({{{"a", {-1}, {}}}, {}}, {"negative"});
  rejects({{{"a", {1}, {std::numeric_limits<float>::quiet_NaN()}}}, {}}, {"tensor a", "index 0", "not finite"});
  rejects({{{"a", {1}, {1}}, {"a", {1}, {2}}}, {}}, {"tensor a", "duplicate"});
  rejects({{{"__metadata__", {1}, {1}}}, {}}, {"__metadata__"});
  rejects({{{"", {1}, {1}}}, {}}, {"empty name"});
  rejects({{}, {{"k", "\xff"}}}, {"UTF-8"});
  EXPECT_TRUE(throws_error([&] { write_safetensors(dir.file("no/dir/x.safetensors"), {}); }, {"no/dir/x.safetensors"}));
}

TEST(Safetensors, EmptyFileRoundTrips) {
  TempDir dir;
  const std::string path = dir.file("empty.safetensors");
  write_safetensors(path, {});
  const SafetensorsFile f = read_safetensors(path);
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_EQ(read_bytes(path).size() % 8, 0u);
}

}  // namespace
}  // namespace ddpm::io
