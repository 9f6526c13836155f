// kernels/sample_fused.cu, its launchers and kernels, compiled by the host compiler for the emulated device.
#include "kernels/sample_fused.cu"
