// Warp-level tensor-core products, the only way kernels of this project issue
// mma.sync. Each wrapper takes the calling lane's fragment registers exactly as
// the PTX ISA documents them ("Matrix Fragments for mma.m16n8k8 / m16n8k16"),
// so a kernel fills them with the documented lane mapping:
//
//   groupID = lane >> 2, tig = lane % 4 (threadID_in_group)
//
//   m16n8k8, .tf32 (one element per 32-bit register, A 16x8 row-major, B 8x8 col):
//     A: a0 (g, tig)   a1 (g+8, tig)   a2 (g, tig+4)   a3 (g+8, tig+4)
//     B: b0 (tig, g)   b1 (tig+4, g)
//   m16n8k16, .bf16 (two elements per register, the lower index in the low half):
//     A: a0 = (g, 2tig | 2tig+1)    a1 = (g+8, 2tig | 2tig+1)
//        a2 = (g, 2tig+8 | 2tig+9)  a3 = (g+8, 2tig+8 | 2tig+9)
//     B: b0 = (2tig | 2tig+1, g)    b1 = (2tig+8 | 2tig+9, g)
//   C and D, both shapes, f32:  c0 (g, 2tig)  c1 (g, 2tig+1)  c2 (g+8, 2tig)  c3 (g+8, 2tig+1)
//
// D = A * B + C; d may be the same array as c. All 32 lanes of the warp must
// call the wrapper together (the instructions are .aligned).
//
// Under nvcc the wrappers are the PTX instructions (sm_80 and later). In the
// host emulation of the tests (DDPM_EMULATION) they gather the 32 lanes'
// fragments, place every element where the layout above says it lives,
// multiply, and hand each lane back its part of D, so a kernel that fills its
// fragments with a wrong lane mapping computes a wrong product there too.
// These wrappers and ddpm::dynamic_smem (ddpm/smem.hpp) are the only places
// where device code differs between the GPU and the emulation.
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define DDPM_MMA_FN __device__ __forceinline__
#elif defined(DDPM_EMULATION)
#if !defined(DDPM_CUDA_EMU_HPP)
#error "DDPM_EMULATION is defined but tests/emu/cuda_emu.hpp was not included first"
#endif
#define DDPM_MMA_FN inline
#endif

namespace ddpm {

// Row and column of one fragment element, as the PTX ISA computes them. For
// kernels that load fragments in loops; `i` numbers the elements from low to
// high (for .bf16, two per register).
struct MmaCoord {
  int row;
  int col;
};

namespace mma_layout {

constexpr MmaCoord a_m16n8k8_tf32(int lane, int i) {
  return {(lane >> 2) + ((i & 1) ? 8 : 0), (lane & 3) + ((i & 2) ? 4 : 0)};
}
constexpr MmaCoord b_m16n8k8_tf32(int lane, int i) { return {(lane & 3) + (i ? 4 : 0), lane >> 2}; }
constexpr MmaCoord a_m16n8k16_bf16(int lane, int i) {
  const bool low_rows = (i < 2) || (i >= 4 && i < 6);
  return {(lane >> 2) + (low_rows ? 0 : 8), (lane & 3) * 2 + (i & 1) + (i >= 4 ? 8 : 0)};
}
constexpr MmaCoord b_m16n8k16_bf16(int lane, int i) {
  return {(lane & 3) * 2 + (i & 1) + (i >= 2 ? 8 : 0), lane >> 2};
}
constexpr MmaCoord cd_m16n8(int lane, int i) {
  return {(lane >> 2) + (i >= 2 ? 8 : 0), (lane & 3) * 2 + (i & 1)};
}

}  // namespace mma_layout

#if defined(DDPM_MMA_FN)

// fp32 -> tf32 as cvt.rna.tf32.f32 does it: round to nearest, ties away from
// zero, into the upper 19 bits (the lower 13 are zero).
DDPM_MMA_FN uint32_t to_tf32(float x) {
#if defined(__CUDA_ARCH__)
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) != 0x7f800000u) {  // finite: round the magnitude
    u += 0x1000u;
  }
  return u & 0xffffe000u;
#endif
}

// Two floats rounded to bf16 (nearest even) in one register, `lo` in the low half.
DDPM_MMA_FN uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

