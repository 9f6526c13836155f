// Fuzzes read_safetensors with whole files; a file it accepts also goes
// through load_checkpoint, which validates on top of it.
#include <cstddef>
#include <cstdint>

#include "host/io/checkpoint.hpp"
#include "host/io/safetensors.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ddpm;
  static fuzz::ScratchFile file("input.safetensors");
  file.write({fuzz::bytes(data, size)});
  if (fuzz::loads(file.path(), [&] { (void)io::read_safetensors(file.path()); }))
    fuzz::loads(file.path(), [&] { (void)io::load_checkpoint(file.path()); });
  return 0;
}
