// A kernel with a missing __syncthreads, and its synchronized twin.
//
//   emu_planted_race racy     runs neighbor_sum<false>: the ThreadSanitizer
//                             build must report a data race on its shared array
//   emu_planted_race synced   runs neighbor_sum<true>: must be race-free and correct
//
// Registered with CTest by tests/emu/CMakeLists.txt (the racy run only in the
// ThreadSanitizer build).
#include <cstdio>
#include <cstring>
#include <vector>

#include "selftest/harness_kernels.cuh"

int main(int argc, char** argv) {
  using namespace ddpm::harness;
  const bool racy = argc == 2 && std::strcmp(argv[1], "racy") == 0;
  const bool synced = argc == 2 && std::strcmp(argv[1], "synced") == 0;
  if (!racy && !synced) {
    std::fprintf(stderr, "usage: %s racy|synced\n", argv[0]);
    return 2;
  }

  const int n = kNeighborGrid * kNeighborBlock;
  std::vector<float> in(n), out(n, 0.0f);
  for (int i = 0; i < n; ++i) in[i] = static_cast<float>(i % 97);
  emu::launch(racy ? neighbor_sum<false> : neighbor_sum<true>, kNeighborGrid, kNeighborBlock, 0, in.data(),
              out.data());

  int wrong = 0;
  for (int b = 0; b < kNeighborGrid; ++b) {
    for (int t = 0; t < kNeighborBlock; ++t) {
      const int i = b * kNeighborBlock + t;
      wrong += out[i] != in[i] + in[b * kNeighborBlock + (t + 1) % kNeighborBlock];
    }
  }
  std::printf("neighbor_sum<%s>: %d of %d results wrong\n", racy ? "false" : "true", wrong, n);
  return racy || wrong == 0 ? 0 : 1;
}
