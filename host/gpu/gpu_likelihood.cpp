#include "host/gpu/gpu_likelihood.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"
#include "ddpm/nvtx.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/cpu/mlp.hpp"
#include "host/gpu/device_memory.hpp"
#include "host/gpu/sampler_tables.hpp"
#include "kernels/likelihood.hpp"

namespace ddpm::gpu {

namespace {

// A device buffer that a later table may outgrow (DeviceAllocations frees only at the end).
template <class T>
struct Regrowable {
  T* p = nullptr;
  std::size_t capacity = 0;
  ~Regrowable() {
    if (p) cudaFree(p);
  }
  T* fit(std::size_t count, const std::string& what) {
    if (count > capacity) {
      if (p) DDPM_CUDA_CHECK(cudaFree(p));  // synchronizes: no kernel still reads it
      p = nullptr;
      capacity = 0;
      p = device_alloc<T>(count, what);
      capacity = count;
    }
    return p;
  }
};

bool same_stages(const std::vector<OdeStage>& a, const std::vector<OdeStage>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const OdeStage& x, const OdeStage& y) {
    return x.tau == y.tau && x.x_scale == y.x_scale && x.in_coef == y.in_coef && x.out_coef == y.out_coef &&
           x.ends_step == y.ends_step;
  });
}

bool same_terms(const std::vector<VlbTerm>& a, const std::vector<VlbTerm>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const VlbTerm& x, const VlbTerm& y) {
    return x.forward.sqrt_alpha_bar == y.forward.sqrt_alpha_bar &&
           x.forward.sqrt_one_minus_alpha_bar == y.forward.sqrt_one_minus_alpha_bar && x.weight == y.weight;
  });
}

}  // namespace

struct GpuLikelihood::Device {
  DeviceAllocations mem;
  std::vector<float> params;  // the host's copy: the ODE's time terms are computed per table
  ModelConfig model;
  int T = 0;
  kernels::FusedSamplerNet net{};  // e1: the bound's time terms of t = 0..T
  int64_t chunk = 0;
  int vlb_grid = 0, ode_grid = 0;
  cudaStream_t stream = nullptr;
  // The tables of the last call, and their device copies.
  std::vector<VlbTerm> terms;
  VlbTerm* terms_dev = nullptr;
  std::vector<OdeStage> stages;
  Regrowable<OdeStage> stages_dev;
  Regrowable<float> stage_terms_dev;  // [stages][128]
  // Double buffers: x0 in, results out (3 floats a point: the ODE's; the bound's 2 fit).
  float* in[2] = {nullptr, nullptr};
  float* out[2] = {nullptr, nullptr};
  float* host_in[2] = {nullptr, nullptr};  // pinned
  float* host_out[2] = {nullptr, nullptr};
  cudaEvent_t ready[2] = {nullptr, nullptr};

  ~Device() {
    for (int b = 0; b < 2; ++b) {
      if (host_in[b]) cudaFreeHost(host_in[b]);
      if (host_out[b]) cudaFreeHost(host_out[b]);
      if (ready[b]) cudaEventDestroy(ready[b]);
    }
    if (stream) cudaStreamDestroy(stream);
  }

  // Points [0, count) of x0 in chunks: launch(done, len, x0 on the device, out
  // on the device) for each, the results (per floats a point) copied to
  // result. Chunk k + 1 computes while chunk k is copied to the caller.
  template <class Launch>
  void run_chunks(int64_t count, const float* x0, int per, float* result, Launch&& launch) {
    struct Pending {
      int buffer;
      int64_t done, len;
    };
    auto hand_over = [&](const Pending& p) {
      DDPM_CUDA_CHECK(cudaEventSynchronize(ready[p.buffer]));  // also: host_in[b] may be refilled
      std::memcpy(result + per * p.done, host_out[p.buffer], std::size_t(per) * p.len * sizeof(float));
    };
    bool pending = false;
    Pending last{};
    for (int64_t done = 0, k = 0; done < count; ++k) {
      const int b = int(k % 2);
      const int64_t len = std::min(chunk, count - done);
      // Buffer b last held chunk k - 2, handed over (its event waited for) in the last iteration.
      std::memcpy(host_in[b], x0 + 2 * done, 2 * std::size_t(len) * sizeof(float));
      DDPM_CUDA_CHECK(
          cudaMemcpyAsync(in[b], host_in[b], 2 * std::size_t(len) * sizeof(float), cudaMemcpyHostToDevice, stream));
      launch(done, len, in[b], out[b]);
      DDPM_CUDA_CHECK(cudaMemcpyAsync(host_out[b], out[b], std::size_t(per) * len * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream));
      DDPM_CUDA_CHECK(cudaEventRecord(ready[b], stream));
      if (pending) hand_over(last);  // chunk k - 1, while chunk k computes
      last = {b, done, len};
      pending = true;
      done += len;
    }
    if (pending) hand_over(last);
  }
};

