// The cuBLAS calls the project makes, on the emulated device: GEMMs run on
// the handle's stream, in its order, as plain loops (column-major, as cuBLAS).
// FP32 products accumulate in double and round once (cuBLAS's own order is
// unspecified: compare with tolerances); TF32 math rounds A and B to TF32
// first, as the tensor cores do; BF16 inputs convert exactly.
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "emu_device.hpp"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

std::atomic<int> g_last_math{-1};

// TF32: 10 explicit mantissa bits, rounded to nearest (ties away, as cvt.rna.tf32.f32).
float to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&x, &u, 4);
  return x;
}

float load(const void* p, cudaDataType type, std::size_t i) {
  if (type == CUDA_R_16BF) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

// C = alpha op(A) op(B) + beta C, column-major, on the handle's stream.
cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                    const float* alpha, const void* a, cudaDataType atype, int lda, const void* b, cudaDataType btype,
                    int ldb, const float* beta, float* c, int ldc, bool tf32) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0 || ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k) || ldb < std::max(1, tb == CUBLAS_OP_N ? k : n))
    return CUBLAS_STATUS_INVALID_VALUE;
  const float al = *alpha, be = *beta;  // host pointer mode: read at the call
  const int math = int(h->math) | (tf32 ? int(CUBLAS_TF32_TENSOR_OP_MATH) : 0);
  emu::device::detail::enqueue(h->stream, [=] {
    g_last_math.store(math);
    auto at = [&](int i, int l) { return ta == CUBLAS_OP_N ? std::size_t(l) * lda + i : std::size_t(i) * lda + l; };
    auto bt = [&](int l, int j) { return tb == CUBLAS_OP_N ? std::size_t(j) * ldb + l : std::size_t(l) * ldb + j; };
    const bool round = tf32 || (h->math & CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_TF32_TENSOR_OP_MATH;
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < m; ++i) {
        double sum = 0;
        for (int l = 0; l < k; ++l) {
          float x = load(a, atype, at(i, l)), y = load(b, btype, bt(l, j));
          if (round) x = to_tf32(x), y = to_tf32(y);
          sum += double(x) * double(y);
        }
        float& out = c[std::size_t(j) * ldc + i];
        out = float(al * sum + (be == 0.f ? 0.0 : double(be) * out));  // beta 0: C is not read (may be NaN)
      }
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

namespace emu::device {
int last_gemm_math_mode() { return g_last_math.load(); }
}  // namespace emu::device

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                              const float* beta, float* C, int ldc) {
  return gemm(handle, transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, beta, C, ldc, false);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t /*algo*/) {
  const bool types_ok = (Atype == CUDA_R_32F || Atype == CUDA_R_16BF) && Btype == Atype && Ctype == CUDA_R_32F;
  const bool compute_ok = computeType == CUBLAS_COMPUTE_32F || computeType == CUBLAS_COMPUTE_32F_FAST_TF32 ||
                          computeType == CUBLAS_COMPUTE_32F_PEDANTIC;
  if (!types_ok || !compute_ok) return CUBLAS_STATUS_NOT_SUPPORTED;  // only what the project calls
  return gemm(handle, transa, transb, m, n, k, static_cast<const float*>(alpha), A, Atype, lda, B, Btype, ldb,
              static_cast<const float*>(beta), static_cast<float*>(C), ldc,
              computeType == CUBLAS_COMPUTE_32F_FAST_TF32);
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_INTERNAL_ERROR";
  }
}
const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "an internal operation failed";
  }
}

}  // extern "C"
