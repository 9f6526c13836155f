// Host emulation of the CUDA execution model, for tests.
//
// The project's kernels (kernels/*.cuh) are plain CUDA. Test binaries compile
// them a second time with the host C++ compiler and this header in front
// (the ddpm_emu CMake target force-includes it), then run them on the CPU with
//
//   emu::launch(kernel, grid, block, dynamic_smem_bytes, args...);
//
// Blocks run one after another; the threads of a block are fibers, each run
// until it waits at __syncthreads or a warp collective, or returns, so
// __syncthreads is a real barrier, warp collectives are real exchanges among
// the lanes of a warp, and ThreadSanitizer / AddressSanitizer builds see the
// kernel's shared and global memory accesses as threads of their own. What
// the emulation proves and what it cannot is described in tests/emu/README.md.
//
// Anything a kernel uses that is not emulated here fails to compile (an
// undeclared name, or a static_assert naming the feature); add it here.
#pragma once
#ifndef DDPM_CUDA_EMU_HPP
#define DDPM_CUDA_EMU_HPP

#if defined(__CUDACC__)
#error "tests/emu/cuda_emu.hpp emulates CUDA for host compilers; nvcc builds do not include it"
#endif

#ifndef DDPM_EMULATION
#define DDPM_EMULATION 1
#endif

#include <math.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

// The toolkit's headers compile as host C++: vector types (dim3, uint3,
// float4, ...), __half and __nv_bfloat16 with their host conversions, and
// cuRAND's device API. Included before the qualifiers are redefined below.
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <curand_kernel.h>

// ---- Qualifiers ----
// __host__ and __device__ are already empty for host compilers.
// A kernel becomes a host function with internal linkage (kernel headers may
// be included by several test sources), its __shared__ variables become
// statics: one instance, shared by the threads of the block that runs at the
// time. Internal linkage keeps those statics out of COMDAT sections, where
// AddressSanitizer would not guard them.
#undef __global__
#define __global__ static inline
#undef __shared__
#define __shared__ static
#undef __constant__
#define __constant__ inline
#undef __managed__
#define __managed__ inline
#undef __launch_bounds__
#define __launch_bounds__(...)

