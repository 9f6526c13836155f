// The emulation harness, tested on its own small kernels: the checks shared
// with the GPU twin (harness_cases.hpp) run on the emulation, followed by the
// emulation's own rules (built-in variables, poisoned shared memory, exited
// threads, partial warps) and its diagnostics (death tests).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "ddpm/mma.hpp"
#include "ddpm/rng.hpp"
#include "ddpm/smem.hpp"
#include "harness_cases.hpp"
#include "selftest/harness_kernels.cuh"

namespace ddpm::harness {
namespace {

class EmuBackend final : public Backend {
 public:
  void block_reduce_sum(const std::vector<float>& in, std::vector<float>& out, bool dynamic_smem) override {
    const int n = static_cast<int>(in.size());
    if (dynamic_smem) {
      emu::launch(harness::block_reduce_sum_dynamic, kReduceGrid, kReduceBlock, kReduceBlock * sizeof(float), in.data(),
                  out.data(), n);
    } else {
      emu::launch(harness::block_reduce_sum<kReduceBlock>, kReduceGrid, kReduceBlock, 0, in.data(), out.data(), n);
    }
  }
  void block_scan(const std::vector<int>& in, std::vector<int>& out) override {
    emu::launch(harness::block_scan, kScanGrid, kScanBlock, 0, in.data(), out.data());
  }
  void warp_ops(const std::vector<int>& in, std::vector<int>& out) override {
    emu::launch(harness::warp_ops, kWarpOpsGrid, kWarpOpsBlock, 0, in.data(), out.data());
  }
  void tiled_matmul(const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c, int m, int n,
                    int k) override {
    const dim3 grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile);
    emu::launch(harness::tiled_matmul<kTile>, grid, dim3(kTile, kTile), 0, a.data(), b.data(), c.data(), m, n, k);
  }
  void mma(MmaKind kind, bool wrong_layout, const std::vector<float>& a, const std::vector<float>& b,
           const std::vector<float>& c, std::vector<float>& d) override {
    auto* kernel = kind == MmaKind::kTf32 ? (wrong_layout ? mma_tf32_product<true> : mma_tf32_product<false>)
                                          : (wrong_layout ? mma_bf16_product<true> : mma_bf16_product<false>);
    emu::launch(kernel, kMmaProblems, 32, 0, a.data(), b.data(), c.data(), d.data());
  }
  void mma_probe(MmaKind kind, std::vector<float>& d) override {
    emu::launch(kind == MmaKind::kTf32 ? mma_tf32_probe : mma_bf16_probe, 1, 32, 0, d.data());
  }
  void atomics(const std::vector<int>& in, AtomicsOut& out, std::vector<int>& exchange_old) override {
    emu::launch(atomics_contention, kAtomicsGrid, kAtomicsBlock, 0, in.data(), &out, exchange_old.data());
  }
  void neighbor_sum(const std::vector<float>& in, std::vector<float>& out) override {
    emu::launch(harness::neighbor_sum<true>, kNeighborGrid, kNeighborBlock, 0, in.data(), out.data());
  }
};

// ---- The checks shared with the GPU twin ----

TEST(EmuHarness, BlockReduceStaticShared) {
  EmuBackend backend;
  checks::check_block_reduce(backend, false);
}

TEST(EmuHarness, BlockReduceDynamicShared) {
  EmuBackend backend;
  checks::check_block_reduce(backend, true);
}

TEST(EmuHarness, WarpShuffleBlockScan) {
  EmuBackend backend;
  checks::check_block_scan(backend);
}

TEST(EmuHarness, WarpPrimitives) {
  EmuBackend backend;
  checks::check_warp_ops(backend);
}

TEST(EmuHarness, TiledMatmulThroughSharedMemory) {
  EmuBackend backend;
  checks::check_tiled_matmul(backend);
}

TEST(EmuHarness, AtomicsUnderContention) {
  EmuBackend backend;
  checks::check_atomics(backend);
}

TEST(EmuHarness, NeighborSumWithBarrier) {
  EmuBackend backend;
  checks::check_neighbor_sum(backend);
}

TEST(EmuMma, Tf32ProductMatchesPlainProduct) {
  EmuBackend backend;
  checks::check_mma_product(backend, MmaKind::kTf32);
}

TEST(EmuMma, Bf16ProductMatchesPlainProduct) {
  EmuBackend backend;
  checks::check_mma_product(backend, MmaKind::kBf16);
}

TEST(EmuMma, Tf32EveryLaneMapping) {
  EmuBackend backend;
  checks::check_mma_probe(backend, MmaKind::kTf32);
}

TEST(EmuMma, Bf16EveryLaneMapping) {
  EmuBackend backend;
  checks::check_mma_probe(backend, MmaKind::kBf16);
}

TEST(EmuMma, Tf32WrongLaneMappingFails) {
  EmuBackend backend;
  checks::check_mma_wrong_layout_detected(backend, MmaKind::kTf32);
}

TEST(EmuMma, Bf16WrongLaneMappingFails) {
  EmuBackend backend;
  checks::check_mma_wrong_layout_detected(backend, MmaKind::kBf16);
}

// ddpm::mma_layout agrees with the PTX ISA's formulas as the test kernels spell them.
TEST(EmuMma, LayoutHelpersMatchPtxFormulas) {
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    const MmaCoord a_tf32[4] = {{g, t}, {g + 8, t}, {g, t + 4}, {g + 8, t + 4}};
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(mma_layout::a_m16n8k8_tf32(lane, i).row, a_tf32[i].row);
      EXPECT_EQ(mma_layout::a_m16n8k8_tf32(lane, i).col, a_tf32[i].col);
      const MmaCoord cd[4] = {{g, 2 * t}, {g, 2 * t + 1}, {g + 8, 2 * t}, {g + 8, 2 * t + 1}};
      EXPECT_EQ(mma_layout::cd_m16n8(lane, i).row, cd[i].row);
      EXPECT_EQ(mma_layout::cd_m16n8(lane, i).col, cd[i].col);
    }
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(mma_layout::b_m16n8k8_tf32(lane, i).row, t + 4 * i);
      EXPECT_EQ(mma_layout::b_m16n8k8_tf32(lane, i).col, g);
    }
    for (int i = 0; i < 8; ++i) {
      const int reg = i / 2;
      EXPECT_EQ(mma_layout::a_m16n8k16_bf16(lane, i).row, g + 8 * (reg % 2));
      EXPECT_EQ(mma_layout::a_m16n8k16_bf16(lane, i).col, 2 * t + (i % 2) + 8 * (reg / 2));
    }
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(mma_layout::b_m16n8k16_bf16(lane, i).row, 2 * t + (i % 2) + 8 * (i / 2));
      EXPECT_EQ(mma_layout::b_m16n8k16_bf16(lane, i).col, g);
    }
  }
}

