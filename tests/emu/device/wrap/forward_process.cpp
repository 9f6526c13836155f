// kernels/forward_process.cu, its launchers and kernels, compiled by the host compiler for the emulated device.
#include "kernels/forward_process.cu"
