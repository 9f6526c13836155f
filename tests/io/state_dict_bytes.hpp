// A state dict's safetensors file as safetensors' own writer lays it out
// (safetensors.numpy.save_file, safetensors.torch.save_file), built here
// without either, so that loading what PyTorch users write is tested on every
// run, and the writer's own files are compared with these bytes where Python
// has the package.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "ddpm/params.hpp"

namespace ddpm::test_state_dict {

using Metadata = std::vector<std::pair<std::string, std::string>>;

// The eight net.* tensors of `flat` (layout of ddpm/params.hpp): an 8-byte
// little-endian header length; the header, compact JSON, "__metadata__" first
// (when there is any, its keys in the given order) and then the tensors sorted
// by name, {"dtype":"F32","shape":[...],"data_offsets":[begin,end]}, padded with
// spaces to a multiple of 8 bytes; the tensors' float32 data in the same order.
// Strings are written as they are: no quotes, backslashes or control characters.
inline std::string state_dict_bytes(const std::vector<float>& flat, const Metadata& metadata) {
  struct Entry {
    std::string name, shape;
    std::size_t offset, count;
  };
  std::vector<Entry> entries;
  for (const LayerShape& l : kLayers) {
    entries.push_back({l.weight_name, std::to_string(l.out) + "," + std::to_string(l.in), l.weight,
                       std::size_t(l.out) * std::size_t(l.in)});
    entries.push_back({l.bias_name, std::to_string(l.out), l.bias, std::size_t(l.out)});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (std::size_t i = 0; i < metadata.size(); ++i)
      header += (i ? ",\"" : "\"") + metadata[i].first + "\":\"" + metadata[i].second + "\"";
    header += "},";
  }
  std::string data;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const std::size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(flat.data() + e.offset), e.count * sizeof(float));
    header += (i ? ",\"" : "\"") + e.name + "\":{\"dtype\":\"F32\",\"shape\":[" + e.shape + "],\"data_offsets\":[" +
              std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  for (int k = 0; k < 8; ++k) bytes[std::size_t(k)] = char((n >> (8 * k)) & 0xff);
  return bytes + header + data;
}

}  // namespace ddpm::test_state_dict
