// The CUDA runtime API on the emulated device (see emu_device.hpp for the
// semantics and the environment that configures it). Linked into test
// binaries and the tools' emulated builds in place of cudart.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "emu_device.hpp"

// The runtime's opaque handles, completed here.
struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;

namespace emu::device {
namespace {

using Clock = std::chrono::steady_clock;

// ---- Configuration ----
std::size_t parse_bytes(const char* s, std::size_t fallback) {
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  std::size_t scale = 1;
  if (end && (*end == 'K' || *end == 'k')) scale = std::size_t(1) << 10;
  if (end && (*end == 'M' || *end == 'm')) scale = std::size_t(1) << 20;
  if (end && (*end == 'G' || *end == 'g')) scale = std::size_t(1) << 30;
  return v > 0 ? std::size_t(v * double(scale)) : fallback;
}
long long env_int(const char* name, long long fallback) {
  const char* s = std::getenv(name);
  return s && *s ? std::atoll(s) : fallback;
}

// The profile the device runs as: compute capability, SMs and limits.
struct Profile {
  std::string key;  // h200, a100, l4
  std::string name;
  int major, minor;
  int sms;
  int clock_khz;
  int max_threads_per_sm;
  std::size_t smem_per_sm;           // bytes of shared memory per SM
  std::size_t smem_per_block_optin;  // the most a block may opt in to
  int l2_bytes;
  std::size_t memory_bytes;  // the real card's
};

const Profile kProfiles[] = {
    // key, name, cc, SMs, clock, threads/SM, smem/SM, optin/block, L2, memory
    {"h200", "NVIDIA H200 (emulated)", 9, 0, 132, 1980000, 2048, 233472, 232448, 60 << 20, std::size_t(141) << 30},
    {"a100", "NVIDIA A100-SXM4-80GB (emulated)", 8, 0, 108, 1410000, 2048, 167936, 166912, 40 << 20,
     std::size_t(80) << 30},
    {"l4", "NVIDIA L4 (emulated)", 8, 9, 58, 2040000, 1536, 102400, 101376, 48 << 20, std::size_t(24) << 30},
};

struct Config {
  const Profile* profile = nullptr;  // nullptr: no device
  std::size_t memory = std::size_t(4) << 30;
  long long fail_alloc = 0, fail_launch = 0;
  int dma_delay_ms = 10;
  // The installed driver's CUDA version, as cudaDriverGetVersion encodes it (1000 major + 10 minor):
  // 0 where no driver is installed (no libcuda.so.1), older than the runtime's major: too old.
  int driver_version = CUDART_VERSION;
  Config() {
    const char* key = std::getenv("DDPM_EMU_DEVICE");
    const std::string k = key && *key ? key : "h200";
    for (const Profile& p : kProfiles)
      if (k == p.key) profile = &p;
    if (profile == nullptr && k != "none") {
      std::fprintf(stderr, "cuda_runtime_emu: DDPM_EMU_DEVICE=%s is not h200, a100, l4 or none\n", k.c_str());
      std::abort();
    }
    memory = parse_bytes(std::getenv("DDPM_EMU_DEVICE_MEMORY"), memory);
    fail_alloc = env_int("DDPM_EMU_FAIL_ALLOC", 0);
    fail_launch = env_int("DDPM_EMU_FAIL_LAUNCH", 0);
    dma_delay_ms = int(env_int("DDPM_EMU_DMA_DELAY_MS", 10));
    driver_version = int(env_int("DDPM_EMU_DRIVER_VERSION", CUDART_VERSION));
  }
};
const Config& config() {
  static const Config c;
  return c;
}

// ---- Errors ----
std::atomic<int> g_sticky{cudaSuccess};  // a fault in a kernel: every later call reports it
thread_local cudaError_t tl_last = cudaSuccess;
cudaError_t ret(cudaError_t e) {
  if (e != cudaSuccess) tl_last = e;
  return e;
}
cudaError_t sticky() { return cudaError_t(g_sticky.load()); }

std::atomic<long long> g_launch_count{0}, g_alloc_count{0};

// ---- Memory ----
enum class Kind { kDevice, kPinned };
struct Allocation {
  std::size_t bytes;
  Kind kind;
};
std::mutex g_mem_mutex;
std::map<std::uintptr_t, Allocation> g_allocations;  // by start address
std::size_t g_device_bytes = 0;

// The allocation holding [p, p + bytes), if any.
const Allocation* find(const void* p, std::size_t bytes = 1) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = g_allocations.upper_bound(a);
  if (it == g_allocations.begin()) return nullptr;
  --it;
  if (a + bytes > it->first + it->second.bytes) return nullptr;
  return &it->second;
}
bool is_device(const void* p, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  const Allocation* a = find(p, bytes);
  return a && a->kind == Kind::kDevice;
}
bool is_pinned(const void* p, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  const Allocation* a = find(p, bytes);
  return a && a->kind == Kind::kPinned;
}

}  // namespace
}  // namespace emu::device

