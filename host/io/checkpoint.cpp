#include "host/io/checkpoint.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <string_view>
#include <system_error>
#include <tuple>

#include "ddpm/error.hpp"
#include "ddpm/params.hpp"
#include "host/io/printable.hpp"
#include "host/io/safetensors.hpp"

namespace ddpm::io {
namespace {

constexpr const char* kFormatName = "ddpm-cuda";
constexpr const char* kRunPrefix = "run.";
// Prefixes of the optional tensor groups, each a full set of net.* names.
constexpr const char* kEmaPrefix = "ema.";
constexpr const char* kAdamMPrefix = "optim.exp_avg.";
constexpr const char* kAdamVPrefix = "optim.exp_avg_sq.";
constexpr const char* kLossesName = "train.losses";
// CheckpointMeta::data_scale's keys, after kRunPrefix: mean[0], mean[1], std[0], std[1].
constexpr const char* kDataScaleKeys[4] = {"data-mean-x", "data-mean-y", "data-std-x", "data-std-y"};

double& scale_field(CheckpointMeta::DataScale& s, int k) { return k < 2 ? s.mean[k] : s.std[k - 2]; }
double scale_field(const CheckpointMeta::DataScale& s, int k) { return k < 2 ? s.mean[k] : s.std[k - 2]; }

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

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
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
  if (m.schedule != "linear" && m.schedule != "cosine")
    fail("schedule \"" + m.schedule + "\" not supported, expected \"linear\" or \"cosine\"");
  if (m.emb_dim != kEmbDim)
    fail("emb_dim " + std::to_string(m.emb_dim) + " does not match this build's " + std::to_string(kEmbDim));
  if (m.hidden != kHidden)
    fail("hidden " + std::to_string(m.hidden) + " does not match this build's " + std::to_string(kHidden));
  if (m.model.x_embedding == XEmbedding::kSinusoidal && !(std::isfinite(m.model.x_scale) && m.model.x_scale > 0))
    fail("x_scale " + format_float(m.model.x_scale) + " is not a positive finite number");
  if (m.steps < 0) fail("steps " + std::to_string(m.steps) + " is negative");
  if (!std::isfinite(m.last_loss)) fail("last_loss is not finite");
  if (m.data_scale) {
    const CheckpointMeta::DataScale& s = *m.data_scale;
    for (int k = 0; k < 4; ++k)
      if (!std::isfinite(scale_field(s, k)) || (k >= 2 && !(scale_field(s, k) > 0)))
        fail(std::string(kRunPrefix) + kDataScaleKeys[k] + " = " + format_double(scale_field(s, k)) + " is not a " +
             (k >= 2 ? "positive " : "") + "finite number");
  }
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
  const NetLayout& net = ckpt.meta.model.net();
  if (ckpt.params.size() != net.param_count)
    throw Error(path + ": checkpoint has " + std::to_string(ckpt.params.size()) + " parameters, expected " +
                std::to_string(net.param_count));
  const auto check_size = [&](const char* what, std::size_t size) {
    if (size != net.param_count)
      throw Error(path + ": " + what + " has " + std::to_string(size) + " values, expected " +
                  std::to_string(net.param_count));
  };
  if (!ckpt.ema.empty()) check_size("the EMA", ckpt.ema.size());
  if (ckpt.training) {
    check_size("Adam's first moment", ckpt.training->adam_m.size());
    check_size("Adam's second moment", ckpt.training->adam_v.size());
    if (int64_t(ckpt.training->losses.size()) != ckpt.meta.steps)
      throw Error(path + ": " + std::to_string(ckpt.training->losses.size()) + " losses for " +
                  std::to_string(ckpt.meta.steps) + " steps");
  }
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
      {"x_embedding", name_of(m.model.x_embedding)},
      {"steps", std::to_string(m.steps)},
      {"seed", std::to_string(m.seed)},
      {"last_loss", format_float(m.last_loss)},
  };
  if (m.model.x_embedding == XEmbedding::kSinusoidal) file.metadata["x_scale"] = format_float(m.model.x_scale);
  for (const auto& [key, value] : m.run) file.metadata.emplace(kRunPrefix + key, value);
  if (m.data_scale) {
    const CheckpointMeta::DataScale& s = *m.data_scale;
    for (int k = 0; k < 4; ++k) {
      if (m.run.count(kDataScaleKeys[k]))
        throw Error(path + ": run." + kDataScaleKeys[k] +
                    " is written from the data scale, not from the run settings");
      file.metadata[kRunPrefix + std::string(kDataScaleKeys[k])] = format_double(scale_field(s, k));
    }
  }
  const auto put = [&](const std::string& prefix, const std::vector<float>& flat) {
    for (const LayerShape& l : net.layers) {
      const float* p = flat.data();
      const std::size_t w = std::size_t(l.out) * std::size_t(l.in);
      file.tensors.push_back({prefix + l.weight_name, {l.out, l.in}, std::vector<float>(p + l.weight, p + l.weight + w)});
      file.tensors.push_back({prefix + l.bias_name, {l.out}, std::vector<float>(p + l.bias, p + l.bias + l.out)});
    }
  };
  put("", ckpt.params);
  if (!ckpt.ema.empty()) put(kEmaPrefix, ckpt.ema);
  if (ckpt.training) {
    put(kAdamMPrefix, ckpt.training->adam_m);
    put(kAdamVPrefix, ckpt.training->adam_v);
    file.tensors.push_back({kLossesName, {int64_t(ckpt.training->losses.size())}, ckpt.training->losses});
  }
  write_safetensors(path, file);
}

