// The emulation runtime: grids, blocks as groups of real threads, the block
// barrier, warp rendezvous and the deadlock watchdog. Only the C++ standard
// library's synchronization is used (threads, std::barrier, mutexes, condition
// variables, atomics), which ThreadSanitizer understands: a kernel's accesses
// are ordered exactly by the barriers and warp collectives it executes.
#include "cuda_emu.hpp"

#include <barrier>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

// Host definitions of the CUDA fast-math intrinsics that the C library only
// declares (glibc's internal names coincide with CUDA's).
extern "C" {
float __expf(float x) noexcept { return std::exp(x); }
float __logf(float x) noexcept { return std::log(x); }
float __sinf(float x) noexcept { return std::sin(x); }
float __cosf(float x) noexcept { return std::cos(x); }
float __tanf(float x) noexcept { return std::tan(x); }
float __powf(float x, float y) noexcept { return std::pow(x, y); }
float __exp10f(float x) noexcept { return std::pow(10.0f, x); }
float __log2f(float x) noexcept { return std::log2(x); }
float __log10f(float x) noexcept { return std::log10(x); }
void __sincosf(float x, float* s, float* c) noexcept {
  *s = std::sin(x);
  *c = std::cos(x);
}
}

namespace emu {
namespace detail {
namespace {

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer checks the dynamic shared memory: it is exactly the launch's size.
constexpr std::size_t kGuardBytes = 0;
#else
// Without it, a guard zone after the buffer catches writes past its end.
constexpr std::size_t kGuardBytes = 256;
#endif
constexpr unsigned char kGuardByte = 0xa5;
constexpr unsigned char kPoisonByte = 0xff;  // NaN as float, -1 as integer
constexpr std::size_t kSmemAlignment = 128;
constexpr std::size_t kMaxDynamicSmem = 227 * 1024;  // the largest opt-in size (sm_90)

const char* const kRunning = "running";
const char* const kReturned = "returned";
const char* const kAtSyncthreads = "__syncthreads";

struct Warp {
  std::mutex mutex;
  std::condition_variable changed;
  unsigned exists = 0;  // lanes present in the block
  unsigned live = 0;    // present and not returned

  // The collective in progress.
  const char* op = nullptr;
  unsigned mask = 0;   // as the first lane passed it
  unsigned lanes = 0;  // mask & exists: the lanes that must arrive
  unsigned arrived = 0;
  unsigned departed = 0;
  bool complete = false;
  alignas(16) unsigned char in[32][kWarpSlotBytes];
  alignas(16) unsigned char out[32][kWarpSlotBytes];
};

struct Block;

struct BarrierCompletion {
  Block* block;
  void operator()() noexcept;
};

struct Block {
  Block(dim3 grid_dim, dim3 block_dim, uint3 index, unsigned threads, unsigned char* smem,
        std::size_t smem_bytes)
      : grid(grid_dim),
        dim(block_dim),
        idx(index),
        size(threads),
        barrier(static_cast<std::ptrdiff_t>(threads), BarrierCompletion{this}),
        dynamic_smem(smem),
        dynamic_smem_bytes(smem_bytes),
        alive(static_cast<int>(threads)),
        where(new std::atomic<const char*>[threads]) {
    const unsigned warps = (threads + 31) / 32;
    for (unsigned w = 0; w < warps; ++w) {
      auto warp = std::make_unique<Warp>();
      const unsigned present = std::min(32u, threads - 32 * w);
      warp->exists = present == 32 ? 0xffffffffu : ((1u << present) - 1u);
      warp->live = warp->exists;
      this->warps.push_back(std::move(warp));
    }
    for (unsigned t = 0; t < threads; ++t) where[t].store(kRunning, std::memory_order_relaxed);
  }

  dim3 grid;
  dim3 dim;
  uint3 idx;
  unsigned size;
  std::barrier<BarrierCompletion> barrier;
  std::vector<std::unique_ptr<Warp>> warps;
  unsigned char* dynamic_smem;
  std::size_t dynamic_smem_bytes;