// ---- Streams ----
// Each stream runs its operations on a thread of its own, in issue order.
// An operation may wait for other streams' positions (the legacy stream's
// implicit synchronization).
struct CUstream_st {
  struct Dep {
    std::shared_ptr<CUstream_st> stream;
    uint64_t seq;
  };
  struct Op {
    std::function<void()> run;
    std::vector<Dep> deps;
    uint64_t seq;
  };
  unsigned flags = cudaStreamDefault;
  bool legacy = false;
  std::mutex m;
  std::condition_variable cv;
  std::deque<Op> queue;
  uint64_t issued = 0, completed = 0;
  bool stopping = false;
  // Capture: operations go into this graph instead of running.
  CUgraph_st* capture = nullptr;
  cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
  bool capture_invalidated = false;

  void wait_for(uint64_t seq) {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return completed >= seq; });
  }
};

struct CUgraph_st {
  std::vector<std::function<void()>> nodes;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> nodes;
};
struct CUevent_st {
  unsigned flags = 0;
  std::shared_ptr<CUstream_st> stream;  // where it was last recorded
  uint64_t seq = 0;
  std::atomic<int64_t> when_ns{0};
};

namespace emu::device {
namespace {

// Every stream with work to do, the legacy one included: a destroyed stream
// stays until its worker has drained it, since device-wide synchronization
// (cudaDeviceSynchronize, cudaFree) waits for its work too.
// Never destroyed: detached workers still use it while the process exits.
struct StreamRegistry {
  std::mutex mutex;
  std::unordered_map<CUstream_st*, std::shared_ptr<CUstream_st>> streams;
  CUstream_st* legacy = nullptr;
};
StreamRegistry& registry() {
  static StreamRegistry* r = new StreamRegistry;
  return *r;
}

void worker(std::shared_ptr<CUstream_st> s) {
  for (;;) {
    CUstream_st::Op op;
    {
      std::unique_lock<std::mutex> lock(s->m);
      s->cv.wait(lock, [&] { return !s->queue.empty() || s->stopping; });
      if (s->queue.empty()) break;  // destroyed, and its work done
      op = std::move(s->queue.front());
      s->queue.pop_front();
    }
    for (const auto& d : op.deps) d.stream->wait_for(d.seq);
    if (op.run) op.run();
    {
      std::lock_guard<std::mutex> lock(s->m);
      s->completed = op.seq;
    }
    s->cv.notify_all();
  }
  std::lock_guard<std::mutex> lock(registry().mutex);
  registry().streams.erase(s.get());
}

std::shared_ptr<CUstream_st> make_stream(unsigned flags, bool legacy) {
  auto s = std::make_shared<CUstream_st>();
  s->flags = flags;
  s->legacy = legacy;
  std::thread(worker, s).detach();  // it ends once the stream is destroyed and drained
  return s;
}

// The stream a handle names: 0 and cudaStreamLegacy are the legacy default stream.
std::shared_ptr<CUstream_st> stream_of(cudaStream_t h) {
  StreamRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (h == nullptr || h == cudaStreamLegacy || h == cudaStreamPerThread) {
    if (r.legacy == nullptr) {
      auto s = make_stream(cudaStreamDefault, true);
      r.legacy = s.get();
      r.streams[r.legacy] = s;
    }
    return r.streams[r.legacy];
  }
  auto it = r.streams.find(h);
  if (it == r.streams.end()) return nullptr;
  std::lock_guard<std::mutex> stream_lock(it->second->m);
  return it->second->stopping ? nullptr : it->second;  // destroyed: draining, no longer a handle
}

std::vector<std::shared_ptr<CUstream_st>> all_streams() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  std::vector<std::shared_ptr<CUstream_st>> v;
  for (auto& [h, s] : registry().streams) v.push_back(s);
  return v;
}

// Puts `run` on stream `s` after its earlier work and, by the legacy
// stream's rules, after the other streams' it must wait for. Returns its position.
uint64_t enqueue_on(const std::shared_ptr<CUstream_st>& s, std::function<void()> run) {
  std::vector<CUstream_st::Dep> deps;
  if (s->legacy) {
    for (auto& o : all_streams()) {
      if (o.get() == s.get() || (o->flags & cudaStreamNonBlocking)) continue;
      std::lock_guard<std::mutex> lock(o->m);
      deps.push_back({o, o->issued});
    }
  } else if (!(s->flags & cudaStreamNonBlocking)) {
    auto legacy = stream_of(nullptr);
    std::lock_guard<std::mutex> lock(legacy->m);
    deps.push_back({legacy, legacy->issued});
  }
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(s->m);
    seq = ++s->issued;
    s->queue.push_back({std::move(run), std::move(deps), seq});
  }
  s->cv.notify_all();
  return seq;
}

