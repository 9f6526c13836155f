// ddpm_bench's GPU suite: every CUDA kernel of kernels/ through its launcher,
// timed with CUDA events around each call, after warm-up, the median of many
// calls. Before each timed call L2 is flushed (a memset of twice its size,
// outside the events), and each call draws with a new seed, so neither the
// caches nor the inputs flatter. Each kernel is first checked against the CPU
// backend. The ceilings are measured in the same run: a large device-to-device
// copy for bandwidth, cuBLAS SGEMM (FP32) for the matrix rate, and TF32 GEMM
// as the tensor-core rate later precision modes aim at. cuBLAS is opened at
// run time: where it cannot be, the GEMMs are skipped (the reason in the
// compute ceiling's name) and every kernel is timed against the FP32 spec peak.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "bench/suites.hpp"
#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"
#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"
#if defined(DDPM_BENCH_CUBLAS)
#include "host/gpu/cublas_loader.hpp"
#endif
#include "host/cpu/mlp.hpp"
#include "host/gpu/sampler_tables.hpp"
#include "kernels/likelihood.hpp"
#include "kernels/reverse_step.hpp"
#include "kernels/sample_fused.hpp"

namespace ddpm::bench {

namespace {

template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t n) : n_(n) {
    DDPM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host.data()); }
  // A cudaMemcpy from pageable memory may return before the copy lands (on the
  // legacy stream, which the suite's non-blocking stream does not wait for): waited for.
  void upload(const T* host) const {
    DDPM_CUDA_CHECK(cudaMemcpy(p_, host, n_ * sizeof(T), cudaMemcpyHostToDevice));
    DDPM_CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
  }
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    DDPM_CUDA_CHECK(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

// Times one call on `stream` with events; `before` runs first, outside them.
class EventTimer {
 public:
  explicit EventTimer(cudaStream_t s) : s_(s) {
    DDPM_CUDA_CHECK(cudaEventCreate(&a_));
    DDPM_CUDA_CHECK(cudaEventCreate(&b_));
  }
  ~EventTimer() {
    cudaEventDestroy(a_);
    cudaEventDestroy(b_);
  }
  template <class F>
  double time(F&& call) {
    DDPM_CUDA_CHECK(cudaEventRecord(a_, s_));
    call();
    DDPM_CUDA_CHECK(cudaEventRecord(b_, s_));
    DDPM_CUDA_CHECK(cudaEventSynchronize(b_));
    float ms = 0;
    DDPM_CUDA_CHECK(cudaEventElapsedTime(&ms, a_, b_));
    return ms * 1e-3;
  }

 private:
  cudaStream_t s_;
  cudaEvent_t a_{}, b_{};
};

// Evicts L2 between timed calls: writes twice its size (a different nonzero
// byte each time, so nothing can be elided).
class L2Flush {
 public:
  explicit L2Flush(int l2_bytes) : buf_(std::max<std::size_t>(2 * std::size_t(l2_bytes), 1 << 20)) {}
  void operator()(cudaStream_t s, int i) const {
    DDPM_CUDA_CHECK(cudaMemsetAsync(buf_.get(), 0x40 + (i & 0x3f), buf_.size(), s));
  }

 private:
  DeviceArray<unsigned char> buf_;
};

struct Device {
  cudaDeviceProp prop{};
  int sms = 0, clock_khz = 0, l2_bytes = 0;
  double fp32_spec_tflops = 0;  // 128 FP32 lanes per SM (GA10x, Ada, Hopper; GA100 has 64)
};

Device query_device() {
  Device d;
  DDPM_CUDA_CHECK(cudaGetDeviceProperties(&d.prop, 0));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, 0));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&d.clock_khz, cudaDevAttrClockRate, 0));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&d.l2_bytes, cudaDevAttrL2CacheSize, 0));
  d.fp32_spec_tflops = double(d.sms) * d.clock_khz * 1e3 * 128 * 2 / 1e12;
  return d;
}