GpuLikelihood::GpuLikelihood(const float* params, const Schedule& sched, const ModelConfig& model, int64_t chunk)
    : d_(std::make_unique<Device>()) {
  NvtxRange range("GpuLikelihood::upload");
  if (chunk < 1) throw Error("GpuLikelihood: chunk " + std::to_string(chunk) + " < 1");
  cpu::validate_model(model);
  Device& d = *d_;
  d.params.assign(params, params + model.net().param_count);
  d.model = model;
  d.T = sched.T;
  d.chunk = chunk;
  // Throws if this GPU cannot run them.
  d.vlb_grid = kernels::likelihood_max_grid(kernels::LikelihoodKernel::kVlb);
  d.ode_grid = kernels::likelihood_max_grid(kernels::LikelihoodKernel::kOde);
  // The fused sampler's tables: its transposed weights and layer 0's time terms of t = 0..T.
  const SamplerTables t(params, sched, SamplerConfig{}, model);
  DDPM_CUDA_CHECK(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking));
  auto keep = [&](const auto& host) { return d.mem.upload(host, "the likelihood's weights", d.stream); };
  d.net = {keep(t.w0c0), keep(t.w0c1), keep(t.e1),
           keep(t.wt1),  keep(t.b1),   keep(t.wt2),
           keep(t.b2),   keep(t.w3),   keep(t.b3),
           nullptr,      0,            t.wt0x.empty() ? nullptr : keep(t.wt0x),
           t.x_scale,    t.x_freq};
  d.terms_dev = d.mem.alloc<VlbTerm>(std::size_t(sched.T) + 1, "the bound's table");
  const std::string what = "a chunk of " + std::to_string(chunk) + " points";
  for (int b = 0; b < 2; ++b) {
    d.in[b] = d.mem.alloc<float>(2 * std::size_t(chunk), what, "try a smaller chunk");
    d.out[b] = d.mem.alloc<float>(3 * std::size_t(chunk), what, "try a smaller chunk");
    DDPM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&d.host_in[b]), 2 * std::size_t(chunk) * sizeof(float)));
    DDPM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&d.host_out[b]), 3 * std::size_t(chunk) * sizeof(float)));
    DDPM_CUDA_CHECK(cudaEventCreateWithFlags(&d.ready[b], cudaEventDisableTiming));
  }
}

GpuLikelihood::~GpuLikelihood() = default;

void GpuLikelihood::vlb_sums(const VlbTable& table, uint64_t seed, int64_t first, int64_t count, const float* x0,
                             VlbSums* out) {
  NvtxRange range("GpuLikelihood::vlb_sums");
  if (first < 0 || count < 0) throw Error("likelihood: negative range");
  Device& d = *d_;
  if (int(table.terms.size()) != d.T + 1) throw Error("likelihood: the bound's table is not the schedule's");
  if (!same_terms(table.terms, d.terms)) {
    // On the stream, after every earlier kernel that read the old table.
    DDPM_CUDA_CHECK(cudaMemcpyAsync(d.terms_dev, table.terms.data(), table.terms.size() * sizeof(VlbTerm),
                                    cudaMemcpyHostToDevice, d.stream));
    DDPM_CUDA_CHECK(cudaStreamSynchronize(d.stream));  // the host copy may go once this returns
    d.terms = table.terms;
  }
  const kernels::VlbNet net{d.net, d.terms_dev, d.T};
  static_assert(sizeof(VlbSums) == 2 * sizeof(float));
  d.run_chunks(count, x0, 2, reinterpret_cast<float*>(out),
               [&](int64_t done, int64_t len, const float* in, float* result) {
                 const int grid =
                     std::min(d.vlb_grid, kernels::likelihood_blocks_for(kernels::LikelihoodKernel::kVlb, len));
                 kernels::launch_vlb_sums(net, seed, first + done, len, in, reinterpret_cast<VlbSums*>(result), grid,
                                          d.stream);
               });
}

void GpuLikelihood::ode_end_states(const OdeTable& table, int64_t count, const float* x0, float* out) {
  NvtxRange range("GpuLikelihood::ode_end_states");
  if (count < 0) throw Error("likelihood: negative range");
  Device& d = *d_;
  if (!same_stages(table.stages, d.stages) || d.stages_dev.p == nullptr) {
    const std::size_t stages = table.stages.size();
    std::vector<float> e = cpu::ode_time_terms(d.model.net(), d.params.data(), table);
    e.resize(std::max<std::size_t>(stages, 1) * kHidden);  // a device buffer even for an empty table
    DDPM_CUDA_CHECK(cudaStreamSynchronize(d.stream));  // no kernel still reads the old tables
    OdeStage* stages_dev = d.stages_dev.fit(std::max<std::size_t>(stages, 1), "the ODE's table");
    float* terms_dev = d.stage_terms_dev.fit(e.size(), "the ODE's time terms");
    DDPM_CUDA_CHECK(
        cudaMemcpyAsync(stages_dev, table.stages.data(), stages * sizeof(OdeStage), cudaMemcpyHostToDevice, d.stream));
    DDPM_CUDA_CHECK(cudaMemcpyAsync(terms_dev, e.data(), e.size() * sizeof(float), cudaMemcpyHostToDevice, d.stream));
    DDPM_CUDA_CHECK(cudaStreamSynchronize(d.stream));  // e goes when this returns
    d.stages = table.stages;
  }
  kernels::OdeNet net{d.net, d.stages_dev.p, int(table.stages.size())};
  net.net.e1 = d.stage_terms_dev.p;
  d.run_chunks(count, x0, 3, out, [&](int64_t, int64_t len, const float* in, float* result) {
    const int grid = std::min(d.ode_grid, kernels::likelihood_blocks_for(kernels::LikelihoodKernel::kOde, len));
    kernels::launch_ode_end_states(net, len, in, result, grid, d.stream);
  });
}

}  // namespace ddpm::gpu