// ---- The emulation's own rules ----

struct Coords {
  uint3 thread, block;
  dim3 block_dim, grid_dim;
};

__global__ void record_builtins(Coords* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  out[block * blockDim.x * blockDim.y * blockDim.z + thread] = Coords{threadIdx, blockIdx, blockDim, gridDim};
}

TEST(EmuHarness, BuiltinVariablesPerThread) {
  const dim3 grid(2, 3, 2), block(4, 2, 3);
  std::vector<Coords> out(2 * 3 * 2 * 4 * 2 * 3);
  emu::launch(record_builtins, grid, block, 0, out.data());
  std::set<std::tuple<unsigned, unsigned, unsigned, unsigned, unsigned, unsigned>> seen;
  for (const Coords& c : out) {
    EXPECT_EQ(c.block_dim.x, 4u);
    EXPECT_EQ(c.block_dim.y, 2u);
    EXPECT_EQ(c.block_dim.z, 3u);
    EXPECT_EQ(c.grid_dim.x, 2u);
    EXPECT_EQ(c.grid_dim.y, 3u);
    EXPECT_EQ(c.grid_dim.z, 2u);
    seen.emplace(c.thread.x, c.thread.y, c.thread.z, c.block.x, c.block.y, c.block.z);
  }
  EXPECT_EQ(seen.size(), out.size());  // every (thread, block) exactly once
}

