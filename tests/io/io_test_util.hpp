// Shared helpers of the I/O tests: a scratch directory, raw file access,
// random finite floats and a matcher for ddpm::Error messages.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpm/error.hpp"

namespace ddpm::io::test {

// A fresh directory under the system temp directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "ddpm_io_test_XXXXXX").string();
    if (::mkdtemp(t.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + t);
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // The names in the directory, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline uint32_t fresh_seed() { return std::random_device{}(); }

// Any finite float, each bit pattern equally likely (denormals, -0 and the extremes included).
inline float random_finite_float(std::mt19937& rng) {
  for (;;) {
    const float f = std::bit_cast<float>(uint32_t(rng()));
    if (std::isfinite(f)) return f;
  }
}

inline std::vector<float> random_floats(std::mt19937& rng, std::size_t n) {
  std::vector<float> v(n);
  for (float& f : v) f = random_finite_float(rng);
  return v;
}

// Bit-exact comparison of every element (so -0 != 0 and denormals count).
inline ::testing::AssertionResult same_bits(const std::vector<float>& expected, const std::vector<float>& actual) {
  if (expected.size() != actual.size())
    return ::testing::AssertionFailure() << "size " << actual.size() << ", expected " << expected.size();
  for (std::size_t i = 0; i < expected.size(); ++i)
    if (std::bit_cast<uint32_t>(expected[i]) != std::bit_cast<uint32_t>(actual[i]))
      return ::testing::AssertionFailure() << "element " << i << " is " << actual[i] << ", expected " << expected[i];
  return ::testing::AssertionSuccess();
}

// f() must throw ddpm::Error with a one-line message containing every needle
// (and, when `prefix` is given, starting with it).
template <class F>
::testing::AssertionResult throws_error(F&& f, const std::vector<std::string>& needles, const std::string& prefix = "") {
  try {
    f();
  } catch (const ddpm::Error& e) {
    const std::string msg = e.what();
    if (msg.find('\n') != std::string::npos)
      return ::testing::AssertionFailure() << "message is not one line: " << msg;
    if (msg.rfind(prefix, 0) != 0)
      return ::testing::AssertionFailure() << "message \"" << msg << "\" does not start with \"" << prefix << "\"";
    for (const std::string& n : needles)
      if (msg.find(n) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << n << "\"";
    return ::testing::AssertionSuccess() << msg;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-ddpm::Error: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

inline std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[std::size_t(i)] = char((v >> (8 * i)) & 0xff);
  return s;
}

inline std::string float_bytes(const std::vector<float>& v) {
  std::string s(v.size() * sizeof(float), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

}  // namespace ddpm::io::test