namespace emu {

// Kernel threads that break a rule of the programming model (a collective
// whose mask names an exited lane, divergent warp collectives, a deadlock,
// ...) end the process through fail(), naming the block and thread.
[[noreturn]] void fail(const char* format, ...) __attribute__((format(printf, 1, 2)));

// Thrown by launch() for a configuration the GPU would refuse.
struct LaunchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The dynamic shared memory of the running launch (see ddpm/smem.hpp).
unsigned char* dynamic_shared_memory();
std::size_t dynamic_shared_memory_bytes();

// Number of warp-collective slot bytes a lane may contribute or receive.
inline constexpr std::size_t kWarpSlotBytes = 128;

namespace detail {

template <class...>
inline constexpr bool always_false = false;

// The built-in variables of the running thread.
inline thread_local uint3 tl_thread_idx{0, 0, 0};
inline thread_local uint3 tl_block_idx{0, 0, 0};
inline thread_local dim3 tl_block_dim{1, 1, 1};
inline thread_local dim3 tl_grid_dim{1, 1, 1};

using KernelBody = void (*)(const void* context);
void run_grid(dim3 grid, dim3 block, std::size_t dynamic_smem, KernelBody body, const void* context);

unsigned lane_id();
unsigned live_lanes();  // lanes of the calling warp that have not returned

void sync_block();
struct BlockVote {
  int count;         // threads with a nonzero predicate
  int participants;  // threads that reached the barrier
};
BlockVote sync_block_vote(int predicate);

// Every participating lane passes its bytes in; once all lanes named in the
// mask have arrived, one of them runs `combine` over the 32 slots (slots of
// lanes not taking part are filled with 0xff bytes) and each lane gets its
// own output slot back.
using CombineFn = void (*)(const void* context, const unsigned char (*in)[kWarpSlotBytes],
                           unsigned char (*out)[kWarpSlotBytes], unsigned lanes);
void warp_rendezvous(const char* op, unsigned mask, const void* in, std::size_t in_bytes, void* out,
                     std::size_t out_bytes, CombineFn combine, const void* context);

void fence();

}  // namespace detail

// A warp-wide operation: `compute(const In (&in)[32], Out (&out)[32], unsigned lanes)`
// sees every participating lane's input (indexed by lane) and fills each
// participating lane's output. All lanes named in `mask` must call it.
template <class In, class Out, class F>
Out warp_collective(const char* op, unsigned mask, const In& mine, F compute) {
  // Values travel as bytes. (__half2 and __nv_bfloat162 declare their own
  // copy assignment, so they are not formally trivially copyable.)
  static_assert(std::is_trivially_destructible_v<In> && std::is_trivially_destructible_v<Out>,
                "warp_collective exchanges plain values");
  static_assert(sizeof(In) <= kWarpSlotBytes && sizeof(Out) <= kWarpSlotBytes,
                "warp_collective: raise emu::kWarpSlotBytes for this operation");
  static_assert(std::is_default_constructible_v<In> && std::is_default_constructible_v<Out>);
  const detail::CombineFn combine = [](const void* context, const unsigned char (*in)[kWarpSlotBytes],
                                       unsigned char (*out)[kWarpSlotBytes], unsigned lanes) {
    In ins[32];
    Out outs[32];
    for (int lane = 0; lane < 32; ++lane) std::memcpy(static_cast<void*>(&ins[lane]), in[lane], sizeof(In));
    std::memset(static_cast<void*>(outs), 0xff, sizeof outs);
    (*static_cast<const F*>(context))(ins, outs, lanes);
    for (int lane = 0; lane < 32; ++lane) {
      if ((lanes >> lane) & 1u) std::memcpy(out[lane], static_cast<const void*>(&outs[lane]), sizeof(Out));
    }
  };
  unsigned char result[sizeof(Out)];
  detail::warp_rendezvous(op, mask, static_cast<const void*>(&mine), sizeof(In), result, sizeof(Out), combine,
                          &compute);
  Out out;
  std::memcpy(static_cast<void*>(&out), result, sizeof(Out));
  return out;
}

// Runs `kernel` over the grid on the CPU and returns when every block has
// finished. The arguments are converted to the kernel's parameter types once,
// as a launch does; each thread gets its own copy of the parameters.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t dynamic_smem_bytes,
            Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args),
                "emu::launch: the argument count differs from the kernel's parameter count");
  struct Context {
    void (*kernel)(Params...);
    std::tuple<std::remove_cvref_t<Params>...> params;
  };
  const Context context{kernel, std::tuple<std::remove_cvref_t<Params>...>(
                                    static_cast<std::remove_cvref_t<Params>>(std::forward<Args>(args))...)};
  detail::run_grid(
      grid, block, dynamic_smem_bytes,
      [](const void* p) {
        const Context& c = *static_cast<const Context*>(p);
        std::apply(c.kernel, c.params);
      },
      &context);
}

// The emulated device (tests/emu/device: link ddpm_emu_device): ddpm::launch_kernel's
// path. Checks the launch as the runtime would (a bad one sets cudaGetLastError),
// then runs the grid on `stream` in its order, asynchronously to the caller.
namespace device::detail {
void enqueue_launch(cudaStream_t stream, const void* func, dim3 grid, dim3 block, std::size_t dynamic_smem,
                    std::function<void()> body);
}  // namespace device::detail

template <class... Params, class... Args>
void launch_on(cudaStream_t stream, void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t dynamic_smem_bytes,
               Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args),
                "emu::launch_on: the argument count differs from the kernel's parameter count");
  // Converted and copied now, as a launch copies its arguments.
  std::tuple<std::remove_cvref_t<Params>...> params(
      static_cast<std::remove_cvref_t<Params>>(std::forward<Args>(args))...);
  auto body = [kernel, grid, block, dynamic_smem_bytes, params] {
    std::apply([&](const auto&... p) { launch(kernel, grid, block, dynamic_smem_bytes, p...); }, params);
  };
  device::detail::enqueue_launch(stream, reinterpret_cast<const void*>(kernel), grid, block, dynamic_smem_bytes,
                                 std::move(body));
}

}  // namespace emu