__global__ void read_dynamic_smem(uint32_t* out) {
  const uint32_t* smem = ddpm::dynamic_smem<uint32_t>();
  out[blockIdx.x * blockDim.x + threadIdx.x] = smem[threadIdx.x];
  __syncthreads();
  ddpm::dynamic_smem<uint32_t>()[threadIdx.x] = 7;  // must not leak into the next block
  if (threadIdx.x == 0) out[gridDim.x * blockDim.x + blockIdx.x] = static_cast<uint32_t>(ddpm::dynamic_smem_bytes());
}

TEST(EmuHarness, DynamicSharedMemoryStartsPoisoned) {
  std::vector<uint32_t> out(2 * 32 + 2, 0);
  emu::launch(read_dynamic_smem, 2, 32, 32 * sizeof(uint32_t), out.data());
  for (int i = 0; i < 64; ++i) EXPECT_EQ(out[i], 0xffffffffu) << "thread " << i;
  EXPECT_EQ(out[64], 128u);
  EXPECT_EQ(out[65], 128u);
  float f;
  std::memcpy(&f, &out[0], sizeof f);
  EXPECT_TRUE(std::isnan(f));
}

__global__ void early_exit_then_barrier(int* out) {
  if (threadIdx.x % 3 == 0) return;  // exited threads no longer count at the barrier
  __shared__ int count;
  if (threadIdx.x == 1) count = 0;
  __syncthreads();
  atomicAdd(&count, 1);
  __syncthreads();
  out[threadIdx.x] = count;
}

TEST(EmuHarness, ExitedThreadsLeaveTheBarrier) {
  std::vector<int> out(96, -1);
  emu::launch(early_exit_then_barrier, 1, 96, 0, out.data());
  for (int t = 0; t < 96; ++t) EXPECT_EQ(out[t], t % 3 == 0 ? -1 : 64) << "thread " << t;
}

__global__ void block_votes(int* out) {
  const int t = threadIdx.x;
  out[0 * blockDim.x + t] = __syncthreads_count(t % 4 == 0);
  out[1 * blockDim.x + t] = __syncthreads_and(t >= 0);
  out[2 * blockDim.x + t] = __syncthreads_and(t != 5);
  out[3 * blockDim.x + t] = __syncthreads_or(t == 70);
  out[4 * blockDim.x + t] = __syncthreads_or(t > 1000);
}

TEST(EmuHarness, BlockVotes) {
  const int n = 72;
  std::vector<int> out(5 * n, -1);
  emu::launch(block_votes, 1, n, 0, out.data());
  for (int t = 0; t < n; ++t) {
    EXPECT_EQ(out[0 * n + t], 18);
    EXPECT_EQ(out[1 * n + t], 1);
    EXPECT_EQ(out[2 * n + t], 0);
    EXPECT_EQ(out[3 * n + t], 1);
    EXPECT_EQ(out[4 * n + t], 0);
  }
}

// A 48-thread block: the second warp has 16 lanes, and a full mask means the
// lanes that exist.
__global__ void partial_warp(unsigned* out) {
  const unsigned t = threadIdx.x;
  out[96 + t] = __activemask();  // before the first collective, no lane can have returned
  unsigned v = t;
  for (int m = 8; m >= 1; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m, 16);
  out[t] = v;
  out[48 + t] = __ballot_sync(0xffffffffu, 1);
}