#if defined(DDPM_EMULATION) && !defined(__CUDACC__)
namespace mma_emu {

struct Fragments {
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
};
struct Result {
  float d[4];
};

inline float tf32_value(uint32_t bits) {
  bits &= 0xffffe000u;  // the tensor core reads only the tf32 part of the register
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline float bf16_value(uint32_t half_bits) {
  const uint32_t bits = (half_bits & 0xffffu) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// D = A * B + C on the gathered 16xK, Kx8 and 16x8 matrices, then back to the lanes.
template <int K>
inline void multiply_and_scatter(const float (&a)[16][K], const float (&b)[K][8], const float (&c)[16][8],
                                 Result (&out)[32]) {
  float d[16][8];
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 8; ++n) {
      float acc = c[m][n];
      for (int k = 0; k < K; ++k) acc = std::fma(a[m][k], b[k][n], acc);
      d[m][n] = acc;
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    out[lane].d[0] = d[g][2 * t];
    out[lane].d[1] = d[g][2 * t + 1];
    out[lane].d[2] = d[g + 8][2 * t];
    out[lane].d[3] = d[g + 8][2 * t + 1];
  }
}

inline void gather_c(const Fragments (&in)[32], float (&c)[16][8]) {
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    c[g][2 * t] = in[lane].c[0];
    c[g][2 * t + 1] = in[lane].c[1];
    c[g + 8][2 * t] = in[lane].c[2];
    c[g + 8][2 * t + 1] = in[lane].c[3];
  }
}

inline void require_full_warp(const char* op, unsigned lanes) {
  if (lanes != 0xffffffffu) {
    ::emu::fail("%s needs all 32 lanes of the warp, but only lanes 0x%08x take part", op, lanes);
  }
}

inline void m16n8k8_tf32(const Fragments (&in)[32], Result (&out)[32], unsigned lanes) {
  require_full_warp("mma.sync.m16n8k8.tf32", lanes);
  float a[16][8], b[8][8], c[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    a[g][t] = tf32_value(in[lane].a[0]);
    a[g + 8][t] = tf32_value(in[lane].a[1]);
    a[g][t + 4] = tf32_value(in[lane].a[2]);
    a[g + 8][t + 4] = tf32_value(in[lane].a[3]);
    b[t][g] = tf32_value(in[lane].b[0]);
    b[t + 4][g] = tf32_value(in[lane].b[1]);
  }
  gather_c(in, c);
  multiply_and_scatter<8>(a, b, c, out);
}

inline void m16n8k16_bf16(const Fragments (&in)[32], Result (&out)[32], unsigned lanes) {
  require_full_warp("mma.sync.m16n8k16.bf16", lanes);
  float a[16][16], b[16][8], c[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    const Fragments& f = in[lane];
    a[g][2 * t] = bf16_value(f.a[0]);
    a[g][2 * t + 1] = bf16_value(f.a[0] >> 16);
    a[g + 8][2 * t] = bf16_value(f.a[1]);
    a[g + 8][2 * t + 1] = bf16_value(f.a[1] >> 16);
    a[g][2 * t + 8] = bf16_value(f.a[2]);
    a[g][2 * t + 9] = bf16_value(f.a[2] >> 16);
    a[g + 8][2 * t + 8] = bf16_value(f.a[3]);
    a[g + 8][2 * t + 9] = bf16_value(f.a[3] >> 16);
    b[2 * t][g] = bf16_value(f.b[0]);
    b[2 * t + 1][g] = bf16_value(f.b[0] >> 16);
    b[2 * t + 8][g] = bf16_value(f.b[1]);
    b[2 * t + 9][g] = bf16_value(f.b[1] >> 16);
  }
  gather_c(in, c);
  multiply_and_scatter<16>(a, b, c, out);
}

inline Fragments pack(const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
  return Fragments{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}, {c[0], c[1], c[2], c[3]}};
}

}  // namespace mma_emu
#endif  // DDPM_EMULATION

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32: D (16x8) = A (16x8) * B (8x8) + C.
// The a and b registers hold tf32 values (see to_tf32).
DDPM_MMA_FN void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                  const float (&c)[4]) {
#if defined(__CUDA_ARCH__)
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#else
  __trap();  // tf32 tensor cores need sm_80
#endif
#elif defined(DDPM_EMULATION)
  const mma_emu::Result r = ::emu::warp_collective<mma_emu::Fragments, mma_emu::Result>(
      "mma.sync.m16n8k8.tf32", 0xffffffffu, mma_emu::pack(a, b, c), mma_emu::m16n8k8_tf32);
  for (int i = 0; i < 4; ++i) d[i] = r.d[i];
#endif
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: D (16x8) = A (16x16) * B (16x8) + C.
// Each a and b register holds two bf16 values (see pack_bf16x2).
DDPM_MMA_FN void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                   const float (&c)[4]) {
#if defined(__CUDA_ARCH__)
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#else
  __trap();  // bf16 tensor cores need sm_80
#endif
#elif defined(DDPM_EMULATION)
  const mma_emu::Result r = ::emu::warp_collective<mma_emu::Fragments, mma_emu::Result>(
      "mma.sync.m16n8k16.bf16", 0xffffffffu, mma_emu::pack(a, b, c), mma_emu::m16n8k16_bf16);
  for (int i = 0; i < 4; ++i) d[i] = r.d[i];
#endif
}

#endif  // DDPM_MMA_FN

}  // namespace ddpm

#undef DDPM_MMA_FN