  std::atomic<int> alive;
  // Completed barriers, warp collectives and returned threads: the watchdog
  // stops a block only when this stands still for its whole timeout.
  std::atomic<uint64_t> progress{0};
  std::atomic<int> vote_count{0};
  int vote_result = 0;
  int vote_participants = 0;

  std::unique_ptr<std::atomic<const char*>[]> where;  // what each thread waits in, for diagnostics

  std::mutex done_mutex;
  std::condition_variable done_changed;
  unsigned done = 0;
};

void BarrierCompletion::operator()() noexcept {
  block->progress.fetch_add(1, std::memory_order_relaxed);
  block->vote_result = block->vote_count.exchange(0, std::memory_order_relaxed);
  block->vote_participants = block->alive.load(std::memory_order_relaxed);
}

thread_local Block* tl_block = nullptr;
thread_local unsigned tl_linear = 0;

std::mutex g_fail_mutex;
std::mutex g_launch_mutex;  // launches run one at a time, as on a single stream
std::atomic<unsigned> g_fence{0};

Block& current_block(const char* what) {
  if (tl_block == nullptr) fail("%s called outside an emulated kernel", what);
  return *tl_block;
}

void set_where(Block& b, const char* what) { b.where[tl_linear].store(what, std::memory_order_relaxed); }

std::chrono::seconds watchdog_timeout() {
  if (const char* env = std::getenv("DDPM_EMU_TIMEOUT_S")) {
    const long s = std::strtol(env, nullptr, 10);
    if (s > 0) return std::chrono::seconds(s);
  }
  return std::chrono::seconds(120);
}

[[noreturn]] void report_stall(Block& b, std::chrono::seconds timeout) {
  std::lock_guard<std::mutex> lock(g_fail_mutex);
  std::fprintf(stderr,
               "cuda_emu: block (%u,%u,%u) made no progress for %lld s: deadlock (threads waiting at "
               "different barriers or collectives). Where the threads are:\n",
               b.idx.x, b.idx.y, b.idx.z, static_cast<long long>(timeout.count()));
  // Runs of consecutive threads in the same place.
  unsigned first = 0;
  while (first < b.size) {
    const char* what = b.where[first].load(std::memory_order_relaxed);
    unsigned last = first;
    while (last + 1 < b.size && b.where[last + 1].load(std::memory_order_relaxed) == what) ++last;
    std::fprintf(stderr, "  threads %u-%u (warp %u lane %u .. warp %u lane %u): %s\n", first, last, first / 32,
                 first % 32, last / 32, last % 32, what);
    first = last + 1;
  }
  std::fflush(stderr);
  std::abort();
}

void thread_main(Block* block, unsigned linear, KernelBody body, const void* context) {
  Block& b = *block;
  tl_block = block;
  tl_linear = linear;
  tl_thread_idx = uint3{linear % b.dim.x, (linear / b.dim.x) % b.dim.y, linear / (b.dim.x * b.dim.y)};
  tl_block_idx = b.idx;
  tl_block_dim = b.dim;
  tl_grid_dim = b.grid;

  try {
    body(context);
  } catch (const std::exception& e) {
    fail("the kernel threw an exception: %s", e.what());
  } catch (...) {
    fail("the kernel threw an exception");
  }

  // The thread returns: it leaves the block barrier (as an exited thread does
  // on the GPU) and the warp, so that the others do not wait for it.
  set_where(b, kReturned);
  b.progress.fetch_add(1, std::memory_order_relaxed);
  b.alive.fetch_sub(1, std::memory_order_relaxed);
  {
    Warp& w = *b.warps[linear / 32];
    std::lock_guard<std::mutex> lock(w.mutex);
    w.live &= ~(1u << (linear % 32));
    w.changed.notify_all();
  }
  b.barrier.arrive_and_drop();
  tl_block = nullptr;
  {
    std::lock_guard<std::mutex> lock(b.done_mutex);
    ++b.done;
    if (b.done == b.size) b.done_changed.notify_all();
  }
}

// The OS threads that run a grid's blocks: one per thread of a block, made
// once per launch and reused from block to block (blocks run one after
// another), so a grid of many blocks costs no more threads than one block.
class BlockThreads {
 public:
  BlockThreads(unsigned threads, KernelBody body, const void* context) : start_(std::ptrdiff_t(threads) + 1) {
    workers_.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) {
      workers_.emplace_back([this, t, body, context] {
        for (;;) {
          start_.arrive_and_wait();  // the next block is set, or none is left
          if (current_ == nullptr) return;
          thread_main(current_, t, body, context);
        }
      });
    }
  }
  ~BlockThreads() {
    current_ = nullptr;
    start_.arrive_and_wait();
    for (auto& w : workers_) w.join();
  }
  BlockThreads(const BlockThreads&) = delete;
  BlockThreads& operator=(const BlockThreads&) = delete;

