// SampleStats on the GPU: the Thrust algorithms of sample_stats_impl.hpp under
// thrust::cuda::par on the caller's stream, over cudaMalloc'd scratch.
#if defined(DDPM_EMULATION)
#include <thrust/system/cpp/execution_policy.h>
#else
#include <thrust/system/cuda/execution_policy.h>
#endif
#include <thrust/system_error.h>

#include <new>
#include <string>
#include <utility>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"
#include "ddpm/nvtx.hpp"
#include "host/gpu/device_memory.hpp"
#include "host/gpu/sample_stats.hpp"
#include "host/gpu/sample_stats_impl.hpp"

namespace ddpm::gpu {
namespace {

struct CudaBackend {
  template <class T>
  class Buffer {
   public:
    Buffer() = default;
    explicit Buffer(std::size_t count) : p_(device_alloc<T>(count, "sample statistics", "try a smaller --chunk")) {}
    ~Buffer() {
      if (p_) cudaFree(p_);  // nothing to report from a destructor
    }
    Buffer(Buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Buffer& operator=(Buffer&& o) noexcept {
      std::swap(p_, o.p_);
      return *this;
    }
    T* data() { return p_; }
    const T* data() const { return p_; }

   private:
    T* p_ = nullptr;
  };

  cudaStream_t stream;

#if defined(DDPM_EMULATION)
  // The emulated device (tests/emu/device) runs Thrust on the host: after the stream's earlier work.
  auto policy() const {
    DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
    return thrust::cpp::par;
  }
#else
  auto policy() const { return thrust::cuda::par.on(stream); }
#endif
  void finish() const { DDPM_CUDA_CHECK(cudaStreamSynchronize(stream)); }
  // On the legacy default stream, then waited for: ordered before any stream's later work.
  static void zero(void* p, std::size_t bytes) {
    DDPM_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, nullptr));
    DDPM_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  }
  // add() has waited for its stream, so the counts are final.
  static void download(void* host, const void* p, std::size_t bytes) {
    DDPM_CUDA_CHECK(cudaMemcpy(host, p, bytes, cudaMemcpyDeviceToHost));
  }
};

}  // namespace

struct SampleStats::State {
  State(int bins, const plot::DensityWindow& window) : acc(bins, window) {}
  detail::StatsAccumulator<CudaBackend> acc;
};

SampleStats::SampleStats(int bins, double x0, double x1, double y0, double y1)
    : SampleStats(bins, plot::DensityWindow{x0, x1, y0, y1}) {}

SampleStats::SampleStats(int bins, const plot::DensityWindow& window) {
  NvtxRange range("SampleStats::SampleStats");
  s_ = std::make_unique<State>(bins, window);
}

SampleStats::~SampleStats() = default;

void SampleStats::add(const float* device_xy, int64_t n, cudaStream_t stream) {
  NvtxRange range("SampleStats::add");
  // Thrust reports CUDA failures, its own allocations' included, by its exceptions.
  try {
    s_->acc.add(device_xy, n, CudaBackend{stream});
  } catch (const thrust::system_error& e) {
    throw Error(std::string("sample statistics on the GPU: ") + e.what());
  } catch (const std::bad_alloc&) {
    throw Error("out of GPU memory: sample statistics of a chunk of " + std::to_string(n) + " points");
  }
}

SampleMoments SampleStats::moments() const { return s_->acc.moments(); }

plot::DensityGrid SampleStats::histogram() const {
  NvtxRange range("SampleStats::histogram");
  return s_->acc.histogram();
}

}  // namespace ddpm::gpu
