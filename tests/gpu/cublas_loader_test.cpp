// cuBLAS opened at run time (host/gpu/cublas_loader.*): where it cannot be
// loaded, one line names the library and the dynamic loader's words, and the
// API is left empty; the toolkit's own libcublas.so.13 (where this machine has
// one) gives every function the project calls, by the names it exports. No GPU
// needed: opening cuBLAS and asking its status names touch no device.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "host/gpu/cublas_loader.hpp"

namespace ddpm::gpu {
namespace {

bool empty(const CublasApi& api) {
  return !api.create && !api.destroy && !api.set_stream && !api.set_math_mode && !api.sgemm && !api.gemm_ex &&
         !api.status_name && !api.status_string;
}

TEST(CublasLoader, AMissingLibraryIsOneLineNamingIt) {
  CublasApi api;
  const std::string why = load_cublas(api, "libddpm_no_such_cublas.so.13");
  EXPECT_NE(why.find("cannot load cuBLAS: libddpm_no_such_cublas.so.13"), std::string::npos) << why;
  EXPECT_NE(why.find("cannot open shared object file"), std::string::npos) << why;  // dlerror()'s words
  EXPECT_NE(why.find("LD_LIBRARY_PATH"), std::string::npos) << why;                 // what to do about it
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  EXPECT_TRUE(empty(api));
}

// A library that opens but is not cuBLAS: the first function it lacks is named, nothing is half-filled.
TEST(CublasLoader, ALibraryWithoutCublasNamesTheMissingFunction) {
  CublasApi api;
  const std::string why = load_cublas(api, "libm.so.6");
  EXPECT_NE(why.find("libm.so.6"), std::string::npos) << why;
  EXPECT_NE(why.find("undefined symbol: cublasCreate_v2"), std::string::npos) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  EXPECT_TRUE(empty(api));
}

TEST(CublasLoader, TheToolkitsCublasHasEveryFunction) {
  const std::string library = DDPM_TOOLKIT_CUBLAS;
  if (!std::filesystem::exists(library)) GTEST_SKIP() << "no " << library << " on this machine";
  CublasApi api;
  const std::string why = load_cublas(api, library.c_str());
  ASSERT_EQ(why, "");
  EXPECT_TRUE(api.create && api.destroy && api.set_stream && api.set_math_mode && api.sgemm && api.gemm_ex &&
              api.status_name && api.status_string);
  EXPECT_STREQ(api.status_name(CUBLAS_STATUS_NOT_SUPPORTED), "CUBLAS_STATUS_NOT_SUPPORTED");
}

}  // namespace
}  // namespace ddpm::gpu
