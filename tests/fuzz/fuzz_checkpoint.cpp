// Fuzzes load_checkpoint through the safetensors header only. A real
// checkpoint holds over 40,000 floats, so whole-file mutations would almost
// never touch the header that names, shapes and metadata live in. An input is
//   4 bytes: the data section's size in floats (little-endian, at most kMaxFloats)
//   the rest: the header's JSON text
// and the file written is the 8-byte header length, the header, and a data
// section of that many zero floats.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ddpm/params.hpp"
#include "host/io/checkpoint.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace {

// Room for a resumable checkpoint of the larger model (params, EMA, two Adam moments) and 100,000 losses.
constexpr uint32_t kMaxFloats = uint32_t(4 * ddpm::kXEmbNet.param_count + 100000);

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[std::size_t(i)] = char(v >> (8 * i));
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ddpm;
  if (size < 4) return -1;
  const uint32_t floats =
      uint32_t(data[0]) | uint32_t(data[1]) << 8 | uint32_t(data[2]) << 16 | uint32_t(data[3]) << 24;
  if (floats > kMaxFloats) return -1;  // not worth keeping in the corpus
  const std::string_view header = fuzz::bytes(data + 4, size - 4);
  static fuzz::ScratchFile file("input.safetensors");
  static std::string zeros;
  zeros.assign(std::size_t(floats) * sizeof(float), '\0');
  file.write({u64_le(header.size()), header, zeros});
  fuzz::loads(file.path(), [&] { (void)io::load_checkpoint(file.path()); });
  return 0;
}
