#include "host/io/checkpoint.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>
#include <string_view>
#include <system_error>

#include "ddpm/error.hpp"
#include "ddpm/params.hpp"
#include "host/io/safetensors.hpp"

namespace ddpm::io {
namespace {

constexpr const char* kFormatName = "ddpm-cuda";

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string format_float(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", double(v));
  return buf;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Checks the fields a loader relies on; `where` prefixes the message.
void validate_meta(const std::string& where, const CheckpointMeta& m) {
  const auto fail = [&](const std::string& what) { throw Error(where + ": " + what); };
  if (m.format_version != kCheckpointFormatVersion)
    fail("format_version " + std::to_string(m.format_version) + " not supported, expected " +
         std::to_string(kCheckpointFormatVersion));
  if (m.T < 1 || m.T > kMaxT) fail("T = " + std::to_string(m.T) + " is outside 1.." + std::to_string(kMaxT));
  if (!(std::isfinite(m.beta_1) && std::isfinite(m.beta_T) && 0 < m.beta_1 && m.beta_1 <= m.beta_T &&
        m.beta_T < 1))
    fail("betas beta_1 = " + format_double(m.beta_1) + ", beta_T = " + format_double(m.beta_T) +
         " do not satisfy 0 < beta_1 <= beta_T < 1");
  if (m.schedule != "linear") fail("schedule \"" + m.schedule + "\" not supported, expected \"linear\"");
  if (m.emb_dim != kEmbDim)
    fail("emb_dim " + std::to_string(m.emb_dim) + " does not match this build's " + std::to_string(kEmbDim));
  if (m.hidden != kHidden)
    fail("hidden " + std::to_string(m.hidden) + " does not match this build's " + std::to_string(kHidden));
  if (m.steps < 0) fail("steps " + std::to_string(m.steps) + " is negative");
  if (!std::isfinite(m.last_loss)) fail("last_loss is not finite");
}

struct MetaParser {
  const std::string& path;
  const std::map<std::string, std::string>& meta;

  [[noreturn]] void fail(const std::string& what) const { throw Error(path + ": " + what); }

  const std::string& get(const char* key) const {
    const auto it = meta.find(key);
    if (it == meta.end()) fail(std::string("metadata key \"") + key + "\" missing");
    return it->second;
  }

  [[noreturn]] void bad(const char* key, const char* expected) const {
    std::string value = get(key);
    if (value.size() > 60) value = value.substr(0, 60) + "...";
    for (char& c : value)
      if (static_cast<unsigned char>(c) < 0x20) c = '?';
    fail(std::string("metadata ") + key + " = \"" + value + "\" is not " + expected);
  }

  template <class Int>
  Int integer(const char* key) const {
    const std::string& s = get(key);
    Int v{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) bad(key, "an integer in range");
    return v;
  }

  double real(const char* key) const {
    const std::string& s = get(key);
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v))
      bad(key, "a finite number");
    return v;
  }

  float real32(const char* key) const {
    const std::string& s = get(key);
    float v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v))
      bad(key, "a finite float");
    return v;
  }
};

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  if (ckpt.params.size() != kParamCount)
    throw Error(path + ": checkpoint has " + std::to_string(ckpt.params.size()) + " parameters, expected " +
                std::to_string(kParamCount));
  validate_meta(path, ckpt.meta);
  const CheckpointMeta& m = ckpt.meta;
  SafetensorsFile file;
  file.metadata = {
      {"format", kFormatName},
      {"format_version", std::to_string(m.format_version)},
      {"T", std::to_string(m.T)},
      {"beta_1", format_double(m.beta_1)},
      {"beta_T", format_double(m.beta_T)},
      {"schedule", m.schedule},
      {"emb_dim", std::to_string(m.emb_dim)},
      {"hidden", std::to_string(m.hidden)},
      {"steps", std::to_string(m.steps)},
      {"seed", std::to_string(m.seed)},
      {"last_loss", format_float(m.last_loss)},
  };
  for (const LayerShape& l : kLayers) {
    const auto* p = ckpt.params.data();
    const std::size_t w = std::size_t(l.out) * std::size_t(l.in);
    file.tensors.push_back({l.weight_name, {l.out, l.in}, std::vector<float>(p + l.weight, p + l.weight + w)});
    file.tensors.push_back({l.bias_name, {l.out}, std::vector<float>(p + l.bias, p + l.bias + l.out)});
  }
  write_safetensors(path, file);
}

Checkpoint load_checkpoint(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  const auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };

  Checkpoint ckpt;
  ckpt.params.assign(kParamCount, 0.f);
  std::set<std::string> expected;
  const auto take = [&](const char* name, std::vector<int64_t> shape, std::size_t offset) {
    expected.insert(name);
    const Tensor* t = file.find(name);
    if (t == nullptr) fail(std::string("tensor ") + name + " missing");
    if (t->shape != shape)
      fail(std::string("tensor ") + name + " has shape " + shape_string(t->shape) + ", expected " +
           shape_string(shape));
    std::copy(t->data.begin(), t->data.end(), ckpt.params.begin() + std::ptrdiff_t(offset));
  };
  for (const LayerShape& l : kLayers) {
    take(l.weight_name, {l.out, l.in}, l.weight);
    take(l.bias_name, {l.out}, l.bias);
  }
  for (const Tensor& t : file.tensors)
    if (!expected.count(t.name)) {
      std::string name = t.name.substr(0, 80);
      for (char& c : name)
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      fail("unexpected tensor " + name);
    }

  // A file without metadata (e.g. safetensors.torch.save_file(model.state_dict()))
  // gets the defaults of ddpm/config.hpp.
  if (!file.metadata.empty()) {
    const MetaParser mp{path, file.metadata};
    CheckpointMeta& m = ckpt.meta;
    if (mp.get("format") != kFormatName) mp.bad("format", "\"ddpm-cuda\"");
    m.format_version = mp.integer<int>("format_version");
    if (m.format_version != kCheckpointFormatVersion)
      fail("format_version " + std::to_string(m.format_version) + " not supported, expected " +
           std::to_string(kCheckpointFormatVersion));
    m.T = mp.integer<int>("T");
    m.beta_1 = mp.real("beta_1");
    m.beta_T = mp.real("beta_T");
    m.schedule = mp.get("schedule");
    if (m.schedule != "linear") mp.bad("schedule", "\"linear\"");
    m.emb_dim = mp.integer<int>("emb_dim");
    m.hidden = mp.integer<int>("hidden");
    m.steps = mp.integer<int64_t>("steps");
    m.seed = mp.integer<uint64_t>("seed");
    m.last_loss = mp.real32("last_loss");
  }
  validate_meta(path, ckpt.meta);
  return ckpt;
}

}  // namespace ddpm::io
