// kernels/sample_unfused.cu, its launchers and kernels, compiled by the host compiler for the emulated device.
#include "kernels/sample_unfused.cu"