// Warm-up calls, then timed ones (the bench's policy), each after an L2 flush.
template <class Launch>
std::vector<double> time_gpu(const Options& o, const std::string& name, cudaStream_t s, EventTimer& timer,
                             const L2Flush& flush, Launch&& launch) {
  return repeat(o, name, [&](int i) {
    flush(s, i);
    return timer.time([&] { launch(i); });
  });
}

// ---- Ceilings ----

// A device-to-device copy of up to 1 GiB: read + write bytes over time.
double measure_copy_gbs(const Options& o, cudaStream_t s, EventTimer& timer) {
  std::size_t free_bytes = 0, total = 0;
  DDPM_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  const std::size_t bytes = std::min<std::size_t>(std::size_t(1) << 30, free_bytes / 8) & ~std::size_t(4095);
  DeviceArray<unsigned char> src(bytes), dst(bytes);
  DDPM_CUDA_CHECK(cudaMemsetAsync(src.get(), 0x3f, bytes, s));
  Options p = o;
  p.min_reps = std::max(o.min_reps, 10);
  const std::vector<double> t = repeat(
      p, "ceiling: device-to-device copy",
      [&](int) {
        return timer.time(
            [&] { DDPM_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, s)); });
      },
      "ceiling");
  return 2.0 * double(bytes) / median_of(t) / 1e9;
}

struct GemmRates {
  double fp32 = 0, tf32 = 0, bf16 = 0;  // TFLOP/s; 0: not measured
};

#if defined(DDPM_BENCH_CUBLAS)
using gpu::cublas_check;

// cuBLAS on n x n x n products of random matrices: FP32 (SIMT), TF32 and BF16 (tensor cores, FP32 accumulation).
GemmRates measure_gemm_tflops(const Options& o, cudaStream_t s, EventTimer& timer) {
  std::size_t free_bytes = 0, total = 0;
  DDPM_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  const int n = o.gemm_n > 0                            ? o.gemm_n
                : free_bytes > (std::size_t(3) << 30) ? 8192  // 1.1 TFLOP a product
                                                      : 4096;
  const std::size_t count = std::size_t(n) * n;
  Floats host(count);
  DeviceArray<float> A(count), B(count), C(count);
  fill_random(host.data(), count, 101);
  A.upload(host.data());
  fill_random(host.data(), count, 102);
  B.upload(host.data());
  const gpu::CublasApi& blas = gpu::cublas();
  cublasHandle_t h = nullptr;
  cublas_check(blas.create(&h), "cublasCreate");
  struct Destroy {
    const gpu::CublasApi& blas;
    cublasHandle_t h;
    ~Destroy() { blas.destroy(h); }
  } destroy{blas, h};
  cublas_check(blas.set_stream(h, s), "cublasSetStream");
  cublas_check(blas.set_math_mode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  const float one = 1.f, zero = 0.f;
  const double flops = 2.0 * n * double(n) * n;
  Options p = o;
  p.min_reps = std::max(o.min_reps, 5);
  const std::vector<double> fp32 = repeat(
      p, "ceiling: cuBLAS SGEMM",
      [&](int) {
        return timer.time([&] {
          cublas_check(
              blas.sgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A.get(), n, B.get(), n, &zero, C.get(), n),
              "cublasSgemm");
        });
      },
      "ceiling");
  const std::vector<double> tf32 = repeat(
      p, "ceiling: cuBLAS TF32 GEMM",
      [&](int) {
        return timer.time([&] {
          cublas_check(
              blas.gemm_ex(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A.get(), CUDA_R_32F, n, B.get(), CUDA_R_32F, n,
                           &zero, C.get(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx (TF32)");
        });
      },
      "ceiling");
  std::vector<__nv_bfloat16> host16(count);
  for (std::size_t i = 0; i < count; ++i) host16[i] = __float2bfloat16_rn(host.data()[i]);
  DeviceArray<__nv_bfloat16> A16(host16), B16(host16);
  const std::vector<double> bf16 = repeat(
      p, "ceiling: cuBLAS BF16 GEMM",
      [&](int) {
        return timer.time([&] {
          cublas_check(
              blas.gemm_ex(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A16.get(), CUDA_R_16BF, n, B16.get(),
                           CUDA_R_16BF, n, &zero, C.get(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx (BF16)");
        });
      },
      "ceiling");
  return {flops / median_of(fp32) / 1e12, flops / median_of(tf32) / 1e12, flops / median_of(bf16) / 1e12};
}
#endif

// ---- Checks against the CPU backend (the tolerances of the GPU twins in tests/kernels) ----

void expect_close(const std::string& what, const std::vector<float>& got, const std::vector<double>& want, double tol) {
  int bad = 0;
  std::string first;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i]))) && bad++ == 0)
      first = "element " + std::to_string(i) + ": " + std::to_string(got[i]) + ", want " + std::to_string(want[i]);
  if (bad)
    throw Error("benchmark check: " + what + " disagrees with the CPU backend in " + std::to_string(bad) +
                " values; first: " + first);
}

// Pair p of a point's stream, drawn sequentially as the CPU sampler draws it.
void sequential_pair(uint64_t seed, uint64_t item, uint64_t p, float& a, float& b) {
  NormalPairs rng{};
  philox_init(&rng.state, seed, Stream::kSample, item);
  for (uint64_t k = 0; k <= p; ++k) rng.next(a, b);
}

Result make_result(const std::string& kernel, int64_t n, double items, const std::string& unit, double flops,
                   double bytes) {
  Result r;
  r.suite = "gpu";
  r.kernel = kernel;
  r.size = n;
  r.items = items;
  r.item_unit = unit;
  r.flops = flops;
  r.bytes = bytes;
  return r;
}

// Pessimistic estimate of one call: 30% of the FP32 spec peak, half the copy bandwidth, plus a launch.
double estimate_seconds(const Result& r, const Device& d, double copy_gbs) {
  return r.flops / (0.3 * d.fp32_spec_tflops * 1e12) + r.bytes / (0.5 * copy_gbs * 1e9) + 1e-5;
}

}  // namespace

