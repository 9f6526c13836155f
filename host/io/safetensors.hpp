// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "string", ...}}, then the raw little-endian data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ddpm::io {

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;  // float32, row-major
};

struct SafetensorsFile {
  std::vector<Tensor> tensors;                   // in data-offset order
  std::map<std::string, std::string> metadata;   // "__metadata__"
  const Tensor* find(const std::string& name) const;
};

// Writes atomically (temporary file, fsync, rename). Tensors are laid out in the given order.
void write_safetensors(const std::string& path, const SafetensorsFile& file);

// Reads and validates: header length against the file size, the JSON, every
// dtype (only F32 is accepted as data; other known dtypes are named in the
// error), shapes against byte counts, offsets inside the data section with no
// overlap and no gap, and that every value is finite. Every malformed file is
// a ddpm::Error with one line naming the file and the fault.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace ddpm::io