  // Runs block b on the threads; returns when every thread has returned. A
  // block that is slow but moving (the tensor-core samplers' long chains: a
  // rendezvous per mma) runs on; one where nothing completed for the whole
  // timeout is reported.
  void run(Block& b) {
    current_ = &b;
    start_.arrive_and_wait();
    const auto timeout = watchdog_timeout();
    std::unique_lock<std::mutex> lock(b.done_mutex);
    uint64_t seen = b.progress.load(std::memory_order_relaxed);
    while (!b.done_changed.wait_for(lock, timeout, [&] { return b.done == b.size; })) {
      const uint64_t now = b.progress.load(std::memory_order_relaxed);
      if (now == seen) report_stall(b, timeout);
      seen = now;
    }
  }

 private:
  std::barrier<> start_;
  Block* current_ = nullptr;  // written before start_, read after it
  std::vector<std::thread> workers_;
};

}  // namespace

unsigned lane_id() {
  current_block("a warp primitive");
  return tl_linear % 32;
}

unsigned live_lanes() {
  Block& b = current_block("__activemask");
  Warp& w = *b.warps[tl_linear / 32];
  std::lock_guard<std::mutex> lock(w.mutex);
  return w.live;
}

void sync_block() {
  Block& b = current_block("__syncthreads");
  set_where(b, kAtSyncthreads);
  b.barrier.arrive_and_wait();
  set_where(b, kRunning);
}

BlockVote sync_block_vote(int predicate) {
  Block& b = current_block("__syncthreads_count/_and/_or");
  if (predicate != 0) b.vote_count.fetch_add(1, std::memory_order_relaxed);
  set_where(b, kAtSyncthreads);
  b.barrier.arrive_and_wait();
  set_where(b, kRunning);
  return {b.vote_result, b.vote_participants};
}

void warp_rendezvous(const char* op, unsigned mask, const void* in, std::size_t in_bytes, void* out,
                     std::size_t out_bytes, CombineFn combine, const void* context) {
  Block& b = current_block(op);
  const unsigned lane = tl_linear % 32;
  const unsigned bit = 1u << lane;
  Warp& w = *b.warps[tl_linear / 32];
  if ((mask & bit) == 0) fail("%s: the calling lane %u is not in its mask 0x%08x", op, lane, mask);
  const unsigned lanes = mask & w.exists;

  set_where(b, op);
  std::unique_lock<std::mutex> lock(w.mutex);
  w.changed.wait(lock, [&] { return !w.complete; });  // the previous collective is still handing out results
  if (w.arrived == 0) {
    if (const unsigned gone = lanes & ~w.live) {
      fail("%s: mask 0x%08x names lanes 0x%08x of warp %u that have already returned", op, mask, gone,
           tl_linear / 32);
    }
    w.op = op;
    w.mask = mask;
    w.lanes = lanes;
  } else if (std::strcmp(w.op, op) != 0 || w.lanes != lanes) {
    fail("warp %u diverged: lane %u reached %s with mask 0x%08x while lanes 0x%08x wait in %s with mask 0x%08x "
         "(the emulation runs one warp collective at a time, with the same mask in every lane)",
         tl_linear / 32, lane, op, mask, w.arrived, w.op, w.mask);
  }
  std::memcpy(w.in[lane], in, in_bytes);
  w.arrived |= bit;

  if (w.arrived == w.lanes) {
    for (unsigned l = 0; l < 32; ++l) {
      if (((w.lanes >> l) & 1u) == 0) std::memset(w.in[l], kPoisonByte, kWarpSlotBytes);
    }
    combine(context, w.in, w.out, w.lanes);
    w.complete = true;
    b.progress.fetch_add(1, std::memory_order_relaxed);
    w.changed.notify_all();
  } else {
    w.changed.wait(lock, [&] { return w.complete || (w.lanes & ~w.live & ~w.arrived) != 0; });
    if (!w.complete) {
      fail("%s: lanes 0x%08x named in mask 0x%08x returned instead of joining", op, w.lanes & ~w.live & ~w.arrived,
           w.mask);
    }
  }
  std::memcpy(out, w.out[lane], out_bytes);
  w.departed |= bit;
  if (w.departed == w.lanes) {
    w.op = nullptr;
    w.mask = w.lanes = w.arrived = w.departed = 0;
    w.complete = false;
    w.changed.notify_all();
  }
  lock.unlock();
  set_where(b, kRunning);
}

void fence() {
  // A read-modify-write of one shared location: every fence synchronizes with
  // the fences before it, which orders at least what a GPU fence orders.
  g_fence.fetch_add(1, std::memory_order_acq_rel);
}

void run_grid(dim3 grid, dim3 block, std::size_t dynamic_smem, KernelBody body, const void* context) {
  if (tl_block != nullptr) fail("a kernel launched a kernel: dynamic parallelism is not emulated");
  // A kernel's static __shared__ variables exist once: two launches of it
  // must not overlap.
  std::lock_guard<std::mutex> serialized(g_launch_mutex);
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64) {
    throw LaunchError("emu::launch: invalid block (" + std::to_string(block.x) + "," + std::to_string(block.y) +
                      "," + std::to_string(block.z) + "): at most 1024 threads, z at most 64");
  }
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
    throw LaunchError("emu::launch: invalid grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," +
                      std::to_string(grid.z) + ")");
  }
  if (dynamic_smem > kMaxDynamicSmem) {
    throw LaunchError("emu::launch: " + std::to_string(dynamic_smem) +
                      " bytes of dynamic shared memory exceed what any GPU offers");
  }

  const std::size_t allocated = dynamic_smem + kGuardBytes;
  struct AlignedDelete {
    void operator()(unsigned char* p) const { ::operator delete[](p, std::align_val_t(kSmemAlignment)); }
  };
  std::unique_ptr<unsigned char[], AlignedDelete> smem(
      static_cast<unsigned char*>(::operator new[](allocated == 0 ? 1 : allocated, std::align_val_t(kSmemAlignment))));

  BlockThreads pool(static_cast<unsigned>(threads), body, context);
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        // Shared memory starts out as garbage on the GPU: poison it.
        std::memset(smem.get(), kPoisonByte, dynamic_smem);
        std::memset(smem.get() + dynamic_smem, kGuardByte, kGuardBytes);
        Block b(grid, block, uint3{x, y, z}, static_cast<unsigned>(threads), smem.get(), dynamic_smem);
        pool.run(b);
        for (std::size_t i = 0; i < kGuardBytes; ++i) {
          if (smem[dynamic_smem + i] != kGuardByte) {
            fail("block (%u,%u,%u) wrote past the end of its %zu bytes of dynamic shared memory (at byte %zu)", x,
                 y, z, dynamic_smem, dynamic_smem + i);
          }
        }
      }
    }
  }
}

}  // namespace detail

unsigned char* dynamic_shared_memory() { return detail::current_block("ddpm::dynamic_smem").dynamic_smem; }

std::size_t dynamic_shared_memory_bytes() {
  return detail::current_block("ddpm::dynamic_smem_bytes").dynamic_smem_bytes;
}

void fail(const char* format, ...) {
  std::lock_guard<std::mutex> lock(detail::g_fail_mutex);
  std::fprintf(stderr, "cuda_emu: ");
  if (detail::tl_block != nullptr) {
    const uint3 b = detail::tl_block_idx, t = detail::tl_thread_idx;
    std::fprintf(stderr, "block (%u,%u,%u) thread (%u,%u,%u) [warp %u lane %u]: ", b.x, b.y, b.z, t.x, t.y, t.z,
                 detail::tl_linear / 32, detail::tl_linear % 32);
  }
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

}  // namespace emu