GpuSuite run_gpu_kernels(const Options& o) {
  const Device dev = query_device();
  if (dev.prop.major < 8)
    throw Error(std::string(dev.prop.name) + " is sm_" + std::to_string(dev.prop.major) +
                std::to_string(dev.prop.minor) + "; the kernels need sm_80 or later");
  cudaStream_t s = nullptr;
  DDPM_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  struct DestroyStream {
    cudaStream_t s;
    ~DestroyStream() { cudaStreamDestroy(s); }
  } destroy_stream{s};
  EventTimer timer(s);
  const L2Flush flush(dev.l2_bytes);

  GpuSuite suite;
  const double copy_gbs = measure_copy_gbs(o, s, timer);
  suite.ceilings.bandwidth_gbs = copy_gbs;
  suite.ceilings.bandwidth_what = "device-to-device copy, read + write";
  suite.info = {{"name", dev.prop.name},
                {"compute_capability", std::to_string(dev.prop.major) + "." + std::to_string(dev.prop.minor)},
                {"sms", dev.sms},
                {"clock_mhz", dev.clock_khz / 1000},
                {"l2_bytes", dev.l2_bytes},
                {"memory_bytes", double(dev.prop.totalGlobalMem)},
                {"fp32_spec_tflops", dev.fp32_spec_tflops},
                {"copy_gbs", copy_gbs}};
  // The compute ceilings: cuBLAS's GEMMs where it loads; else the FP32 spec peak, saying why.
  GemmRates gemm;
  suite.ceilings.compute_gflops = dev.fp32_spec_tflops * 1e3;
#if defined(DDPM_BENCH_CUBLAS)
  if (const std::string& why = gpu::cublas_missing(); !why.empty()) {
    suite.ceilings.compute_what = "FP32 spec peak (cuBLAS GEMMs skipped: " + why + ")";
    suite.info["cublas_missing"] = why;
  } else {
    gemm = measure_gemm_tflops(o, s, timer);
    suite.info["sgemm_fp32_tflops"] = gemm.fp32;
    suite.info["gemm_tf32_tflops"] = gemm.tf32;
    suite.info["gemm_bf16_tflops"] = gemm.bf16;
    suite.ceilings.compute_gflops = gemm.fp32 * 1e3;
    suite.ceilings.compute_what = "cuBLAS SGEMM; tf32 / bf16 rows: TF32 GEMM " +
                                  std::to_string(int(std::lround(gemm.tf32))) + ", BF16 GEMM " +
                                  std::to_string(int(std::lround(gemm.bf16))) + " TFLOP/s";
  }
#else
  suite.ceilings.compute_what = "FP32 spec peak (built without cuBLAS: no GEMM measured)";
#endif
  // 0 where no GEMM was measured: the row takes the suite's ceiling.
  auto tensor_ceiling = [&](kernels::Precision p) {
    return p == kernels::Precision::kTf32 ? gemm.tf32 * 1e3 : p == kernels::Precision::kBf16 ? gemm.bf16 * 1e3 : 0.0;
  };

  const Schedule sched = Schedule::linear();
  const std::vector<float> params = cpu::init_params(5);
  auto skipped = [&](Result& r) {
    if (const double est = estimate_seconds(r, dev, copy_gbs); est > o.max_run_seconds) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "about %.1f s a call, over --max-run-seconds %.1f", est, o.max_run_seconds);
      r.skipped = buf;
      suite.rows.push_back(r);
      return true;
    }
    return false;
  };

  // x_T ~ N(0, I): one Philox4x32-10 draw and a Box-Muller pair per point, 8 bytes written,
  //   and the solvers' carried 2-vector zeroed, 8 more.
  //   No useful FLOPs; bytes per point 16 -> the floor is the writes, 16 n / bandwidth (3.3 us at 1M
  //   points on an H200), but ~150 integer and transcendental instructions per point
  //   (~5 us at 1M) put the real limit on issue: expect a few % of the bandwidth floor.
  if (const std::string name = "sample_init (x_T draw)"; o.wants(name)) {
    {
      NvtxRange check("check");
      const int64_t n = 700, first = 123456789;
      DeviceArray<float> x(2 * n), carried(2 * n);
      kernels::launch_sample_init(x.get(), carried.get(), n, 17, first, s);
      DDPM_CUDA_CHECK(cudaStreamSynchronize(s));
      std::vector<double> want(2 * n);
      for (int64_t i = 0; i < n; ++i) {
        float a, b;
        sequential_pair(17, uint64_t(first + i), 0, a, b);
        want[2 * i] = a;
        want[2 * i + 1] = b;
      }
      expect_close(name, x.download(), want, 1e-5);
      expect_close(name + " carried", carried.download(), std::vector<double>(2 * n, 0.0), 0.0);
    }
    for (const int64_t n : o.sizes) {
      Result r = make_result(name, n, double(n), "point", 0, 16.0 * n);
      if (skipped(r)) continue;
      DeviceArray<float> x(2 * std::size_t(n)), carried(2 * std::size_t(n));
      r.seconds = time_gpu(o, name + " n=" + std::to_string(n), s, timer, flush, [&](int i) {
        kernels::launch_sample_init(x.get(), carried.get(), n, uint64_t(i) + 1, 0, s);
      });
      suite.rows.push_back(r);
    }
  }

  // One reverse step for n points (the unfused path's update between GEMMs).
  //   FLOPs per point 10 (per coordinate: FMA, multiply, FMA; the Philox draw with its O(1)
  //   skip-ahead is not counted); bytes per point: x and eps read, x written = 24
  //   -> memory-bound: floor 24 n / bandwidth (5 us at 1M points on an H200: the launch
  //   itself, ~2-4 us, is of the same order below ~1M points).
  if (const std::string name = "reverse_step (one step)"; o.wants(name)) {
    const std::vector<SampleStep> steps = sample_steps(sched, {});
    {
      NvtxRange check("check");
      const int64_t n = 600, first = 1000;
      const int t = 317;
      std::vector<float> x(2 * n), eps(2 * n);
      fill_random(x.data(), x.size(), 31);
      fill_random(eps.data(), eps.size(), 32);
      std::vector<double> want(2 * n);
      for (int64_t i = 0; i < n; ++i) {
        float z0, z1;
        sequential_pair(19, uint64_t(first + i), sample_noise_pair(t, sched.T), z0, z1);
        want[2 * i] = reverse_step(x[2 * i], eps[2 * i], z0, sched.reverse[t]);
        want[2 * i + 1] = reverse_step(x[2 * i + 1], eps[2 * i + 1], z1, sched.reverse[t]);
      }
      DeviceArray<float> dx(x), deps(eps), carried(std::vector<float>(2 * n, 0.f));
      kernels::launch_reverse_step(dx.get(), carried.get(), deps.get(), n, steps[sched.T - t], sched.T - t, 19,
                                   first, s);
      DDPM_CUDA_CHECK(cudaStreamSynchronize(s));
      expect_close(name, dx.download(), want, 1e-5);
    }
    for (const int64_t n : o.sizes) {
      Result r = make_result(name, n, double(n), "point", 10.0 * n, 24.0 * n);
      if (skipped(r)) continue;
      std::vector<float> host(2 * std::size_t(n));
      fill_random(host.data(), host.size(), 41);
      DeviceArray<float> x(host);
      fill_random(host.data(), host.size(), 42);
      DeviceArray<float> eps(host);
      DeviceArray<float> carried(2 * std::size_t(n));  // the ancestral update neither reads nor writes it
      // t runs down from T as in a chain (t >= 2: every call draws noise); a new seed each call.
      r.seconds = time_gpu(o, name + " n=" + std::to_string(n), s, timer, flush, [&](int i) {
        const int index = i % (sched.T - 1);
        kernels::launch_reverse_step(x.get(), carried.get(), eps.get(), n, steps[index], index, uint64_t(i) + 1, 0,
                                     s);
      });
      suite.rows.push_back(r);
    }
  }

  // The fused samplers: n points through all T = 500 steps in one persistent kernel.
  //   FLOPs per point-step 66,560 (layer 0's time term hoisted; bench/NOTES.md);
  //   bytes: 8 per point written once (the tables, 130 KB, are read through L1/L2)
  //   -> compute-bound. At 1M points: 3.33e13 FLOP, 0.50 s at the FP32 SIMT peak of
  //   an H200 (fp32), ~67 ms at the TF32 and ~34 ms at the BF16 dense tensor-core peak;
  //   SiLU's 384 activations per point-step cost two MUFU operations each in fp32
  //   (~0.09 s at 1M that FMAs cannot hide) and one tanh.approx in tf32 / bf16 (~46 ms,
  //   which bounds bf16 above its matrix floor). Floor here: FLOPs / the cuBLAS GEMM of
  //   the same precision measured above. Below ~SMs x 128 points the grid does not fill
  //   the GPU: those sizes show a chain's latency.
  for (const kernels::Precision p : {kernels::Precision::kFp32, kernels::Precision::kTf32, kernels::Precision::kBf16}) {
    const std::string name = std::string("sample_fused ") + kernels::name_of(p) + " T=" + std::to_string(sched.T);
    if (!o.wants(name)) continue;
    const gpu::SamplerTables tables(params.data(), sched);
    const DeviceArray<float> w0c0(tables.w0c0), w0c1(tables.w0c1), e1(tables.e1), wt1(tables.wt1), b1(tables.b1),
        wt2(tables.wt2), b2(tables.b2), w3(tables.w3), b3(tables.b3);
    const DeviceArray<SampleStep> steps(tables.steps);
    const kernels::FusedSamplerNet net{w0c0.get(), w0c1.get(), e1.get(), wt1.get(), b1.get(), wt2.get(),
                                       b2.get(),   w3.get(),   b3.get(), steps.get(), int(tables.steps.size())};
    const int max_grid = kernels::fused_max_grid(p);
    auto grid = [&](int64_t n) { return std::min(max_grid, kernels::fused_blocks_for(p, n)); };
    {
      NvtxRange check("check");
      const int64_t n = 2 * kernels::fused_shape(p).points_per_block + 22, first = 5000;  // a partial tile
      DeviceArray<float> out(2 * n);
      kernels::launch_sample_fused(p, net, 23, first, n, out.get(), grid(n), s);
      DDPM_CUDA_CHECK(cudaStreamSynchronize(s));
      std::vector<float> cpu_xy(2 * n);
      cpu::sample(sched, params.data(), 23, first, n, cpu_xy.data());
      const double tol = p == kernels::Precision::kFp32 ? 1e-3 : p == kernels::Precision::kTf32 ? 2e-2 : 1e-1;
      expect_close(name, out.download(), std::vector<double>(cpu_xy.begin(), cpu_xy.end()), tol);
    }
    for (const int64_t n : o.sizes) {
      Result r = make_result(name, n, double(n) * sched.T, "pt-step", 66560.0 * sched.T * n, 8.0 * n);
      r.ceiling_gflops = tensor_ceiling(p);
      if (skipped(r)) continue;
      DeviceArray<float> out(2 * std::size_t(n));
      r.seconds = time_gpu(o, name + " n=" + std::to_string(n), s, timer, flush, [&](int i) {
        kernels::launch_sample_fused(p, net, uint64_t(i) + 1, 0, n, out.get(), grid(n), s);
      });
      suite.rows.push_back(r);
    }
  }

  // The likelihood's kernels (kernels/likelihood.*), fp32, the seed's model, on the same tables.
  //   vlb_sums: T = 500 evaluations a point, each the fused sampler's forward pass (layer 0's
  //   time term hoisted: 2 (2*128 + 2*128*128 + 128*2) = 66,560 FLOPs; 82,944 were the time
  //   term computed per point, 66 inputs) plus q_sample and the weighted error (~12, not
  //   counted); bytes: x_0 read, the two sums written = 16 a point -> compute-bound, the
  //   sampler's floor: 3.33e13 FLOP at 1M points, ~0.5 s at an H200's FP32 SIMT peak.
  //   ode_end_states: RK4, 64 steps = 256 stages a point; a stage is the forward pass and its
  //   two tangents through the same MLP: the hidden layers on three rows, 3 * 2 * 2*128*128 =
  //   196,608; layer 0 2 * 2*128 + the tangents' 2*128 products; the output layer's eps and
  //   the Jacobian's diagonal, 4 * 2*128: 198,400 FLOPs (3.0x the forward pass); bytes 8 read
  //   + 12 written a point -> compute-bound: 5.1e13 FLOP at 1M points, ~0.76 s at that peak.
  {
    const gpu::SamplerTables tables(params.data(), sched);
    const DeviceArray<float> w0c0(tables.w0c0), w0c1(tables.w0c1), e1(tables.e1), wt1(tables.wt1), b1(tables.b1),
        wt2(tables.wt2), b2(tables.b2), w3(tables.w3), b3(tables.b3);
    const kernels::FusedSamplerNet net{w0c0.get(), w0c1.get(), e1.get(), wt1.get(), b1.get(), wt2.get(),
                                       b2.get(),   w3.get(),   b3.get(), nullptr,   0};
    if (const std::string name = "vlb_sums fp32 T=" + std::to_string(sched.T); o.wants(name)) {
      const VlbTable table = vlb_table(sched, Variance::kPosterior);
      const DeviceArray<VlbTerm> terms(table.terms);
      const kernels::VlbNet vlb{net, terms.get(), sched.T};
      const int max_grid = kernels::likelihood_max_grid(kernels::LikelihoodKernel::kVlb);
      auto grid = [&](int64_t n) {
        return std::min(max_grid, kernels::likelihood_blocks_for(kernels::LikelihoodKernel::kVlb, n));
      };
      {
        NvtxRange check("check");
        const int64_t n = 2 * kernels::kVlbShape.points_per_block + 22, first = 5000;  // a partial tile
        std::vector<float> x0(2 * n);
        fill_random(x0.data(), x0.size(), 51);
        const DeviceArray<float> dx0(x0);
        DeviceArray<VlbSums> out(n);
        kernels::launch_vlb_sums(vlb, 29, first, n, dx0.get(), out.get(), grid(n), s);
        DDPM_CUDA_CHECK(cudaStreamSynchronize(s));
        std::vector<VlbSums> cpu_sums(n);
        cpu::vlb_sums(sched, params.data(), table, 29, first, n, x0.data(), cpu_sums.data());
        const std::vector<VlbSums> sums = out.download();
        std::vector<float> got;
        std::vector<double> want;
        for (int64_t i = 0; i < n; ++i) {
          got.insert(got.end(), {sums[i].steps, sums[i].decoder});
          want.insert(want.end(), {cpu_sums[i].steps, cpu_sums[i].decoder});
        }
        expect_close(name, got, want, 1e-3);
      }
      for (const int64_t n : o.sizes) {
        Result r = make_result(name, n, double(n) * sched.T, "pt-step", 66560.0 * sched.T * n, 16.0 * n);
        if (skipped(r)) continue;
        std::vector<float> x0(2 * std::size_t(n));
        fill_random(x0.data(), x0.size(), 52);
        const DeviceArray<float> dx0(x0);
        DeviceArray<VlbSums> out(n);
        r.seconds = time_gpu(o, name + " n=" + std::to_string(n), s, timer, flush, [&](int i) {
          kernels::launch_vlb_sums(vlb, uint64_t(i) + 1, 0, n, dx0.get(), out.get(), grid(n), s);
        });
        suite.rows.push_back(r);
      }
    }
    const int ode_steps = kOdeDefaultSteps;
    if (const std::string name = "ode_end_states fp32 RK4 " + std::to_string(ode_steps) + " steps"; o.wants(name)) {
      const OdeTable table = ode_rk4_table(sched, ode_steps);
      const std::size_t stages = table.stages.size();
      std::vector<float> e(stages * kHidden);
      for (std::size_t k = 0; k < stages; ++k)
        cpu::layer0_time_term(ModelConfig{}.net(), params.data(), table.stages[k].tau, e.data() + k * kHidden);
      const DeviceArray<float> stage_terms(e);
      const DeviceArray<OdeStage> stage_table(table.stages);
      kernels::OdeNet ode{net, stage_table.get(), int(stages)};
      ode.net.e1 = stage_terms.get();
      const int max_grid = kernels::likelihood_max_grid(kernels::LikelihoodKernel::kOde);
      auto grid = [&](int64_t n) {
        return std::min(max_grid, kernels::likelihood_blocks_for(kernels::LikelihoodKernel::kOde, n));
      };
      {
        NvtxRange check("check");
        const int64_t n = 2 * kernels::kOdeShape.points_per_block + 5;  // a partial tile
        std::vector<float> x0(2 * n);
        fill_random(x0.data(), x0.size(), 53);
        const DeviceArray<float> dx0(x0);
        DeviceArray<float> out(3 * n);
        kernels::launch_ode_end_states(ode, n, dx0.get(), out.get(), grid(n), s);
        DDPM_CUDA_CHECK(cudaStreamSynchronize(s));
        std::vector<float> cpu_out(3 * n);
        cpu::ode_end_states(params.data(), table, n, x0.data(), cpu_out.data());
        expect_close(name, out.download(), std::vector<double>(cpu_out.begin(), cpu_out.end()), 1e-3);
      }
      for (const int64_t n : o.sizes) {
        Result r = make_result(name, n, double(n) * double(stages), "pt-stage", 198400.0 * double(stages) * n, 20.0 * n);
        if (skipped(r)) continue;
        std::vector<float> x0(2 * std::size_t(n));
        fill_random(x0.data(), x0.size(), 54);
        const DeviceArray<float> dx0(x0);
        DeviceArray<float> out(3 * std::size_t(n));
        r.seconds = time_gpu(o, name + " n=" + std::to_string(n), s, timer, flush, [&](int) {
          kernels::launch_ode_end_states(ode, n, dx0.get(), out.get(), grid(n), s);
        });
        suite.rows.push_back(r);
      }
    }
  }
  return suite;
}

}  // namespace ddpm::bench