// Capture: the streams this thread is capturing in a mode that forbids
// synchronous calls (global and thread-local both do, for the capturing thread).
thread_local int tl_capturing = 0;
std::atomic<int> g_global_captures{0};
bool sync_forbidden() { return tl_capturing > 0 || g_global_captures.load() > 0; }
cudaError_t capture_violation() {
  for (auto& s : all_streams()) {
    std::lock_guard<std::mutex> lock(s->m);
    if (s->capture) s->capture_invalidated = true;
  }
  return ret(cudaErrorStreamCaptureUnsupported);
}

// Runs `op` on stream h, or appends it to the graph h is capturing.
cudaError_t submit(cudaStream_t h, std::function<void()> op, bool wait = false) {
  if (sticky()) return ret(sticky());
  auto s = stream_of(h);
  if (!s) return ret(cudaErrorInvalidResourceHandle);
  {
    std::lock_guard<std::mutex> lock(s->m);
    if (s->capture) {
      if (wait) {
        s->capture_invalidated = true;
        return ret(cudaErrorStreamCaptureUnsupported);
      }
      s->capture->nodes.push_back(std::move(op));
      return cudaSuccess;
    }
  }
  const uint64_t seq = enqueue_on(s, std::move(op));
  if (wait) s->wait_for(seq);
  return sticky() ? ret(sticky()) : cudaSuccess;
}

cudaError_t synchronize(const std::shared_ptr<CUstream_st>& s) {
  uint64_t target;
  {
    std::lock_guard<std::mutex> lock(s->m);
    target = s->issued;
  }
  s->wait_for(target);
  return sticky() ? ret(sticky()) : cudaSuccess;
}

// ---- Copies ----
enum class Side { kDevice, kPinned, kPageable };
Side side_of(const void* p, std::size_t bytes) {
  if (is_device(p, bytes)) return Side::kDevice;
  if (is_pinned(p, bytes)) return Side::kPinned;
  return Side::kPageable;
}

// Checks that the copy's kind agrees with where its pointers are.
cudaError_t check_kind(Side dst, Side src, cudaMemcpyKind kind) {
  const bool dst_dev = dst == Side::kDevice, src_dev = src == Side::kDevice;
  switch (kind) {
    case cudaMemcpyHostToDevice: return dst_dev && !src_dev ? cudaSuccess : cudaErrorInvalidValue;
    case cudaMemcpyDeviceToHost: return !dst_dev && src_dev ? cudaSuccess : cudaErrorInvalidValue;
    case cudaMemcpyDeviceToDevice: return dst_dev && src_dev ? cudaSuccess : cudaErrorInvalidValue;
    case cudaMemcpyHostToHost: return !dst_dev && !src_dev ? cudaSuccess : cudaErrorInvalidValue;
    case cudaMemcpyDefault: return cudaSuccess;
  }
  return cudaErrorInvalidMemcpyDirection;
}

cudaError_t copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t h, bool async) {
  if (bytes == 0) return cudaSuccess;
  if (!async && sync_forbidden()) return capture_violation();
  const Side ds = side_of(dst, bytes), ss = side_of(src, bytes);
  if (const cudaError_t e = check_kind(ds, ss, kind); e != cudaSuccess) return ret(e);
  if (ss == Side::kPageable && ds == Side::kDevice) {
    // From pageable memory: staged now, so the caller may reuse its buffer;
    // cudaMemcpy returns before the copy lands (its DMA runs on the legacy stream).
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                               static_cast<const unsigned char*>(src) + bytes);
    const int delay = async ? 0 : config().dma_delay_ms;
    return submit(async ? h : nullptr, [=] {
      if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      std::memcpy(dst, staged->data(), bytes);
    });
  }
  // To pageable memory the call returns once the copy is done; a synchronous
  // copy between pinned and device memory is synchronous too.
  const bool wait = !async || ds == Side::kPageable;
  return submit(async ? h : nullptr, [=] { std::memcpy(dst, src, bytes); }, wait);
}