// The runtime's function-pointer overloads that cuda_runtime.h declares for nvcc only.
template <class T>
inline cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), attr, value);
}
template <class T>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, T* func, int block_size,
                                                                 std::size_t dynamic_smem) {
  return ::cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, reinterpret_cast<const void*>(func), block_size,
                                                         dynamic_smem);
}

// ---- Built-in variables ----
// Macros, because cuRAND's host path declares `extern const uint3 threadIdx;`.
#define threadIdx (static_cast<const uint3&>(::emu::detail::tl_thread_idx))
#define blockIdx (static_cast<const uint3&>(::emu::detail::tl_block_idx))
#define blockDim (static_cast<const dim3&>(::emu::detail::tl_block_dim))
#define gridDim (static_cast<const dim3&>(::emu::detail::tl_grid_dim))
inline constexpr int warpSize = 32;

// ---- Block synchronization ----
inline void __syncthreads() { ::emu::detail::sync_block(); }
inline int __syncthreads_count(int predicate) { return ::emu::detail::sync_block_vote(predicate).count; }
inline int __syncthreads_and(int predicate) {
  const auto v = ::emu::detail::sync_block_vote(predicate);
  return v.count == v.participants;
}
inline int __syncthreads_or(int predicate) { return ::emu::detail::sync_block_vote(predicate).count != 0; }

// Memory fences. Blocks run one after another, so only the ordering among
// the threads of a block matters; a fence here orders with every other fence.
inline void __threadfence_block() { ::emu::detail::fence(); }
inline void __threadfence() { ::emu::detail::fence(); }
inline void __threadfence_system() { ::emu::detail::fence(); }

// ---- Warp-level primitives ----
namespace emu::detail {

inline void check_width(const char* op, int width) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    ::emu::fail("%s: width %d is not a power of two in [1, 32]", op, width);
  }
}

template <class T>
struct ShuffleIn {
  T value;
  int source;  // the lane whose value this lane receives
};

template <class T>
T shuffle(const char* op, unsigned mask, T value, int source) {
  return ::emu::warp_collective<ShuffleIn<T>, T>(
      op, mask, ShuffleIn<T>{value, source}, [](const ShuffleIn<T> (&in)[32], T (&out)[32], unsigned lanes) {
        for (int lane = 0; lane < 32; ++lane) {
          if (!((lanes >> lane) & 1u)) continue;
          const int src = in[lane].source;
          if ((lanes >> src) & 1u) {
            out[lane] = in[src].value;
          } else {  // reading a lane that does not take part: undefined on the GPU
            std::memset(static_cast<void*>(&out[lane]), 0xff, sizeof(T));
          }
        }
      });
}

template <class T>
T shfl_idx(unsigned mask, T var, int src_lane, int width) {
  check_width("__shfl_sync", width);
  const int lane = static_cast<int>(lane_id());
  const int src = (lane & ~(width - 1)) + (src_lane & (width - 1));
  return shuffle("__shfl_sync", mask, var, src);
}

template <class T>
T shfl_up(unsigned mask, T var, unsigned delta, int width) {
  check_width("__shfl_up_sync", width);
  const int lane = static_cast<int>(lane_id());
  delta &= 31u;  // the instruction reads five bits of it
  const bool inside = static_cast<unsigned>(lane & (width - 1)) >= delta;
  return shuffle("__shfl_up_sync", mask, var, inside ? lane - static_cast<int>(delta) : lane);
}

template <class T>
T shfl_down(unsigned mask, T var, unsigned delta, int width) {
  check_width("__shfl_down_sync", width);
  const int lane = static_cast<int>(lane_id());
  delta &= 31u;
  const bool inside = static_cast<unsigned>(lane & (width - 1)) + delta < static_cast<unsigned>(width);
  return shuffle("__shfl_down_sync", mask, var, inside ? lane + static_cast<int>(delta) : lane);
}

