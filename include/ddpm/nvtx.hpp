// An NVTX range for the lifetime of a scope, so each launcher and host phase
// shows up by name in Nsight Systems and Nsight Compute. Host code only.
#pragma once

#include <nvtx3/nvToolsExt.h>

namespace ddpm {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace ddpm
