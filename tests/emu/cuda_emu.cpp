// The emulation runtime: grids, blocks of fibers, the block barrier, warp
// rendezvous, deadlock detection and the watchdog.
//
// The threads of a block are fibers: user-level contexts, each with its own
// stack, run one at a time on the launching OS thread. A thread runs until it
// waits (at a barrier or a warp collective that has not completed) or returns;
// then the next thread of the block runs. A switch is a few register moves,
// where one OS thread per emulated thread paid a futex wake-up and a kernel
// context switch for each of a block's threads at every __syncthreads.
//
// The sanitizers see the fibers as the kernel's threads:
// - ThreadSanitizer gives each fiber a thread state of its own
//   (__tsan_create_fiber), and switching orders nothing. The harness states
//   what orders a kernel's accesses with __tsan_release / __tsan_acquire,
//   exactly where the programming model does: a launch's start and end, a
//   block barrier and a warp collective. Its own bookkeeping is in relaxed
//   atomics, which order nothing either.
// - AddressSanitizer is told of every stack switch
//   (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber).
#include "cuda_emu.hpp"

#include <sys/mman.h>
#include <xmmintrin.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

#if !defined(__x86_64__)
#error "the emulation's fiber switch (tests/emu/cuda_emu.cpp) is written for x86-64"
#endif

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

// switch_stack(save, next): pushes the callee-saved registers and the SSE and
// x87 control words, stores the stack pointer in *save, then loads `next` and
// pops the same from it: the context saved there resumes. A new fiber's stack
// is laid out (Fiber::start) as if it had been saved on entry to
// fiber_trampoline, which calls the fiber's entry function.
extern "C" void ddpm_emu_switch_stack(void** save, void* next);
extern "C" void ddpm_emu_fiber_trampoline();
asm(R"(
  .text
  .globl ddpm_emu_switch_stack
  .type ddpm_emu_switch_stack, @function
ddpm_emu_switch_stack:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ddpm_emu_switch_stack, .-ddpm_emu_switch_stack

  .globl ddpm_emu_fiber_trampoline
  .type ddpm_emu_fiber_trampoline, @function
ddpm_emu_fiber_trampoline:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size ddpm_emu_fiber_trampoline, .-ddpm_emu_fiber_trampoline
)");

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
// A fiber's stack, reserved but committed only as it is touched; a page below
// it is left inaccessible, so an overflow faults instead of writing over a
// neighbour's stack.
constexpr std::size_t kFiberStackBytes = 1 << 20;
constexpr std::size_t kGuardPageBytes = 4096;

const char* const kRunning = "running";
const char* const kReturned = "returned";
const char* const kAtSyncthreads = "__syncthreads";

// ---- The sanitizers' view of the fibers (no-ops in other builds) ----

#if defined(__SANITIZE_THREAD__)
void* tsan_current() { return __tsan_get_current_fiber(); }
void* tsan_create() { return __tsan_create_fiber(0); }
void tsan_switch(void* fiber) { __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync); }
// What the programming model orders: everything `release`d on `token`
// happens before what follows an `acquire` of it.
void release(const void* token) { __tsan_release(const_cast<void*>(token)); }
void acquire(const void* token) { __tsan_acquire(const_cast<void*>(token)); }
#else
void* tsan_current() { return nullptr; }
void* tsan_create() { return nullptr; }
void tsan_switch(void*) {}
void release(const void*) {}
void acquire(const void*) {}
#endif

#if defined(__SANITIZE_ADDRESS__)
void asan_start_switch(void** fake_stack, const void* bottom, std::size_t size) {
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
}
void asan_finish_switch(void* fake_stack, const void** bottom_old, std::size_t* size_old) {
  __sanitizer_finish_switch_fiber(fake_stack, bottom_old, size_old);
}
#else
void asan_start_switch(void**, const void*, std::size_t) {}
void asan_finish_switch(void*, const void**, std::size_t*) {}
#endif

// ---- A block and its warps ----

// The harness's bookkeeping: every fiber reads and writes it, so it is atomic
// (for ThreadSanitizer; one OS thread runs them all), relaxed (it orders
// nothing of the kernel's).
template <class T>
struct Relaxed {
  std::atomic<T> value;
  explicit Relaxed(T v = T()) : value(v) {}
  operator T() const { return value.load(std::memory_order_relaxed); }
  Relaxed& operator=(T v) {
    value.store(v, std::memory_order_relaxed);
    return *this;
  }
  Relaxed& operator=(const Relaxed& other) { return *this = T(other); }
};