// ---- Functions' attributes ----
std::mutex g_func_mutex;
std::unordered_map<const void*, int> g_func_max_dynamic_smem;  // set by cudaFuncSetAttribute
constexpr int kDefaultDynamicSmem = 48 << 10;
int max_dynamic_smem(const void* func) {
  std::lock_guard<std::mutex> lock(g_func_mutex);
  auto it = g_func_max_dynamic_smem.find(func);
  return it == g_func_max_dynamic_smem.end() ? kDefaultDynamicSmem : it->second;
}

const char* error_name(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    default: return "cudaErrorUnknown";
  }
}
const char* error_string(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    default: return "unknown error";
  }
}

cudaError_t need_device() {
  // The runtime answers "insufficient driver" both where none is installed and where it is too old.
  if (config().driver_version / 1000 < CUDART_VERSION / 1000) return ret(cudaErrorInsufficientDriver);
  if (config().profile == nullptr) return ret(cudaErrorNoDevice);
  return cudaSuccess;
}
// The device's profile; callers have checked need_device().
const Profile& profile() { return *config().profile; }

}  // namespace

namespace detail {

void enqueue_launch(cudaStream_t stream, const void* func, dim3 grid, dim3 block, std::size_t dynamic_smem,
                    std::function<void()> body) {
  if (need_device() != cudaSuccess) return;
  if (sticky()) {
    ret(sticky());
    return;
  }
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0) {
    ret(cudaErrorInvalidConfiguration);
    return;
  }
  if (dynamic_smem > std::size_t(max_dynamic_smem(func))) {
    ret(cudaErrorInvalidValue);  // more than the function was allowed (cudaFuncSetAttribute)
    return;
  }
  auto run = [body = std::move(body)] {
    if (sticky()) return;  // the context is lost: nothing runs any more
    const long long n = g_launch_count.fetch_add(1) + 1;
    if (config().fail_launch > 0 && n == config().fail_launch) {
      g_sticky.store(cudaErrorLaunchFailure);
      return;
    }
    body();
  };
  submit(stream, std::move(run));
}

void enqueue(cudaStream_t stream, std::function<void()> op) { submit(stream, std::move(op)); }

}  // namespace detail
}  // namespace emu::device

using namespace emu::device;

// ---- The runtime API ----
extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  const cudaError_t status = need_device();
  *count = status == cudaSuccess ? 1 : 0;
  return status;
}
cudaError_t cudaDriverGetVersion(int* version) {
  *version = config().driver_version;  // 0, and success, where no driver is installed
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return need_device();
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (const cudaError_t e = need_device()) return e;
  if (device != 0) return ret(cudaErrorInvalidDevice);
  const Profile& p = profile();
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "%s", p.name.c_str());
  prop->major = p.major;
  prop->minor = p.minor;
  prop->multiProcessorCount = p.sms;
  prop->totalGlobalMem = p.memory_bytes;
  prop->sharedMemPerBlock = 48 << 10;
  prop->sharedMemPerBlockOptin = p.smem_per_block_optin;
  prop->sharedMemPerMultiprocessor = p.smem_per_sm;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsPerMultiProcessor = p.max_threads_per_sm;
  prop->warpSize = 32;
  prop->l2CacheSize = p.l2_bytes;
  prop->regsPerBlock = 65536;
  prop->regsPerMultiprocessor = 65536;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (const cudaError_t e = need_device()) return e;
  if (device != 0) return ret(cudaErrorInvalidDevice);
  const Profile& p = profile();
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = p.sms; break;
    case cudaDevAttrClockRate: *value = p.clock_khz; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(p.smem_per_block_optin); break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = int(p.smem_per_sm); break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 << 10; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.max_threads_per_sm; break;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrL2CacheSize: *value = p.l2_bytes; break;
    default: return ret(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (const cudaError_t e = need_device()) return e;
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  *total_bytes = config().memory;
  *free_bytes = config().memory - std::min(config().memory, g_device_bytes);
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
  if (sticky()) return sticky();
  const cudaError_t e = tl_last;
  tl_last = cudaSuccess;
  return e;
}
const char* cudaGetErrorName(cudaError_t error) { return error_name(error); }
const char* cudaGetErrorString(cudaError_t error) { return error_string(error); }