TEST(EmuHarness, PartialLastWarp) {
  std::vector<unsigned> out(3 * 48, 0);
  emu::launch(partial_warp, 1, 48, 0, out.data());
  for (unsigned t = 0; t < 48; ++t) {
    const unsigned group = t / 16 * 16;
    EXPECT_EQ(out[t], 16 * group + 120) << "thread " << t;  // sum of the 16 lanes of its group
    EXPECT_EQ(out[48 + t], t < 32 ? 0xffffffffu : 0x0000ffffu);
    EXPECT_EQ(out[96 + t], t < 32 ? 0xffffffffu : 0x0000ffffu);
  }
}

// Half-warp collectives with a mask naming just the lanes that call them.
__global__ void masked_half_warp(int* out) {
  const int lane = threadIdx.x & 31;
  if (lane < 16) {
    const int v = __shfl_down_sync(0x0000ffffu, lane * 10, 1);
    out[lane] = v;
    __syncwarp(0x0000ffffu);
  }
}

TEST(EmuHarness, MaskedHalfWarp) {
  std::vector<int> out(16, -1);
  emu::launch(masked_half_warp, 1, 32, 0, out.data());
  for (int l = 0; l < 16; ++l) {
    // Lane 15 reads lane 16, which takes no part: undefined on the GPU, poison here.
    EXPECT_EQ(out[l], l < 15 ? (l + 1) * 10 : -1) << "lane " << l;
  }
}

__global__ void philox_normals(float4* out, uint64_t seed) {
  curandStatePhilox4_32_10_t state;
  curand_init(seed, blockIdx.x * blockDim.x + threadIdx.x, 0, &state);
  out[blockIdx.x * blockDim.x + threadIdx.x] = curand_normal4(&state);
}

TEST(EmuHarness, CurandDeviceApiInKernels) {
  std::vector<float4> out(2 * 32);
  emu::launch(philox_normals, 2, 32, 0, out.data(), uint64_t{1234});
  for (unsigned i = 0; i < out.size(); ++i) {
    curandStatePhilox4_32_10_t state;
    curand_init(1234, i, 0, &state);
    const float4 expected = curand_normal4(&state);
    EXPECT_EQ(out[i].x, expected.x);
    EXPECT_EQ(out[i].w, expected.w);
  }
}

__global__ void intrinsics(float* out, float x) {
  out[0] = __expf(x);
  out[1] = __fdividef(x, 4.0f);
  out[2] = rsqrtf(x);
  out[3] = __bfloat162float(__float2bfloat16(x));
  out[4] = __saturatef(x);
  out[5] = min(x, 1.0f) + max(2, 3);
  out[6] = static_cast<float>(__popc(0xf0u) + __clz(1) + __ffs(8));
  out[7] = __half2float(__float2half(x));
}

TEST(EmuHarness, IntrinsicsMapToHostEquivalents) {
  std::vector<float> out(8, 0.0f);
  emu::launch(intrinsics, 1, 1, 0, out.data(), 2.25f);
  EXPECT_FLOAT_EQ(out[0], std::exp(2.25f));
  EXPECT_FLOAT_EQ(out[1], 0.5625f);
  EXPECT_FLOAT_EQ(out[2], 1.0f / 1.5f);
  EXPECT_FLOAT_EQ(out[3], 2.25f);
  EXPECT_FLOAT_EQ(out[4], 1.0f);
  EXPECT_FLOAT_EQ(out[5], 4.0f);
  EXPECT_FLOAT_EQ(out[6], 4 + 31 + 4);
  EXPECT_FLOAT_EQ(out[7], 2.25f);
}

__global__ void half_precision(__nv_bfloat16* bf16_sum, __half2* half2_sum, float* shuffled) {
  atomicAdd(bf16_sum, __float2bfloat16(1.0f));
  atomicAdd(half2_sum, __floats2half2_rn(1.0f, 2.0f));
  const int lane = threadIdx.x & 31;
  const __nv_bfloat162 mine = __floats2bfloat162_rn(static_cast<float>(lane), -static_cast<float>(lane));
  const __nv_bfloat162 other = __shfl_xor_sync(0xffffffffu, mine, 1);
  shuffled[threadIdx.x] = __low2float(other) + __high2float(other);
  shuffled[blockDim.x + threadIdx.x] = __half2float(__shfl_sync(0xffffffffu, __float2half(lane * 0.5f), 31));
}