struct Warp {
  Relaxed<unsigned> exists;  // lanes present in the block
  Relaxed<unsigned> live;    // present and not returned

  // The collective in progress.
  Relaxed<const char*> op{nullptr};
  Relaxed<unsigned> mask;   // as the first lane passed it
  Relaxed<unsigned> lanes;  // mask & exists: the lanes that must arrive
  Relaxed<unsigned> arrived;
  Relaxed<unsigned> departed;
  Relaxed<bool> complete{false};
  alignas(16) unsigned char in[32][kWarpSlotBytes];
  alignas(16) unsigned char out[32][kWarpSlotBytes];
};

struct Block {
  Block(dim3 grid_dim, dim3 block_dim, uint3 index, unsigned threads, unsigned char* smem,
        std::size_t smem_bytes)
      : grid(grid_dim),
        dim(block_dim),
        idx(index),
        size(threads),
        warps((threads + 31) / 32),
        dynamic_smem(smem),
        dynamic_smem_bytes(smem_bytes),
        alive(threads),
        where(new std::atomic<const char*>[threads]) {
    for (unsigned w = 0; w < warps.size(); ++w) {
      const unsigned present = std::min(32u, threads - 32 * w);
      warps[w].exists = present == 32 ? 0xffffffffu : ((1u << present) - 1u);
      warps[w].live = warps[w].exists;
    }
    for (unsigned t = 0; t < threads; ++t) where[t].store(kRunning, std::memory_order_relaxed);
  }

  dim3 grid;
  dim3 dim;
  uint3 idx;
  unsigned size;
  std::vector<Warp> warps;
  unsigned char* dynamic_smem;
  std::size_t dynamic_smem_bytes;

  // The barrier: threads that have not returned, how many of them wait, and
  // which barrier this is. Its tokens alternate by generation, so that a
  // thread already past barrier g cannot hand its later accesses to one still
  // leaving it.
  Relaxed<unsigned> alive;
  Relaxed<unsigned> arrived{0};
  Relaxed<uint64_t> generation{0};
  Relaxed<int> vote_count{0};
  Relaxed<int> vote_result{0};
  Relaxed<int> vote_participants{0};
  char barrier_token[2] = {};
  char end_token = 0;  // every thread's accesses, before the launcher goes on

  // Barrier arrivals and departures, warp arrivals, completions and
  // departures, returns: a pass over the block's waiting threads that changes
  // none of these is a deadlock.
  Relaxed<uint64_t> progress{0};

  std::unique_ptr<std::atomic<const char*>[]> where;  // what each thread waits in, for diagnostics
};

// Completes the barrier that `b`'s live threads all wait at.
void complete_barrier(Block& b) {
  b.vote_result = static_cast<int>(b.vote_count);
  b.vote_count = 0;
  b.vote_participants = static_cast<int>(b.arrived);
  b.arrived = 0;
  b.generation = b.generation + 1;
  b.progress = b.progress + 1;
}

// ---- Fibers and the scheduler ----

struct Fiber {
  Fiber() {
    const std::size_t reserved = kFiberStackBytes + kGuardPageBytes;
    void* base = mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                      -1, 0);
    if (base == MAP_FAILED) fail("cannot reserve %zu bytes for a fiber's stack", reserved);
    mprotect(base, kGuardPageBytes, PROT_NONE);
    stack = static_cast<unsigned char*>(base) + kGuardPageBytes;
    tsan = tsan_create();
  }
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;
  // Fibers live as long as the process: the pool only grows, to the largest block.

  // Lays the stack out as ddpm_emu_switch_stack leaves a saved one: control
  // words, r15, r14, r13 = entry, r12 = argument, rbx, rbp, and the return
  // address, ddpm_emu_fiber_trampoline, which calls entry(argument) on a
  // 16-byte aligned stack.
  void start(void (*entry)(Fiber*), unsigned thread) {
    linear = thread;
    returned = false;
    unsigned char* top = stack + kFiberStackBytes;
#if defined(__SANITIZE_ADDRESS__)
    // Frames of the last thread run on this stack that never returned (the
    // entry's, the final switch's) may have left redzones poisoned.
    ASAN_UNPOISON_MEMORY_REGION(top - 16384, 16384);
#endif
    auto* frame = reinterpret_cast<uint64_t*>(top - 16) - 8;
    uint16_t x87_control;
    asm volatile("fnstcw %0" : "=m"(x87_control));
    frame[0] = _mm_getcsr() | (uint64_t{x87_control} << 32);
    frame[1] = 0;
    frame[2] = 0;
    frame[3] = reinterpret_cast<uint64_t>(entry);
    frame[4] = reinterpret_cast<uint64_t>(this);
    frame[5] = 0;
    frame[6] = 0;
    frame[7] = reinterpret_cast<uint64_t>(&ddpm_emu_fiber_trampoline);
    sp = frame;
  }

  void* sp = nullptr;              // the saved context while suspended
  unsigned char* stack = nullptr;  // its lowest usable byte
  void* tsan = nullptr;
  void* asan_fake_stack = nullptr;
  unsigned linear = 0;  // the thread of the block it runs
  Relaxed<bool> returned{false};
};