Checkpoint load_checkpoint(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  const auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };

  Checkpoint ckpt;
  CheckpointMeta& m = ckpt.meta;
  // A file not in our format (safetensors.torch.save_file(model.state_dict()) writes
  // no metadata, save_model {"format": "pt"}) is a plain state dict: it gets the
  // defaults of ddpm/config.hpp, the model variant its net.0.weight's shape says,
  // and its metadata is ignored, said by the caller.
  const auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second != kFormatName) {
    ckpt.plain_state_dict = true;
    for (const auto& entry : file.metadata) ckpt.ignored_metadata.push_back(entry.first);
    const Tensor* w0 = file.find(kXEmbNet.layers[0].weight_name);
    if (w0 != nullptr && w0->shape.size() == 2 && w0->shape[1] == kXEmbNet.in0())
      m.model.x_embedding = XEmbedding::kSinusoidal;
  } else {
    const MetaParser mp{path, file.metadata};
    m.format_version = mp.integer<int>("format_version");
    if (m.format_version != kCheckpointFormatVersion)
      fail("format_version " + std::to_string(m.format_version) + " not supported, expected " +
           std::to_string(kCheckpointFormatVersion));
    m.T = mp.integer<int>("T");
    m.beta_1 = mp.real("beta_1");
    m.beta_T = mp.real("beta_T");
    m.schedule = mp.get("schedule");
    if (m.schedule != "linear" && m.schedule != "cosine") mp.bad("schedule", "\"linear\" or \"cosine\"");
    m.emb_dim = mp.integer<int>("emb_dim");
    m.hidden = mp.integer<int>("hidden");
    // Files written before the x encoding existed have no x_embedding key: the seed's model.
    if (file.metadata.count("x_embedding")) {
      const std::string& e = mp.get("x_embedding");
      if (e == name_of(XEmbedding::kSinusoidal)) {
        m.model.x_embedding = XEmbedding::kSinusoidal;
        m.model.x_scale = mp.real32("x_scale");
      } else if (e != name_of(XEmbedding::kNone)) {
        mp.bad("x_embedding", "\"none\" or \"sinusoidal\"");
      }
    }
    m.steps = mp.integer<int64_t>("steps");
    m.seed = mp.integer<uint64_t>("seed");
    m.last_loss = mp.real32("last_loss");
    for (const auto& [key, value] : file.metadata)
      if (key.compare(0, std::strlen(kRunPrefix), kRunPrefix) == 0) m.run.emplace(key.substr(std::strlen(kRunPrefix)), value);
    // The data scale: all four keys or none, each a finite number, the stds positive.
    int present = 0;
    for (const char* k : kDataScaleKeys) present += m.run.count(k) > 0;
    if (present > 0) {
      CheckpointMeta::DataScale& s = m.data_scale.emplace();
      for (int k = 0; k < 4; ++k) {
        const std::string key = kRunPrefix + std::string(kDataScaleKeys[k]);
        if (!file.metadata.count(key))
          fail("metadata key \"" + key + "\" missing (the data scale needs all four run.data-mean-*/-std-* keys)");
        scale_field(s, k) = mp.real(key.c_str());
        if (k >= 2 && !(scale_field(s, k) > 0)) mp.bad(key.c_str(), "a positive number");
        m.run.erase(kDataScaleKeys[k]);
      }
    }
  }
  validate_meta(path, m);

  const NetLayout& net = m.model.net();
  std::set<std::string> expected;
  // One group: the eight tensors prefix + net.*, copied into a flat buffer.
  const auto take = [&](const std::string& prefix, std::vector<float>& flat) {
    flat.assign(net.param_count, 0.f);
    for (const LayerShape& l : net.layers)
      for (const auto& [name, shape, offset] :
           {std::tuple{prefix + l.weight_name, std::vector<int64_t>{l.out, l.in}, l.weight},
            std::tuple{prefix + l.bias_name, std::vector<int64_t>{l.out}, l.bias}}) {
        expected.insert(name);
        const Tensor* t = file.find(name);
        if (t == nullptr) fail("tensor " + name + " missing");
        if (t->shape != shape)
          fail("tensor " + name + " has shape " + shape_string(t->shape) + ", expected " + shape_string(shape) +
               " (x_embedding " + name_of(m.model.x_embedding) + ")");
        std::copy(t->data.begin(), t->data.end(), flat.begin() + std::ptrdiff_t(offset));
      }
  };
  // An optional group is present when any of its tensors is, and must then be complete.
  const auto has_group = [&](const std::string& prefix) {
    return std::any_of(file.tensors.begin(), file.tensors.end(),
                       [&](const Tensor& t) { return t.name.compare(0, prefix.size(), prefix) == 0; });
  };
  take("", ckpt.params);
  if (has_group(kEmaPrefix)) take(kEmaPrefix, ckpt.ema);
  const Tensor* losses = file.find(kLossesName);
  if (losses != nullptr || has_group(kAdamMPrefix) || has_group(kAdamVPrefix)) {
    TrainingState& ts = ckpt.training.emplace();
    take(kAdamMPrefix, ts.adam_m);
    take(kAdamVPrefix, ts.adam_v);
    if (losses == nullptr) fail(std::string("tensor ") + kLossesName + " missing");
    expected.insert(kLossesName);
    if (losses->shape.size() != 1)
      fail(std::string("tensor ") + kLossesName + " has shape " + shape_string(losses->shape) + ", expected [steps]");
    ts.losses = losses->data;
  }
  for (const Tensor& t : file.tensors)
    if (!expected.count(t.name)) {
      std::string name = t.name.substr(0, 80);
      for (char& c : name)
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      fail("unexpected tensor " + name);
    }
  if (ckpt.training && int64_t(ckpt.training->losses.size()) != m.steps)
    fail("tensor " + std::string(kLossesName) + " holds " + std::to_string(ckpt.training->losses.size()) +
         " losses for " + std::to_string(m.steps) + " steps");
  return ckpt;
}

std::string ignored_metadata_note(const std::string& path, const Checkpoint& ckpt) {
  const bool encoded = ckpt.meta.model.x_embedding == XEmbedding::kSinusoidal;
  if (!ckpt.plain_state_dict || (ckpt.ignored_metadata.empty() && !encoded)) return "";
  std::string keys;
  for (const std::string& k : ckpt.ignored_metadata) keys += (keys.empty() ? "" : ", ") + printable(k, 40);
  if (keys.size() > 300) keys = keys.substr(0, 300) + "...";
  std::string note = path + ": metadata not in ddpm-cuda's format (no \"format\": \"ddpm-cuda\"), read as a plain "
                            "state dict with the default settings (T = " + std::to_string(kT) + ", linear betas " +
                     short_number(kBeta1) + ".." + short_number(kBetaT);
  if (encoded) note += "; net.0.weight [128, 192]: x-embedding sinusoidal, x-scale " + short_number(kXScale);
  return note + "); ignored keys: " + (keys.empty() ? "none" : keys);
}

}  // namespace ddpm::io