template <class T>
T shfl_xor(unsigned mask, T var, int lane_mask, int width) {
  check_width("__shfl_xor_sync", width);
  const int lane = static_cast<int>(lane_id());
  const int src = lane ^ (lane_mask & 31);
  const int last = (lane & ~(width - 1)) + width - 1;  // later groups are out of reach
  return shuffle("__shfl_xor_sync", mask, var, src <= last ? src : lane);
}

struct Vote {
  unsigned ballot;
  unsigned lanes;
};

inline Vote vote(const char* op, unsigned mask, int predicate) {
  return ::emu::warp_collective<int, Vote>(op, mask, predicate, [](const int (&in)[32], Vote (&out)[32], unsigned lanes) {
    unsigned ballot = 0;
    for (int lane = 0; lane < 32; ++lane) {
      if (((lanes >> lane) & 1u) && in[lane] != 0) ballot |= 1u << lane;
    }
    for (int lane = 0; lane < 32; ++lane) out[lane] = Vote{ballot, lanes};
  });
}

template <class T, class Op>
T warp_reduce(const char* op, unsigned mask, T value) {
  return ::emu::warp_collective<T, T>(op, mask, value, [](const T (&in)[32], T (&out)[32], unsigned lanes) {
    bool first = true;
    T acc{};
    for (int lane = 0; lane < 32; ++lane) {
      if (!((lanes >> lane) & 1u)) continue;
      acc = first ? in[lane] : Op{}(acc, in[lane]);
      first = false;
    }
    for (int lane = 0; lane < 32; ++lane) out[lane] = acc;
  });
}

template <class T>
struct MatchOut {
  unsigned any;  // lanes holding the same value as this lane
  unsigned all;  // the participating lanes if all values are equal, else 0
};

template <class T>
MatchOut<T> match(const char* op, unsigned mask, T value) {
  return ::emu::warp_collective<T, MatchOut<T>>(
      op, mask, value, [](const T (&in)[32], MatchOut<T> (&out)[32], unsigned lanes) {
        for (int lane = 0; lane < 32; ++lane) {
          if (!((lanes >> lane) & 1u)) continue;
          unsigned same = 0;
          for (int other = 0; other < 32; ++other) {
            if (((lanes >> other) & 1u) && std::memcmp(&in[lane], &in[other], sizeof(T)) == 0) {
              same |= 1u << other;
            }
          }
          out[lane].any = same;
          out[lane].all = same == lanes ? lanes : 0u;
        }
      });
}

}  // namespace emu::detail

// The overload sets below are CUDA's, so that overload resolution (and the
// implicit conversions it implies) is the same as under nvcc.
#define DDPM_EMU_SHUFFLES(T)                                                                             \
  inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {                      \
    return ::emu::detail::shfl_idx<T>(mask, var, src_lane, width);                                        \
  }                                                                                                      \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {                 \
    return ::emu::detail::shfl_up<T>(mask, var, delta, width);                                            \
  }                                                                                                      \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {               \
    return ::emu::detail::shfl_down<T>(mask, var, delta, width);                                          \
  }                                                                                                      \
  inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {                 \
    return ::emu::detail::shfl_xor<T>(mask, var, lane_mask, width);                                       \
  }
DDPM_EMU_SHUFFLES(int)
DDPM_EMU_SHUFFLES(unsigned int)
DDPM_EMU_SHUFFLES(long)
DDPM_EMU_SHUFFLES(unsigned long)
DDPM_EMU_SHUFFLES(long long)
DDPM_EMU_SHUFFLES(unsigned long long)
DDPM_EMU_SHUFFLES(float)
DDPM_EMU_SHUFFLES(double)
DDPM_EMU_SHUFFLES(__half)
DDPM_EMU_SHUFFLES(__half2)
DDPM_EMU_SHUFFLES(__nv_bfloat16)
DDPM_EMU_SHUFFLES(__nv_bfloat162)
#undef DDPM_EMU_SHUFFLES

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::emu::warp_collective<char, char>("__syncwarp", mask, char{0}, [](const char (&)[32], char (&)[32], unsigned) {});
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return ::emu::detail::vote("__ballot_sync", mask, predicate).ballot;
}
inline int __any_sync(unsigned mask, int predicate) {
  return ::emu::detail::vote("__any_sync", mask, predicate).ballot != 0;
}
inline int __all_sync(unsigned mask, int predicate) {
  const auto v = ::emu::detail::vote("__all_sync", mask, predicate);
  return v.ballot == v.lanes;
}
inline int __uni_sync(unsigned mask, int predicate) {
  const auto v = ::emu::detail::vote("__uni_sync", mask, predicate);
  return v.ballot == 0 || v.ballot == v.lanes;
}
// The lanes of the calling warp that have not returned (the emulation does not
// model which lanes happen to execute together).
inline unsigned __activemask() { return ::emu::detail::live_lanes(); }