// The launching thread's side: one grid runs at a time (g_launch_mutex).
struct Scheduler {
  void* sp = nullptr;  // the launcher's context while a fiber runs
  void* tsan = nullptr;
  void* asan_fake_stack = nullptr;
  const void* asan_stack_bottom = nullptr;  // the launcher's stack, as the first fiber learns it
  std::size_t asan_stack_bytes = 0;
  Block* block = nullptr;
  KernelBody body = nullptr;
  const void* context = nullptr;
  std::vector<std::unique_ptr<Fiber>> fibers;
};
// Never destroyed: the fibers' ThreadSanitizer states outlive any exit-time destructor.
Scheduler& g_scheduler = *new Scheduler;

thread_local Block* tl_block = nullptr;
thread_local Fiber* tl_fiber = nullptr;
thread_local unsigned tl_linear = 0;

std::mutex g_fail_mutex;
std::mutex g_launch_mutex;  // launches run one at a time, as on a single stream
std::atomic<unsigned> g_fence{0};
char g_start_token = 0;  // the launcher's set-up of a block, before its threads' first accesses

// The watchdog's view: the block running (under g_watch_mutex while it is
// replaced) and a count of switches that stands still only while one thread
// runs without waiting or returning.
std::mutex g_watch_mutex;
std::atomic<Block*> g_watched_block{nullptr};
std::atomic<unsigned> g_watched_thread{0};
std::atomic<uint64_t> g_switches{0};
std::atomic<long> g_watch_timeout_s{120};

Block& current_block(const char* what) {
  if (tl_block == nullptr) fail("%s called outside an emulated kernel", what);
  return *tl_block;
}

void set_where(Block& b, const char* what) { b.where[tl_linear].store(what, std::memory_order_relaxed); }

// The built-in variables of thread `linear` of `b`. Written by the launcher
// between fibers, outside ThreadSanitizer's view: each fiber only reads them,
// and to the sanitizer they are its own.
__attribute__((no_sanitize("thread"))) void set_builtins(Block* b, Fiber* f) {
  tl_block = b;
  tl_fiber = f;
  if (f == nullptr) return;
  tl_linear = f->linear;
  tl_thread_idx = uint3{f->linear % b->dim.x, (f->linear / b->dim.x) % b->dim.y, f->linear / (b->dim.x * b->dim.y)};
  tl_block_idx = b->idx;
  tl_block_dim = b->dim;
  tl_grid_dim = b->grid;
}

// The switches read and write the scheduler's and fibers' saved contexts on
// either side of the switch, as no thread of the kernel: outside
// ThreadSanitizer's view, like the built-ins.
#define DDPM_EMU_SWITCH __attribute__((no_sanitize("thread"), noinline))

// The launcher runs fiber f until it waits or returns.
DDPM_EMU_SWITCH void resume(Fiber& f) {
  Scheduler& s = g_scheduler;
  set_builtins(s.block, &f);
  g_watched_thread.store(f.linear, std::memory_order_relaxed);
  g_switches.fetch_add(1, std::memory_order_relaxed);
  tsan_switch(f.tsan);
  asan_start_switch(&s.asan_fake_stack, f.stack, kFiberStackBytes);
  ddpm_emu_switch_stack(&s.sp, f.sp);
  asan_finish_switch(s.asan_fake_stack, nullptr, nullptr);
}

// The running fiber hands the OS thread back to the launcher, which runs the
// block's other threads and comes back here.
DDPM_EMU_SWITCH void wait_for_the_others() {
  Scheduler& s = g_scheduler;
  Fiber& f = *tl_fiber;
  tsan_switch(s.tsan);
  asan_start_switch(&f.asan_fake_stack, s.asan_stack_bottom, s.asan_stack_bytes);
  ddpm_emu_switch_stack(&f.sp, s.sp);
  asan_finish_switch(f.asan_fake_stack, &s.asan_stack_bottom, &s.asan_stack_bytes);
}

