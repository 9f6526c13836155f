// host/gpu/sample_stats.cu compiled by the host compiler for the emulated device:
// Thrust's algorithms on its CPU system, after the stream's earlier work.
#include "host/gpu/sample_stats.cu"
