// cuBLAS opened at run time (dlopen), not linked: a binary that only sometimes
// multiplies on cuBLAS (ddpm_bench's GEMM ceilings and unfused rows, the
// unfused sampler) then starts, and runs everything else, on a machine where
// libcublas.so.13 is missing; only what needs cuBLAS stops, saying why.
//
// The emulated device's builds (DDPM_CUBLAS_LINKED, tests/emu/device) link
// their CPU cuBLAS instead: process_cublas() hands out its functions directly.
#pragma once

#include <cublas_v2.h>

#include <string>

namespace ddpm::gpu {

// The cuBLAS 13 library opened by name, so that the dynamic loader's search
// (LD_LIBRARY_PATH, ldconfig) finds whichever the machine has: a toolkit's
// lib64, PyTorch's site-packages/nvidia/cu13/lib.
inline constexpr const char* kCublasLibrary = "libcublas.so.13";

// The cuBLAS functions the project calls (by their exported names, which the
// header's macros map cublasCreate, cublasSgemm, ... to).
struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  // cublasGemmEx is overloaded in C++ (an inline wrapper takes the old cudaDataType
  // compute type): this is the exported one.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

// Opens `library` and looks up every function of CublasApi. Returns "" and
// fills `api` when all are found; otherwise leaves `api` alone and returns one
// line naming the library and dlerror()'s words. A loaded library stays open
// for the life of the process (cuBLAS is never unloaded).
std::string load_cublas(CublasApi& api, const char* library = kCublasLibrary);

// The process's cuBLAS, loaded once, on first use (thread-safe): the API, or
// why it could not be loaded.
struct CublasLoad {
  CublasApi api;
  std::string missing;  // "" when api is usable
};
const CublasLoad& process_cublas();

// Why cuBLAS cannot be used here ("" when it can): for a caller that skips
// what needs it rather than failing (ddpm_bench).
inline const std::string& cublas_missing() { return process_cublas().missing; }

// The process's cuBLAS; throws ddpm::Error with the reason where it cannot be loaded.
const CublasApi& cublas();

// Throws ddpm::Error naming `call` and cuBLAS's name and words for `status`
// unless it is CUBLAS_STATUS_SUCCESS (cuBLAS's counterpart of DDPM_CUDA_CHECK).
void cublas_check(cublasStatus_t status, const char* call);

}  // namespace ddpm::gpu