// Back to the launcher, never to resume: ASan may free the fiber's fake stack.
[[noreturn]] DDPM_EMU_SWITCH void leave_for_good(Fiber& f) {
  Scheduler& s = g_scheduler;
  tsan_switch(s.tsan);
  asan_start_switch(nullptr, s.asan_stack_bottom, s.asan_stack_bytes);
  ddpm_emu_switch_stack(&f.sp, s.sp);
  __builtin_unreachable();
}

[[noreturn]] void fiber_main(Fiber* f) {
  Scheduler& s = g_scheduler;
  asan_finish_switch(nullptr, &s.asan_stack_bottom, &s.asan_stack_bytes);
  acquire(&g_start_token);
  Block& b = *s.block;
  try {
    s.body(s.context);
  } catch (const std::exception& e) {
    fail("the kernel threw an exception: %s", e.what());
  } catch (...) {
    fail("the kernel threw an exception");
  }

  // The thread returns: it leaves the block barrier (as an exited thread does
  // on the GPU, completing it if every other live thread waits there) and its
  // warp, so that the others do not wait for it.
  set_where(b, kReturned);
  Warp& w = b.warps[f->linear / 32];
  w.live = w.live & ~(1u << (f->linear % 32));
  b.alive = b.alive - 1;
  if (b.alive > 0 && b.arrived == b.alive) complete_barrier(b);
  b.progress = b.progress + 1;
  release(&b.end_token);
  f->returned = true;
  leave_for_good(*f);
}

[[noreturn]] void report_deadlock(Block& b) {
  std::lock_guard<std::mutex> lock(g_fail_mutex);
  std::fprintf(stderr,
               "cuda_emu: block (%u,%u,%u) made no progress: deadlock (every thread that has not returned waits at a "
               "barrier or warp collective that cannot complete). Where the threads are:\n",
               b.idx.x, b.idx.y, b.idx.z);
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

long watchdog_timeout_s() {
  if (const char* env = std::getenv("DDPM_EMU_TIMEOUT_S")) {
    const long s = std::strtol(env, nullptr, 10);
    if (s > 0) return s;
  }
  return 120;
}

// A thread that neither waits nor returns keeps the OS thread: the others of
// its block never run. That is an endless loop, or a spin-wait on another
// thread of the block (which a GPU would run alongside); the watchdog names it
// once the switch count has stood still for the timeout.
void watchdog_main() {
  uint64_t seen = 0;
  auto since = std::chrono::steady_clock::now();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t switches = g_switches.load(std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (switches != seen || g_watched_block.load(std::memory_order_relaxed) == nullptr) {
      seen = switches;
      since = now;
      continue;
    }
    const long timeout = g_watch_timeout_s.load(std::memory_order_relaxed);
    if (now - since < std::chrono::seconds(timeout)) continue;
    std::lock_guard<std::mutex> watch(g_watch_mutex);
    const Block* b = g_watched_block.load(std::memory_order_acquire);
    if (b == nullptr || g_switches.load(std::memory_order_relaxed) != seen) continue;
    const unsigned t = g_watched_thread.load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(g_fail_mutex);
    std::fprintf(stderr,
                 "cuda_emu: block (%u,%u,%u) made no progress for %ld s: thread %u (warp %u lane %u) has run that "
                 "long without reaching a barrier, a warp collective or its return: an endless loop, or a spin-wait "
                 "on another thread of its block (the emulation runs a block's threads one at a time and switches "
                 "only there)\n",
                 b->idx.x, b->idx.y, b->idx.z, timeout, t, t / 32, t % 32);
    std::fflush(stderr);
    std::abort();
  }
}

void watch(Block* b) {
  static std::once_flag started;
  std::call_once(started, [] { std::thread(watchdog_main).detach(); });
  std::lock_guard<std::mutex> lock(g_watch_mutex);
  g_watched_block.store(b, std::memory_order_release);
}

// Runs block b on the pool's first b.size fibers, round-robin, until all have
// returned.
void run_block(Block& b) {
  Scheduler& s = g_scheduler;
  s.block = &b;
  for (unsigned t = 0; t < b.size; ++t) s.fibers[t]->start(fiber_main, t);
  release(&g_start_token);
  watch(&b);
  for (unsigned live = b.size; live > 0;) {
    const uint64_t before = b.progress;
    for (unsigned t = 0; t < b.size; ++t) {
      Fiber& f = *s.fibers[t];
      if (f.returned) continue;
      resume(f);
      if (f.returned) --live;
    }
    if (live > 0 && b.progress == before) report_deadlock(b);
  }
  watch(nullptr);
  set_builtins(nullptr, nullptr);
  acquire(&b.end_token);
}

}  // namespace