#define DDPM_EMU_MATCH(T)                                                                   \
  inline unsigned __match_any_sync(unsigned mask, T value) {                                \
    return ::emu::detail::match<T>("__match_any_sync", mask, value).any;                    \
  }                                                                                         \
  inline unsigned __match_all_sync(unsigned mask, T value, int* pred) {                     \
    const unsigned all = ::emu::detail::match<T>("__match_all_sync", mask, value).all;      \
    *pred = all != 0;                                                                       \
    return all;                                                                             \
  }
DDPM_EMU_MATCH(int)
DDPM_EMU_MATCH(unsigned int)
DDPM_EMU_MATCH(long)
DDPM_EMU_MATCH(unsigned long)
DDPM_EMU_MATCH(long long)
DDPM_EMU_MATCH(unsigned long long)
DDPM_EMU_MATCH(float)
DDPM_EMU_MATCH(double)
#undef DDPM_EMU_MATCH

namespace emu::detail {
struct Plus { template <class T> T operator()(T a, T b) const { return a + b; } };
struct Min { template <class T> T operator()(T a, T b) const { return b < a ? b : a; } };
struct Max { template <class T> T operator()(T a, T b) const { return a < b ? b : a; } };
struct And { template <class T> T operator()(T a, T b) const { return a & b; } };
struct Or { template <class T> T operator()(T a, T b) const { return a | b; } };
struct Xor { template <class T> T operator()(T a, T b) const { return a ^ b; } };
}  // namespace emu::detail

inline unsigned __reduce_add_sync(unsigned mask, unsigned value) {
  return ::emu::detail::warp_reduce<unsigned, ::emu::detail::Plus>("__reduce_add_sync", mask, value);
}
inline int __reduce_add_sync(unsigned mask, int value) {
  return static_cast<int>(__reduce_add_sync(mask, static_cast<unsigned>(value)));
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned value) {
  return ::emu::detail::warp_reduce<unsigned, ::emu::detail::Min>("__reduce_min_sync", mask, value);
}
inline int __reduce_min_sync(unsigned mask, int value) {
  return ::emu::detail::warp_reduce<int, ::emu::detail::Min>("__reduce_min_sync", mask, value);
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned value) {
  return ::emu::detail::warp_reduce<unsigned, ::emu::detail::Max>("__reduce_max_sync", mask, value);
}
inline int __reduce_max_sync(unsigned mask, int value) {
  return ::emu::detail::warp_reduce<int, ::emu::detail::Max>("__reduce_max_sync", mask, value);
}
inline unsigned __reduce_and_sync(unsigned mask, unsigned value) {
  return ::emu::detail::warp_reduce<unsigned, ::emu::detail::And>("__reduce_and_sync", mask, value);
}
inline unsigned __reduce_or_sync(unsigned mask, unsigned value) {
  return ::emu::detail::warp_reduce<unsigned, ::emu::detail::Or>("__reduce_or_sync", mask, value);
}
inline unsigned __reduce_xor_sync(unsigned mask, unsigned value) {
  return ::emu::detail::warp_reduce<unsigned, ::emu::detail::Xor>("__reduce_xor_sync", mask, value);
}

