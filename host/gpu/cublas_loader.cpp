#include "host/gpu/cublas_loader.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <type_traits>

#include "ddpm/error.hpp"

namespace ddpm::gpu {

namespace {

// dlerror()'s words on one line, the library named first where they do not name it
// (glibc's do, as "<file>: ...").
std::string dl_reason(const char* library) {
  const char* e = dlerror();
  std::string words = e ? e : "unknown error";
  std::replace(words.begin(), words.end(), '\n', ' ');
  return words.find(library) != std::string::npos ? words : std::string(library) + ": " + words;
}

#if defined(DDPM_CUBLAS_LINKED)
// The emulated device's cuBLAS, linked into the binary (taking the addresses keeps it linked).
CublasApi linked_cublas() {
  return {&cublasCreate_v2, &cublasDestroy_v2, &cublasSetStream_v2,  &cublasSetMathMode,
          &cublasSgemm_v2,  &cublasGemmEx,     &cublasGetStatusName, &cublasGetStatusString};
}
#endif

}  // namespace

std::string load_cublas(CublasApi& api, const char* library) {
  dlerror();  // a stale error must not be taken for this call's
  void* lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return "cannot load cuBLAS: " + dl_reason(library) +
           " (a CUDA toolkit's lib64 or PyTorch's site-packages/nvidia/cu13/lib has it: put that folder on "
           "LD_LIBRARY_PATH)";
  CublasApi found;
  std::string missing;
  auto find = [&](const char* name, auto& fn) {
    if (!missing.empty()) return;
    dlerror();
    if (void* p = dlsym(lib, name))
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    else
      missing = "cannot load cuBLAS: " + dl_reason(library) + " (not cuBLAS 13?)";
  };
  find("cublasCreate_v2", found.create);
  find("cublasDestroy_v2", found.destroy);
  find("cublasSetStream_v2", found.set_stream);
  find("cublasSetMathMode", found.set_math_mode);
  find("cublasSgemm_v2", found.sgemm);
  find("cublasGemmEx", found.gemm_ex);
  find("cublasGetStatusName", found.status_name);
  find("cublasGetStatusString", found.status_string);
  if (!missing.empty()) {
    dlclose(lib);
    return missing;
  }
  api = found;
  return "";
}

const CublasLoad& process_cublas() {
  static const CublasLoad load = [] {
    CublasLoad l;
#if defined(DDPM_CUBLAS_LINKED)
    l.api = linked_cublas();
#else
    l.missing = load_cublas(l.api);
#endif
    return l;
  }();
  return load;
}

const CublasApi& cublas() {
  const CublasLoad& l = process_cublas();
  if (!l.missing.empty()) throw Error(l.missing);
  return l.api;
}

void cublas_check(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const CublasApi& api = cublas();
  throw Error(std::string(call) + " failed: " + api.status_name(status) + " (" + api.status_string(status) + ")");
}

}  // namespace ddpm::gpu