// ---- Memory ----
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = nullptr;
  if (const cudaError_t e = need_device()) return e;
  if (sticky()) return ret(sticky());
  if (sync_forbidden()) return capture_violation();
  const long long n = g_alloc_count.fetch_add(1) + 1;
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 255) & ~std::size_t(255);
  {
    std::lock_guard<std::mutex> lock(g_mem_mutex);
    if ((config().fail_alloc > 0 && n == config().fail_alloc) || g_device_bytes + rounded > config().memory)
      return ret(cudaErrorMemoryAllocation);
    g_device_bytes += rounded;
  }
  void* p = std::aligned_alloc(256, rounded);
  if (p == nullptr) {
    std::lock_guard<std::mutex> lock(g_mem_mutex);
    g_device_bytes -= rounded;
    return ret(cudaErrorMemoryAllocation);
  }
  std::memset(p, 0xff, rounded);  // unwritten device memory is garbage: NaN as float
  {
    std::lock_guard<std::mutex> lock(g_mem_mutex);
    g_allocations[reinterpret_cast<std::uintptr_t>(p)] = {rounded, Kind::kDevice};
  }
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  if (sync_forbidden()) return capture_violation();
  cudaDeviceSynchronize();  // cudaFree waits for the device, as it does on a GPU
  {
    std::lock_guard<std::mutex> lock(g_mem_mutex);
    auto it = g_allocations.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == g_allocations.end() || it->second.kind != Kind::kDevice) return ret(cudaErrorInvalidDevicePointer);
    g_device_bytes -= it->second.bytes;
    g_allocations.erase(it);
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  *ptr = nullptr;
  if (const cudaError_t e = need_device()) return e;
  if (sync_forbidden()) return capture_violation();
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 255) & ~std::size_t(255);
  void* p = std::aligned_alloc(256, rounded);
  if (p == nullptr) return ret(cudaErrorMemoryAllocation);
  std::memset(p, 0xff, rounded);
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  g_allocations[reinterpret_cast<std::uintptr_t>(p)] = {rounded, Kind::kPinned};
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  cudaDeviceSynchronize();
  {
    std::lock_guard<std::mutex> lock(g_mem_mutex);
    auto it = g_allocations.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == g_allocations.end() || it->second.kind != Kind::kPinned) return ret(cudaErrorInvalidValue);
    g_allocations.erase(it);
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (const cudaError_t e = need_device()) return e;
  return copy(dst, src, bytes, kind, nullptr, false);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (const cudaError_t e = need_device()) return e;
  return copy(dst, src, bytes, kind, stream, true);
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (const cudaError_t e = need_device()) return e;
  if (sync_forbidden()) return capture_violation();
  if (bytes && !is_device(ptr, bytes)) return ret(cudaErrorInvalidValue);
  return submit(nullptr, [=] { std::memset(ptr, value, bytes); });
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (const cudaError_t e = need_device()) return e;
  if (bytes && !is_device(ptr, bytes)) return ret(cudaErrorInvalidValue);
  return submit(stream, [=] { std::memset(ptr, value, bytes); });
}

// ---- Streams ----
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (const cudaError_t e = need_device()) return e;
  auto s = make_stream(flags, false);
  std::lock_guard<std::mutex> lock(registry().mutex);
  registry().streams[s.get()] = s;
  *stream = s.get();
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  auto s = stream_of(stream);
  if (!s || s->legacy) return ret(cudaErrorInvalidResourceHandle);
  {
    std::lock_guard<std::mutex> lock(s->m);
    s->stopping = true;  // its worker finishes the queued work, then leaves the registry
  }
  s->cv.notify_all();
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  auto s = stream_of(stream);
  if (!s) return ret(cudaErrorInvalidResourceHandle);
  {
    std::lock_guard<std::mutex> lock(s->m);
    if (s->capture) {
      s->capture_invalidated = true;
      return ret(cudaErrorStreamCaptureUnsupported);
    }
  }
  if (sync_forbidden() && s->legacy) return capture_violation();
  return synchronize(s);
}