TEST(EmuHarness, HalfPrecisionAtomicsAndShuffles) {
  __nv_bfloat16 bf16_sum = __float2bfloat16(0.0f);
  __half2 half2_sum = __floats2half2_rn(0.0f, 0.0f);
  std::vector<float> shuffled(2 * 64, -1.0f);
  emu::launch(half_precision, 1, 64, 0, &bf16_sum, &half2_sum, shuffled.data());
  EXPECT_EQ(__bfloat162float(bf16_sum), 64.0f);
  EXPECT_EQ(__low2float(half2_sum), 64.0f);
  EXPECT_EQ(__high2float(half2_sum), 128.0f);
  for (int t = 0; t < 64; ++t) {
    EXPECT_EQ(shuffled[t], 0.0f);  // (lane ^ 1) - (lane ^ 1)
    EXPECT_EQ(shuffled[64 + t], 15.5f);
  }
}

TEST(EmuHarness, InvalidLaunchConfigurationsThrow) {
  std::vector<float> in(8), out(8);
  EXPECT_THROW(emu::launch(scale_unchecked, 1, 1025, 0, in.data(), out.data()), emu::LaunchError);
  EXPECT_THROW(emu::launch(scale_unchecked, 1, dim3(1, 1, 65), 0, in.data(), out.data()), emu::LaunchError);
  EXPECT_THROW(emu::launch(scale_unchecked, 0, 8, 0, in.data(), out.data()), emu::LaunchError);
  EXPECT_THROW(emu::launch(scale_unchecked, 1, 8, 1 << 20, in.data(), out.data()), emu::LaunchError);
}

TEST(EmuHarness, FourBlocksOf256ThreadsRunQuickly) {
  std::vector<float> in(kReduceGrid * kReduceBlock, 1.0f), out(kReduceGrid);
  const auto start = std::chrono::steady_clock::now();
  emu::launch(block_reduce_sum<kReduceBlock>, kReduceGrid, kReduceBlock, 0, in.data(), out.data(),
              static_cast<int>(in.size()));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(out[0], 256.0f);
  RecordProperty("seconds", std::to_string(seconds));
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(seconds, 1.0);
#endif
}

TEST(EmuHarness, BlocksOf1024Threads) {
  std::vector<float> in(2 * 1024 + 5, 0.5f), out(2);
  emu::launch(block_reduce_sum<1024>, 2, 1024, 0, in.data(), out.data(), static_cast<int>(in.size()));
  EXPECT_EQ(out[0], 0.5f * (1024 + 5));
  EXPECT_EQ(out[1], 0.5f * 1024);
}

// ---- Diagnostics: broken kernels end the process with a clear message ----

class EmuDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

__global__ void divergent_collectives(int* out) {
  const int lane = threadIdx.x & 31;
  if (lane < 16) {
    out[lane] = __shfl_xor_sync(0xffffffffu, lane, 1);
  } else {
    out[lane] = static_cast<int>(__ballot_sync(0xffffffffu, 1));
  }
}

TEST_F(EmuDeathTest, DivergentWarpCollectives) {
  std::vector<int> out(32);
  EXPECT_DEATH(emu::launch(divergent_collectives, 1, 32, 0, out.data()), "warp 0 diverged");
}

__global__ void shuffle_after_exit(int* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 1);
}

TEST_F(EmuDeathTest, MaskNamesAnExitedLane) {
  std::vector<int> out(32);
  EXPECT_DEATH(emu::launch(shuffle_after_exit, 1, 32, 0, out.data()), "(already returned|returned instead of joining)");
}

__global__ void lane_outside_its_mask(int* out) { out[threadIdx.x] = __shfl_sync(0x1u, 1, 0); }

TEST_F(EmuDeathTest, CallingLaneNotInMask) {
  std::vector<int> out(32);
  EXPECT_DEATH(emu::launch(lane_outside_its_mask, 1, 32, 0, out.data()), "is not in its mask");
}

