// Kernels that access memory out of bounds, and their correct twins.
//
//   emu_planted_oob global          a grid of 192 threads over 187 elements
//                                   without a bounds check (heap buffers)
//   emu_planted_oob static-shared   65 threads staging through `__shared__ float[64]`
//   emu_planted_oob dynamic-shared  64 threads staging through 63 floats of
//                                   dynamic shared memory
//   emu_planted_oob in-bounds       all three, correctly sized: must be clean
//
// The AddressSanitizer build must report each of the first three; CTest
// registrations are in tests/emu/CMakeLists.txt.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "selftest/harness_kernels.cuh"

namespace {

using namespace ddpm::harness;

bool scale(int threads_per_block, int blocks, int elements) {
  std::vector<float> in(elements, 1.5f), out(elements, 0.0f);
  emu::launch(scale_unchecked, blocks, threads_per_block, 0, in.data(), out.data());
  for (float v : out) {
    if (v != 3.0f) return false;
  }
  return true;
}

bool check_reversed(const std::vector<float>& in, const std::vector<float>& out, int block) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    const std::size_t b = i / block, t = i % block;
    if (out[i] != in[b * block + (block - 1 - t)]) return false;
  }
  return true;
}

bool reverse_static(int block) {
  std::vector<float> in(2 * block), out(2 * block);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  emu::launch(reverse_static_shared<64>, 2, block, 0, in.data(), out.data());
  return check_reversed(in, out, block);
}

bool reverse_dynamic(int block, int smem_floats) {
  std::vector<float> in(2 * block), out(2 * block);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  emu::launch(reverse_dynamic_shared, 2, block, smem_floats * sizeof(float), in.data(), out.data());
  return check_reversed(in, out, block);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 2 ? argv[1] : "";
  bool ok;
  if (mode == "global") {
    ok = scale(64, 3, 187);
  } else if (mode == "static-shared") {
    ok = reverse_static(65);
  } else if (mode == "dynamic-shared") {
    ok = reverse_dynamic(64, 63);
  } else if (mode == "in-bounds") {
    ok = scale(64, 3, 192) && reverse_static(64) && reverse_dynamic(64, 64);
  } else {
    std::fprintf(stderr, "usage: %s global|static-shared|dynamic-shared|in-bounds\n", argv[0]);
    return 2;
  }
  std::printf("%s: results %s\n", mode.c_str(), ok ? "correct" : "wrong");
  return ok ? 0 : 1;
}
