// Compiled (and expected to fail) by the EmuHarness.unsupported_feature_fails_to_compile
// test: a kernel using a primitive the emulation lacks must be stopped at
// compile time with a message that names it.
__global__ void legacy_warp_sum(float* out) {
  float v = out[threadIdx.x];
  v += __shfl_down(v, 1);  // pre-Volta form without a mask
  out[threadIdx.x] = v;
}