// ---- Atomics ----
// Relaxed read-modify-writes, as on the GPU (order with __threadfence or a barrier).
namespace emu::detail {

template <class T>
T atomic_fetch_add(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}

template <std::size_t N> struct BitsOf;
template <> struct BitsOf<2> { using type [[gnu::may_alias]] = uint16_t; };
template <> struct BitsOf<4> { using type [[gnu::may_alias]] = uint32_t; };
template <> struct BitsOf<8> { using type [[gnu::may_alias]] = uint64_t; };

// A compare-and-swap loop on the word holding *address (which also serves
// __half2 and friends, whose copy assignment std::atomic_ref refuses).
template <class T, class F>
T atomic_update(T* address, F update) {
  using Bits = typename BitsOf<sizeof(T)>::type;
  Bits* word = reinterpret_cast<Bits*>(address);
  Bits old_bits = __atomic_load_n(word, __ATOMIC_RELAXED);
  for (;;) {
    T old;
    std::memcpy(static_cast<void*>(&old), &old_bits, sizeof(T));
    const T desired = update(old);
    Bits desired_bits;
    std::memcpy(&desired_bits, static_cast<const void*>(&desired), sizeof(T));
    if (__atomic_compare_exchange_n(word, &old_bits, desired_bits, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
      return old;
    }
  }
}

template <class T>
T atomic_cas(T* address, T compare, T value) {
  std::atomic_ref<T>(*address).compare_exchange_strong(compare, value, std::memory_order_relaxed);
  return compare;  // the old value, whether or not it was replaced
}

}  // namespace emu::detail

#define DDPM_EMU_ATOMIC_SCOPES(ret, name, params, args) \
  inline ret name params { return ::emu::detail::name##_impl args; }               \
  inline ret name##_block params { return ::emu::detail::name##_impl args; }       \
  inline ret name##_system params { return ::emu::detail::name##_impl args; }

namespace emu::detail {
template <class T>
T atomicAdd_impl(T* a, T v) {
  if constexpr (std::is_arithmetic_v<T>) {
    return atomic_fetch_add(a, v);
  } else {  // __half, __half2, __nv_bfloat16, __nv_bfloat162: round each sum as the GPU does
    return atomic_update(a, [v](T old) { return __hadd(old, v); });
  }
}
inline __half2 atomicAdd_impl(__half2* a, __half2 v) {
  return atomic_update(a, [v](__half2 old) { return __hadd2(old, v); });
}
inline __nv_bfloat162 atomicAdd_impl(__nv_bfloat162* a, __nv_bfloat162 v) {
  return atomic_update(a, [v](__nv_bfloat162 old) { return __hadd2(old, v); });
}
template <class T>
T atomicSub_impl(T* a, T v) {
  return std::atomic_ref<T>(*a).fetch_sub(v, std::memory_order_relaxed);
}
template <class T>
T atomicExch_impl(T* a, T v) {
  return std::atomic_ref<T>(*a).exchange(v, std::memory_order_relaxed);
}
template <class T>
T atomicMin_impl(T* a, T v) {
  return atomic_update(a, [v](T old) { return v < old ? v : old; });
}
template <class T>
T atomicMax_impl(T* a, T v) {
  return atomic_update(a, [v](T old) { return old < v ? v : old; });
}
inline unsigned atomicInc_impl(unsigned* a, unsigned limit) {
  return atomic_update(a, [limit](unsigned old) { return old >= limit ? 0u : old + 1u; });
}
inline unsigned atomicDec_impl(unsigned* a, unsigned limit) {
  return atomic_update(a, [limit](unsigned old) { return (old == 0u || old > limit) ? limit : old - 1u; });
}
template <class T>
T atomicCAS_impl(T* a, T compare, T v) {
  return atomic_cas(a, compare, v);
}
template <class T>
T atomicAnd_impl(T* a, T v) {
  return std::atomic_ref<T>(*a).fetch_and(v, std::memory_order_relaxed);
}
template <class T>
T atomicOr_impl(T* a, T v) {
  return std::atomic_ref<T>(*a).fetch_or(v, std::memory_order_relaxed);
}
template <class T>
T atomicXor_impl(T* a, T v) {
  return std::atomic_ref<T>(*a).fetch_xor(v, std::memory_order_relaxed);
}
}  // namespace emu::detail

DDPM_EMU_ATOMIC_SCOPES(int, atomicAdd, (int* a, int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicAdd, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned long long, atomicAdd, (unsigned long long* a, unsigned long long v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(float, atomicAdd, (float* a, float v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(double, atomicAdd, (double* a, double v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(__half, atomicAdd, (__half* a, __half v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(__half2, atomicAdd, (__half2* a, __half2 v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(__nv_bfloat16, atomicAdd, (__nv_bfloat16* a, __nv_bfloat16 v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(__nv_bfloat162, atomicAdd, (__nv_bfloat162* a, __nv_bfloat162 v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(int, atomicSub, (int* a, int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicSub, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(int, atomicExch, (int* a, int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicExch, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned long long, atomicExch, (unsigned long long* a, unsigned long long v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(float, atomicExch, (float* a, float v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(int, atomicMin, (int* a, int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicMin, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(long long, atomicMin, (long long* a, long long v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned long long, atomicMin, (unsigned long long* a, unsigned long long v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(int, atomicMax, (int* a, int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicMax, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(long long, atomicMax, (long long* a, long long v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned long long, atomicMax, (unsigned long long* a, unsigned long long v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicInc, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicDec, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(int, atomicCAS, (int* a, int c, int v), (a, c, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicCAS, (unsigned int* a, unsigned int c, unsigned int v), (a, c, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned long long, atomicCAS,
                       (unsigned long long* a, unsigned long long c, unsigned long long v), (a, c, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned short int, atomicCAS,
                       (unsigned short int* a, unsigned short int c, unsigned short int v), (a, c, v))
DDPM_EMU_ATOMIC_SCOPES(int, atomicAnd, (int* a, int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicAnd, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned long long, atomicAnd, (unsigned long long* a, unsigned long long v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(int, atomicOr, (int* a, int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicOr, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned long long, atomicOr, (unsigned long long* a, unsigned long long v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(int, atomicXor, (int* a, int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned int, atomicXor, (unsigned int* a, unsigned int v), (a, v))
DDPM_EMU_ATOMIC_SCOPES(unsigned long long, atomicXor, (unsigned long long* a, unsigned long long v), (a, v))
#undef DDPM_EMU_ATOMIC_SCOPES

// ---- Arithmetic intrinsics, mapped to their exact host counterparts ----
// (The GPU's fast-math versions are less accurate: see README.md.)
// __expf, __logf, __sinf, __cosf, __tanf, __powf, __exp10f, __log2f,
// __log10f and __sincosf are declared by the C library's <math.h> and
// defined by the emulation runtime.
inline float __fdividef(float x, float y) { return x / y; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fmaf_rn(float x, float y, float z) { return std::fma(x, y, z); }
inline double __dadd_rn(double x, double y) { return x + y; }
inline double __dmul_rn(double x, double y) { return x * y; }
inline double __fma_rn(double x, double y, double z) { return std::fma(x, y, z); }
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }  // NaN -> 0

inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned int __float_as_uint(float x) { return std::bit_cast<unsigned int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned int x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline int __float2int_rn(float x) { return static_cast<int>(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(std::trunc(x)); }
inline int __float2int_rd(float x) { return static_cast<int>(std::floor(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(std::ceil(x)); }
inline unsigned int __float2uint_rn(float x) { return static_cast<unsigned int>(std::nearbyint(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline float __uint2float_rn(unsigned int x) { return static_cast<float>(x); }

inline int __popc(unsigned int x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned int>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned int>(x)) + 1; }
inline int __ffsll(long long x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1;
}
inline unsigned int __brev(unsigned int x) {
  unsigned int r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned long long __brevll(unsigned long long x) {
  return (static_cast<unsigned long long>(__brev(static_cast<unsigned int>(x))) << 32) |
         __brev(static_cast<unsigned int>(x >> 32));
}
inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
  const unsigned long long bytes = (static_cast<unsigned long long>(y) << 32) | x;
  unsigned int r = 0;
  for (int i = 0; i < 4; ++i) r |= static_cast<unsigned int>((bytes >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);
  return r;
}
inline unsigned int __funnelshift_l(unsigned int lo, unsigned int hi, unsigned int shift) {
  const unsigned long long v = (static_cast<unsigned long long>(hi) << 32) | lo;
  return static_cast<unsigned int>((v << (shift & 31u)) >> 32);
}
inline unsigned int __funnelshift_r(unsigned int lo, unsigned int hi, unsigned int shift) {
  const unsigned long long v = (static_cast<unsigned long long>(hi) << 32) | lo;
  return static_cast<unsigned int>(v >> (shift & 31u));
}
inline int __mulhi(int x, int y) { return static_cast<int>((static_cast<long long>(x) * y) >> 32); }
inline unsigned int __umulhi(unsigned int x, unsigned int y) {
  return static_cast<unsigned int>((static_cast<unsigned long long>(x) * y) >> 32);
}
inline long long __mul64hi(long long x, long long y) {
  return static_cast<long long>((static_cast<__int128>(x) * y) >> 64);
}
inline unsigned long long __umul64hi(unsigned long long x, unsigned long long y) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(x) * y) >> 64);
}
inline int __mul24(int x, int y) { return ((x << 8) >> 8) * ((y << 8) >> 8); }
inline unsigned int __umul24(unsigned int x, unsigned int y) { return (x & 0xffffffu) * (y & 0xffffffu); }

// min and max as CUDA's device overloads give them: the usual arithmetic
// conversions, fminf/fmaxf semantics (a NaN loses) for floating point.
template <class A, class B>
  requires(std::is_arithmetic_v<A> && std::is_arithmetic_v<B>)
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) {
    return std::fmin(static_cast<C>(a), static_cast<C>(b));
  } else {
    return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
  }
}
template <class A, class B>
  requires(std::is_arithmetic_v<A> && std::is_arithmetic_v<B>)
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) {
    return std::fmax(static_cast<C>(a), static_cast<C>(b));
  } else {
    return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
  }
}

// ---- Cache-hinted loads and stores: plain accesses on the host ----
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldca(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline T __ldcv(const T* p) { return *p; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwt(T* p, T v) { *p = v; }

// ---- Miscellaneous ----
inline void __trap() { ::emu::fail("__trap() called"); }
inline void __brkpt() { ::emu::fail("__brkpt() called"); }
inline void __nanosleep(unsigned int ns) { std::this_thread::sleep_for(std::chrono::nanoseconds(ns)); }
inline long long clock64() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---- Not emulated: using one of these fails to compile, naming it ----
#define DDPM_EMU_UNSUPPORTED(name, hint)                                                        \
  template <class... Args>                                                                      \
  void name(Args...) {                                                                          \
    static_assert(::emu::detail::always_false<Args...>,                                         \
                  #name " is not supported by the emulation harness (tests/emu/cuda_emu.hpp)" hint); \
  }
DDPM_EMU_UNSUPPORTED(__shfl, ": use __shfl_sync")
DDPM_EMU_UNSUPPORTED(__shfl_up, ": use __shfl_up_sync")
DDPM_EMU_UNSUPPORTED(__shfl_down, ": use __shfl_down_sync")
DDPM_EMU_UNSUPPORTED(__shfl_xor, ": use __shfl_xor_sync")
DDPM_EMU_UNSUPPORTED(__ballot, ": use __ballot_sync")
DDPM_EMU_UNSUPPORTED(__any, ": use __any_sync")
DDPM_EMU_UNSUPPORTED(__all, ": use __all_sync")
DDPM_EMU_UNSUPPORTED(__cvta_generic_to_shared, ": cp.async and other shared-address PTX are not emulated")
DDPM_EMU_UNSUPPORTED(__pipeline_memcpy_async, ": asynchronous copies are not emulated")
DDPM_EMU_UNSUPPORTED(__pipeline_commit, ": asynchronous copies are not emulated")
DDPM_EMU_UNSUPPORTED(__pipeline_wait_prior, ": asynchronous copies are not emulated")
DDPM_EMU_UNSUPPORTED(tex1Dfetch, ": textures are not emulated")
DDPM_EMU_UNSUPPORTED(tex2D, ": textures are not emulated")
#undef DDPM_EMU_UNSUPPORTED

#endif  // DDPM_CUDA_EMU_HPP