unsigned lane_id() {
  current_block("a warp primitive");
  return tl_linear % 32;
}

unsigned live_lanes() {
  Block& b = current_block("__activemask");
  return b.warps[tl_linear / 32].live;
}

BlockVote sync_block_vote(int predicate) {
  Block& b = current_block("__syncthreads_count/_and/_or");
  set_where(b, kAtSyncthreads);
  const uint64_t generation = b.generation;
  const void* token = &b.barrier_token[generation & 1];
  if (predicate != 0) b.vote_count = b.vote_count + 1;
  release(token);
  b.arrived = b.arrived + 1;
  b.progress = b.progress + 1;
  if (b.arrived == b.alive) {
    complete_barrier(b);
  } else {
    while (b.generation == generation) wait_for_the_others();
  }
  acquire(token);
  b.progress = b.progress + 1;
  set_where(b, kRunning);
  return {b.vote_result, b.vote_participants};
}

void sync_block() { sync_block_vote(0); }

void warp_rendezvous(const char* op, unsigned mask, const void* in, std::size_t in_bytes, void* out,
                     std::size_t out_bytes, CombineFn combine, const void* context) {
  Block& b = current_block(op);
  const unsigned lane = tl_linear % 32;
  const unsigned bit = 1u << lane;
  Warp& w = b.warps[tl_linear / 32];
  if ((mask & bit) == 0) fail("%s: the calling lane %u is not in its mask 0x%08x", op, lane, mask);
  const unsigned lanes = mask & w.exists;

  set_where(b, op);
  while (w.complete) wait_for_the_others();  // the previous collective is still handing out results
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
         tl_linear / 32, lane, op, mask, static_cast<unsigned>(w.arrived), static_cast<const char*>(w.op),
         static_cast<unsigned>(w.mask));
  }
  std::memcpy(w.in[lane], in, in_bytes);
  release(&w);
  w.arrived = w.arrived | bit;
  b.progress = b.progress + 1;

  if (w.arrived == w.lanes) {
    acquire(&w);
    for (unsigned l = 0; l < 32; ++l) {
      if (((w.lanes >> l) & 1u) == 0) std::memset(w.in[l], kPoisonByte, kWarpSlotBytes);
    }
    combine(context, w.in, w.out, w.lanes);
    release(&w);
    w.complete = true;
  } else {
    while (!w.complete && (w.lanes & ~w.live & ~w.arrived) == 0) wait_for_the_others();
    if (!w.complete) {
      fail("%s: lanes 0x%08x named in mask 0x%08x returned instead of joining", op,
           w.lanes & ~w.live & ~w.arrived, static_cast<unsigned>(w.mask));
    }
    acquire(&w);
  }
  std::memcpy(out, w.out[lane], out_bytes);
  // The next collective's combine may write this lane's slot: it follows the read.
  release(&w);
  w.departed = w.departed | bit;
  b.progress = b.progress + 1;
  if (w.departed == w.lanes) {
    w.op = nullptr;
    w.mask = 0;
    w.lanes = 0;
    w.arrived = 0;
    w.departed = 0;
    w.complete = false;
  }
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

  Scheduler& s = g_scheduler;
  while (s.fibers.size() < threads) s.fibers.push_back(std::make_unique<Fiber>());
  s.tsan = tsan_current();
  s.body = body;
  s.context = context;
  g_watch_timeout_s.store(watchdog_timeout_s(), std::memory_order_relaxed);
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        // Shared memory starts out as garbage on the GPU: poison it.
        std::memset(smem.get(), kPoisonByte, dynamic_smem);
        std::memset(smem.get() + dynamic_smem, kGuardByte, kGuardBytes);
        Block b(grid, block, uint3{x, y, z}, static_cast<unsigned>(threads), smem.get(), dynamic_smem);
        run_block(b);
        for (std::size_t i = 0; i < kGuardBytes; ++i) {
          if (smem[dynamic_smem + i] != kGuardByte) {
            fail("block (%u,%u,%u) wrote past the end of its %zu bytes of dynamic shared memory (at byte %zu)", x,
                 y, z, dynamic_smem, dynamic_smem + i);
          }
        }
      }
    }
  }
  s.block = nullptr;
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
