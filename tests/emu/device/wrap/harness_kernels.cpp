// tests/emu/selftest/harness_kernels.cu, the harness's test kernels and their launchers, compiled by the
// host compiler for the emulated device: test_emu_gpu_twin_emu, the device kit's rehearsal of the GPU twins.
#include "selftest/harness_kernels.cu"
