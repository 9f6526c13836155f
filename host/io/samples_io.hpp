// Sample files: .npy (float32, shape (N, 2), C order, readable by numpy.load)
// or .csv ("x,y" header, one point a line). Writers stream chunks into a
// temporary file and rename it into place on commit(), so n beyond memory
// works and a failed run leaves nothing behind.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/io/atomic_file.hpp"

namespace ddpm::io {

enum class SampleFormat { kNpy, kCsv };

// From the extension (.npy or .csv, case-insensitive); throws ddpm::Error naming the path otherwise.
SampleFormat sample_format_of(const std::string& path);

class SampleWriter {
 public:
  // n: the total number of points that will be written (the .npy header holds it).
  SampleWriter(const std::string& path, int64_t n);
  // xy: count interleaved (x, y) float pairs.
  void write(const float* xy, int64_t count);
  // Checks that exactly n points were written, then renames into place.
  void commit();

 private:
  AtomicFile file_;
  SampleFormat format_;
  int64_t n_, written_ = 0;
  std::string text_;  // CSV formatting buffer
};

// Reads an (N, 2) float32/float64 .npy (C order, little-endian) or a CSV with
// two numeric columns (an optional header line); returns interleaved float
// pairs. Throws ddpm::Error with one line for any malformed file.
std::vector<float> read_samples(const std::string& path);

}  // namespace ddpm::io
