// Fuzzes read_samples with whole files; built twice, as fuzz_npy and fuzz_csv,
// the file's extension (DDPM_FUZZ_SAMPLE_EXT) choosing the reader.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "host/io/samples_io.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ddpm;
  static fuzz::ScratchFile file(std::string("input") + DDPM_FUZZ_SAMPLE_EXT);
  file.write({fuzz::bytes(data, size)});
  std::vector<float> xy;
  if (!fuzz::loads(file.path(), [&] { xy = io::read_samples(file.path()); })) return 0;
  // What callers rely on when it returns: (x, y) pairs of finite floats.
  if (xy.size() % 2 != 0) fuzz::fail("read_samples returned " + std::to_string(xy.size()) + " floats, not pairs");
  for (std::size_t i = 0; i < xy.size(); ++i)
    if (!std::isfinite(xy[i])) fuzz::fail("read_samples returned a non-finite value at index " + std::to_string(i));
  return 0;
}