__global__ void mma_on_half_a_warp(float* out) {
  const uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
  const float c[4] = {0, 0, 0, 0};
  float d[4];
  ddpm::mma_m16n8k8_tf32(d, a, b, c);
  out[threadIdx.x] = d[0];
}

TEST_F(EmuDeathTest, MmaNeedsTheWholeWarp) {
  std::vector<float> out(16);
  EXPECT_DEATH(emu::launch(mma_on_half_a_warp, 1, 16, 0, out.data()), "needs all 32 lanes");
}

__global__ void barrier_against_warp_sync(int* out) {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    __syncwarp();
  }
  out[threadIdx.x] = 1;
}

TEST_F(EmuDeathTest, DeadlockIsReported) {
  std::vector<int> out(32);
  // Found at once, when a pass over the block's threads moves none of them: no timeout.
  EXPECT_DEATH(emu::launch(barrier_against_warp_sync, 1, 32, 0, out.data()),
               "made no progress: deadlock.*\n.*threads 0-0 .*__syncthreads.*\n.*threads 1-31 .*__syncwarp");
}

// Two threads, three barriers 0.3 s apart each: 1.8 s in all, longer than the
// watchdog's 1 s, but one of them reaches a barrier every 0.3 s.
__global__ void slow_but_moving(int* out) {
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

TEST_F(EmuDeathTest, ASlowBlockThatMovesIsNoDeadlock) {
  std::vector<int> out(2, 0);
  EXPECT_EXIT(
      {
        setenv("DDPM_EMU_TIMEOUT_S", "1", 1);
        emu::launch(slow_but_moving, 1, 2, 0, out.data());
        std::exit(std::count(out.begin(), out.end(), 1) == 2 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// Thread 0 waits for a flag that thread 1 sets. A GPU runs both; the emulation
// runs one thread until it waits or returns, so thread 1 never gets to run:
// the watchdog names the spinning thread.
__global__ void spin_on_a_neighbour(int* out) {
  __shared__ int flag;
  if (threadIdx.x == 1) flag = 1;
  if (threadIdx.x == 0) {
    while (std::atomic_ref<int>(flag).load(std::memory_order_relaxed) != 1) {
    }
  }
  out[threadIdx.x] = 1;
}

TEST_F(EmuDeathTest, ASpinWaitOnAnotherThreadIsReported) {
  std::vector<int> out(2, 0);
  EXPECT_DEATH(
      {
        setenv("DDPM_EMU_TIMEOUT_S", "1", 1);
        emu::launch(spin_on_a_neighbour, 1, 2, 0, out.data());
      },
      "made no progress for 1 s: thread 0 .warp 0 lane 0..*spin-wait on another thread");
}

TEST_F(EmuDeathTest, DynamicSharedOverrunIsReported) {
  std::vector<float> in(64, 1.0f), out(64);
  // The guard zone after the buffer, or AddressSanitizer where it runs.
  EXPECT_DEATH(emu::launch(reverse_dynamic_shared, 1, 64, 60 * sizeof(float), in.data(), out.data()),
               "(wrote past the end of its 240 bytes of dynamic shared memory|AddressSanitizer)");
}

__global__ void traps(int*) { __trap(); }

TEST_F(EmuDeathTest, TrapEndsTheRun) {
  EXPECT_DEATH(emu::launch(traps, 1, 1, 0, static_cast<int*>(nullptr)), "__trap\\(\\) called");
}

__global__ void bad_width(int* out) { out[threadIdx.x] = __shfl_sync(0xffffffffu, 1, 0, 12); }

TEST_F(EmuDeathTest, ShuffleWidthMustBeAPowerOfTwo) {
  std::vector<int> out(32);
  EXPECT_DEATH(emu::launch(bad_width, 1, 32, 0, out.data()), "width 12 is not a power of two");
}

}  // namespace
}  // namespace ddpm::harness