cudaError_t cudaDeviceSynchronize(void) {
  if (const cudaError_t e = need_device()) return e;
  if (sync_forbidden()) return capture_violation();
  for (auto& s : all_streams()) synchronize(s);
  return sticky() ? ret(sticky()) : cudaSuccess;
}

// ---- Capture and graphs ----
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  auto s = stream_of(stream);
  if (!s) return ret(cudaErrorInvalidResourceHandle);
  if (s->legacy) return ret(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot be captured
  std::lock_guard<std::mutex> lock(s->m);
  if (s->capture) return ret(cudaErrorIllegalState);
  s->capture = new CUgraph_st;
  s->capture_mode = mode;
  s->capture_invalidated = false;
  if (mode == cudaStreamCaptureModeGlobal) g_global_captures.fetch_add(1);
  if (mode != cudaStreamCaptureModeRelaxed) ++tl_capturing;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  auto s = stream_of(stream);
  if (!s) return ret(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::mutex> lock(s->m);
  if (!s->capture) return ret(cudaErrorIllegalState);
  if (s->capture_mode == cudaStreamCaptureModeGlobal) g_global_captures.fetch_sub(1);
  if (s->capture_mode != cudaStreamCaptureModeRelaxed) --tl_capturing;
  CUgraph_st* g = s->capture;
  s->capture = nullptr;
  if (s->capture_invalidated) {
    delete g;
    *graph = nullptr;
    return ret(cudaErrorStreamCaptureInvalidated);
  }
  *graph = g;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  auto s = stream_of(stream);
  if (!s) return ret(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::mutex> lock(s->m);
  *status = !s->capture ? cudaStreamCaptureStatusNone
            : s->capture_invalidated ? cudaStreamCaptureStatusInvalidated
                                     : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long /*flags*/) {
  if (!graph) return ret(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return ret(cudaErrorInvalidValue);
  // The nodes were captured from one stream, in order: they replay in that order.
  return submit(stream, [nodes = exec->nodes] {
    for (const auto& node : nodes) node();
  });
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

// ---- Events ----
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (const cudaError_t e = need_device()) return e;
  *event = new CUevent_st;
  (*event)->flags = flags;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return ret(cudaErrorInvalidResourceHandle);
  auto s = stream_of(stream);
  if (!s) return ret(cudaErrorInvalidResourceHandle);
  {
    std::lock_guard<std::mutex> lock(s->m);
    if (s->capture) return cudaSuccess;  // an event node: nothing the replay needs here
  }
  event->when_ns.store(0);
  CUevent_st* e = event;
  event->seq = enqueue_on(s, [e] {
    e->when_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
  });
  event->stream = s;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!event) return ret(cudaErrorInvalidResourceHandle);
  if (event->stream) event->stream->wait_for(event->seq);
  return sticky() ? ret(sticky()) : cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start || !end) return ret(cudaErrorInvalidResourceHandle);
  if ((start->flags | end->flags) & cudaEventDisableTiming) return ret(cudaErrorInvalidResourceHandle);
  const int64_t a = start->when_ns.load(), b = end->when_ns.load();
  if (a == 0 || b == 0) return ret(cudaErrorNotReady);
  *ms = float(double(b - a) * 1e-6);
  return cudaSuccess;
}

// ---- Kernels' attributes and occupancy ----
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (const cudaError_t e = need_device()) return e;
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || std::size_t(value) > profile().smem_per_block_optin) return ret(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> lock(g_func_mutex);
    g_func_max_dynamic_smem[func] = value;
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  return ret(cudaErrorInvalidValue);
}

// Blocks per SM as threads and shared memory allow (registers are not
// modelled: the emulation cannot know them; 1 KB of shared memory per block
// is reserved, as on sm_80 and later).
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* func, int block_size,
                                                          size_t dynamic_smem) {
  if (const cudaError_t e = need_device()) return e;
  const Profile& p = profile();
  if (block_size <= 0 || block_size > 1024) return ret(cudaErrorInvalidValue);
  if (dynamic_smem > std::size_t(max_dynamic_smem(func))) {
    *blocks = 0;
    return cudaSuccess;
  }
  const int warps = (block_size + 31) / 32;
  const int by_threads = p.max_threads_per_sm / (warps * 32);
  const int by_smem = int(p.smem_per_sm / (dynamic_smem + 1024));
  *blocks = std::max(0, std::min({by_threads, by_smem, 32}));
  return cudaSuccess;
}

}  // extern "C"
