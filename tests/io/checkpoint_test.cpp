#include "host/io/checkpoint.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ddpm/params.hpp"
#include "host/io/safetensors.hpp"
#include "io_test_util.hpp"

namespace ddpm::io {
namespace {

using test::read_bytes;
using test::same_bits;
using test::TempDir;
using test::throws_error;
using test::write_bytes;

Checkpoint random_checkpoint(std::mt19937& rng, const ModelConfig& model = {}) {
  Checkpoint c;
  c.meta.model = model;
  c.params = test::random_floats(rng, model.net().param_count);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  c.meta.T = 1 + int(rng() % kMaxT);
  const double a = unit(rng), b = unit(rng);
  c.meta.beta_1 = std::max(std::min(a, b), 1e-300);
  c.meta.beta_T = std::max(std::max(a, b), c.meta.beta_1);
  c.meta.steps = int64_t(std::uniform_int_distribution<uint64_t>(0, uint64_t(std::numeric_limits<int64_t>::max()))(rng));
  c.meta.seed = std::uniform_int_distribution<uint64_t>()(rng);
  c.meta.last_loss = test::random_finite_float(rng);
  return c;
}

void expect_same_meta(const CheckpointMeta& a, const CheckpointMeta& b) {
  EXPECT_EQ(a.format_version, b.format_version);
  EXPECT_EQ(a.T, b.T);
  EXPECT_EQ(std::bit_cast<uint64_t>(a.beta_1), std::bit_cast<uint64_t>(b.beta_1)) << a.beta_1 << " vs " << b.beta_1;
  EXPECT_EQ(std::bit_cast<uint64_t>(a.beta_T), std::bit_cast<uint64_t>(b.beta_T)) << a.beta_T << " vs " << b.beta_T;
  EXPECT_EQ(a.schedule, b.schedule);
  EXPECT_EQ(a.emb_dim, b.emb_dim);
  EXPECT_EQ(a.hidden, b.hidden);
  EXPECT_EQ(a.model.x_embedding, b.model.x_embedding);
  if (a.model.x_embedding == XEmbedding::kSinusoidal) {  // braces: EXPECT_EQ is an if-else inside
    EXPECT_EQ(std::bit_cast<uint32_t>(a.model.x_scale), std::bit_cast<uint32_t>(b.model.x_scale))
        << a.model.x_scale << " vs " << b.model.x_scale;
  }
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(std::bit_cast<uint32_t>(a.last_loss), std::bit_cast<uint32_t>(b.last_loss))
      << a.last_loss << " vs " << b.last_loss;
  ASSERT_EQ(a.data_scale.has_value(), b.data_scale.has_value());
  if (a.data_scale)
    for (int d = 0; d < 2; ++d) {
      EXPECT_EQ(std::bit_cast<uint64_t>(a.data_scale->mean[d]), std::bit_cast<uint64_t>(b.data_scale->mean[d])) << d;
      EXPECT_EQ(std::bit_cast<uint64_t>(a.data_scale->std[d]), std::bit_cast<uint64_t>(b.data_scale->std[d])) << d;
    }
}

// Any finite double (mean) or positive finite double (std), each bit pattern equally likely,
// but for the subnormals, which no mean or std of float points can be.
CheckpointMeta::DataScale random_data_scale(std::mt19937& rng) {
  auto any = [&] {
    for (;;) {
      const double v = std::bit_cast<double>((uint64_t(rng()) << 32) | rng());
      if (std::isfinite(v) && std::fpclassify(v) != FP_SUBNORMAL) return v;
    }
  };
  CheckpointMeta::DataScale s{{any(), any()}, {std::abs(any()), std::abs(any())}};
  for (double& sd : s.std)
    if (sd == 0) sd = 1e-300;
  return s;
}

TEST(Checkpoint, RoundTripIsBitExact) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  for (int rep = 0; rep < 3; ++rep) {
    const Checkpoint in = random_checkpoint(rng);
    save_checkpoint(path, in);
    const Checkpoint out = load_checkpoint(path);
    EXPECT_TRUE(same_bits(in.params, out.params));
    expect_same_meta(in.meta, out.meta);
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"ckpt.safetensors"});
}

TEST(Checkpoint, UsesThePyTorchNamesShapesAndMetadata) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Checkpoint in = random_checkpoint(rng);
  in.meta.T = 500;
  in.meta.beta_1 = 1e-4;
  in.meta.beta_T = 0.02;
  in.meta.steps = 5000;
  in.meta.seed = 42;
  in.meta.last_loss = 0.25f;
  save_checkpoint(path, in);

  const SafetensorsFile f = read_safetensors(path);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"net.0.weight", {128, 66}}, {"net.0.bias", {128}}, {"net.2.weight", {128, 128}}, {"net.2.bias", {128}},
      {"net.4.weight", {128, 128}}, {"net.4.bias", {128}}, {"net.6.weight", {2, 128}},  {"net.6.bias", {2}}};
  ASSERT_EQ(f.tensors.size(), expected.size());
  std::size_t offset = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].first);
    EXPECT_EQ(f.tensors[i].name, expected[i].first);
    EXPECT_EQ(f.tensors[i].shape, expected[i].second);
    const std::vector<float> slice(in.params.begin() + std::ptrdiff_t(offset),
                                   in.params.begin() + std::ptrdiff_t(offset + f.tensors[i].data.size()));
    EXPECT_TRUE(same_bits(slice, f.tensors[i].data));
    offset += f.tensors[i].data.size();
  }
  EXPECT_EQ(offset, kParamCount);
  const std::map<std::string, std::string> meta = {
      {"format", "ddpm-cuda"}, {"format_version", "1"}, {"T", "500"},
      {"beta_1", "0.0001"},    {"beta_T", "0.02"},      {"schedule", "linear"},
      {"emb_dim", "64"},       {"hidden", "128"},       {"steps", "5000"},
      {"seed", "42"},          {"last_loss", "0.25"},   {"x_embedding", "none"}};
  for (const auto& [k, v] : meta) {
    SCOPED_TRACE(k);
    ASSERT_TRUE(f.metadata.count(k));
    if (k == "beta_1" || k == "beta_T")
      EXPECT_EQ(std::stod(f.metadata.at(k)), std::stod(v));  // printed with 17 digits
    else
      EXPECT_EQ(f.metadata.at(k), v);
  }
  EXPECT_EQ(f.metadata.size(), meta.size());
}

TEST(Checkpoint, FileWithoutMetadataGetsTheDefaults) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("torch.safetensors");
  const Checkpoint in = random_checkpoint(rng);
  save_checkpoint(path, in);
  SafetensorsFile f = read_safetensors(path);
  f.metadata.clear();
  write_safetensors(path, f);
  const Checkpoint out = load_checkpoint(path);
  EXPECT_TRUE(same_bits(in.params, out.params));
  expect_same_meta(CheckpointMeta{}, out.meta);
  EXPECT_EQ(out.meta.T, kT);
  EXPECT_EQ(out.meta.steps, 0);
}

// Writes the checkpoint of `in` after `edit` changes its safetensors form.
void write_edited(const std::string& path, const Checkpoint& in, const std::function<void(SafetensorsFile&)>& edit) {
  save_checkpoint(path, in);
  SafetensorsFile f = read_safetensors(path);
  edit(f);
  write_safetensors(path, f);
}

// The x encoding's variant at a random positive scale (any float bits in (0, 1e4)).
ModelConfig random_encoded_model(std::mt19937& rng) {
  return {XEmbedding::kSinusoidal, std::uniform_real_distribution<float>(1e-3f, 1e4f)(rng)};
}

TEST(Checkpoint, XEmbeddingRoundTripsWithItsShapeAndKeys) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Checkpoint in = random_checkpoint(rng, random_encoded_model(rng));
  in.ema = test::random_floats(rng, kXEmbNet.param_count);
  in.meta.steps = 3;
  in.training = TrainingState{test::random_floats(rng, kXEmbNet.param_count),
                              test::random_floats(rng, kXEmbNet.param_count), test::random_floats(rng, 3)};
  save_checkpoint(path, in);
  const SafetensorsFile f = read_safetensors(path);
  for (const char* name : {"net.0.weight", "ema.net.0.weight", "optim.exp_avg.net.0.weight"})
    EXPECT_EQ(f.find(name)->shape, (std::vector<int64_t>{128, 192})) << name;
  EXPECT_EQ(f.metadata.at("x_embedding"), "sinusoidal");
  EXPECT_EQ(std::stof(f.metadata.at("x_scale")), in.meta.model.x_scale);
  const Checkpoint out = load_checkpoint(path);
  EXPECT_TRUE(same_bits(in.params, out.params));
  EXPECT_TRUE(same_bits(in.ema, out.ema));
  EXPECT_TRUE(same_bits(in.training->adam_v, out.training->adam_v));
  expect_same_meta(in.meta, out.meta);
  // Sizes that do not fit the variant are refused on save.
  Checkpoint wrong = in;
  wrong.meta.model = {};
  EXPECT_TRUE(throws_error([&] { save_checkpoint(path, wrong); }, {"57986 parameters, expected 41858"}));
}

TEST(Checkpoint, XEmbeddingContradictionsAndBadValuesAreRefused) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const Checkpoint encoded = random_checkpoint(rng, random_encoded_model(rng));
  const Checkpoint seed_model = random_checkpoint(rng);
  using Meta = std::map<std::string, std::string>;
  struct Case {
    const Checkpoint* ckpt;
    Meta set;
    const char* erase;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {&seed_model, {{"x_embedding", "sinusoidal"}, {"x_scale", "25"}}, nullptr,
       {"tensor net.0.weight has shape [128, 66], expected [128, 192] (x_embedding sinusoidal)"}},
      {&encoded, {{"x_embedding", "none"}}, nullptr,
       {"tensor net.0.weight has shape [128, 192], expected [128, 66] (x_embedding none)"}},
      {&encoded, {}, "x_embedding", {"tensor net.0.weight has shape [128, 192], expected [128, 66]"}},
      {&encoded, {{"x_embedding", "fourier"}}, nullptr, {"metadata x_embedding = \"fourier\" is not \"none\" or"}},
      {&encoded, {{"x_embedding", "Sinusoidal"}}, nullptr, {"metadata x_embedding = \"Sinusoidal\""}},
      {&encoded, {}, "x_scale", {"metadata key \"x_scale\" missing"}},
      {&encoded, {{"x_scale", "0"}}, nullptr, {"x_scale 0 is not a positive finite number"}},
      {&encoded, {{"x_scale", "-25"}}, nullptr, {"x_scale -25 is not a positive finite number"}},
      {&encoded, {{"x_scale", "nan"}}, nullptr, {"metadata x_scale = \"nan\" is not a finite float"}},
      {&encoded, {{"x_scale", "25 "}}, nullptr, {"metadata x_scale", "not a finite float"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.set.empty() ? std::string("erase ") + c.erase : c.set.begin()->first + " = " + c.set.begin()->second);
    write_edited(path, *c.ckpt, [&](SafetensorsFile& f) {
      for (const auto& [k, v] : c.set) f.metadata[k] = v;
      if (c.erase) f.metadata.erase(c.erase);
    });
    std::vector<std::string> needles = {path + ": "};
    needles.insert(needles.end(), c.needles.begin(), c.needles.end());
    EXPECT_TRUE(throws_error([&] { load_checkpoint(path); }, needles));
  }
  // A file of ours written before the encoding existed has no x_embedding key: the seed's model.
  write_edited(path, seed_model, [](SafetensorsFile& f) { f.metadata.erase("x_embedding"); });
  EXPECT_EQ(load_checkpoint(path).meta.model.x_embedding, XEmbedding::kNone);
  // x_scale beside "none" is not read.
  write_edited(path, seed_model, [](SafetensorsFile& f) { f.metadata["x_scale"] = "nan"; });
  EXPECT_EQ(load_checkpoint(path).meta.model.x_embedding, XEmbedding::kNone);
}

TEST(Checkpoint, PlainStateDictOfTheEncodedModelTakesTheDefaultScale) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("torch.safetensors");
  const Checkpoint in = random_checkpoint(rng, random_encoded_model(rng));
  using Meta = std::map<std::string, std::string>;
  for (const Meta& meta : {Meta{}, Meta{{"format", "pt"}}}) {
    write_edited(path, in, [&](SafetensorsFile& f) { f.metadata = meta; });
    const Checkpoint out = load_checkpoint(path);
    EXPECT_TRUE(same_bits(in.params, out.params));
    EXPECT_EQ(out.meta.model.x_embedding, XEmbedding::kSinusoidal);
    EXPECT_EQ(out.meta.model.x_scale, kXScale);
    const std::string note = ignored_metadata_note(path, out);
    EXPECT_NE(note.find("net.0.weight [128, 192]: x-embedding sinusoidal, x-scale 25"), std::string::npos) << note;
    EXPECT_NE(note.find(meta.empty() ? "ignored keys: none" : "ignored keys: format"), std::string::npos) << note;
  }
}

TEST(Checkpoint, RejectsWrongTensors) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const Checkpoint in = random_checkpoint(rng);
  const auto rejects = [&](const char* what, const std::function<void(SafetensorsFile&)>& edit,
                           std::initializer_list<std::string> needles) {
    SCOPED_TRACE(what);
    write_edited(path, in, edit);
    EXPECT_TRUE(throws_error([&] { load_checkpoint(path); }, needles));
  };
  rejects("missing tensor", [](SafetensorsFile& f) { f.tensors.erase(f.tensors.begin() + 3); },
          {path, "tensor net.2.bias missing"});
  rejects("transposed weight", [](SafetensorsFile& f) { f.tensors[0].shape = {66, 128}; },
          {path, "tensor net.0.weight has shape [66, 128], expected [128, 66]"});
  rejects("flattened weight", [](SafetensorsFile& f) { f.tensors[6].shape = {256}; },
          {"tensor net.6.weight has shape [256], expected [2, 128]"});
  rejects("extra tensor", [](SafetensorsFile& f) { f.tensors.push_back({"net.8.weight", {1}, {1.f}}); },
          {path, "unexpected tensor net.8.weight"});
  rejects("renamed tensor", [](SafetensorsFile& f) { f.tensors[7].name = "net.6.b"; }, {"tensor net.6.bias missing"});
}

TEST(Checkpoint, RejectsBadMetadata) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Checkpoint in = random_checkpoint(rng);
  in.meta.beta_1 = 1e-4;
  in.meta.beta_T = 0.02;
  struct Case {
    const char* key;
    const char* value;  // nullptr: remove the key
    std::vector<std::string> needles;
  };
  in.meta.data_scale = random_data_scale(rng);
  const std::vector<Case> cases = {
      {"format_version", "2", {"format_version 2 not supported"}},
      {"format_version", "1.0", {"format_version", "not an integer"}},
      {"format_version", nullptr, {"\"format_version\" missing"}},
      {"T", "0", {"T = 0", "outside 1..100000"}},
      {"T", "100001", {"T = 100001"}},
      {"T", "-5", {"T = -5"}},
      {"T", " 500", {"metadata T", "not an integer"}},
      {"T", "500x", {"metadata T", "not an integer"}},
      {"T", "", {"metadata T", "not an integer"}},
      {"T", "99999999999", {"metadata T", "not an integer"}},
      {"T", nullptr, {"\"T\" missing"}},
      {"beta_1", "0", {"0 < beta_1 <= beta_T < 1"}},
      {"beta_1", "-1e-4", {"0 < beta_1 <= beta_T < 1"}},
      {"beta_1", "0.5", {"0 < beta_1 <= beta_T < 1"}},
      {"beta_1", "nan", {"beta_1", "not a finite number"}},
      {"beta_1", "1e-4 ", {"beta_1", "not a finite number"}},
      {"beta_1", "1e999", {"beta_1", "not a finite number"}},
      {"beta_T", "1", {"0 < beta_1 <= beta_T < 1"}},
      {"beta_T", "inf", {"beta_T", "not a finite number"}},
      {"beta_T", nullptr, {"\"beta_T\" missing"}},
      {"schedule", "quadratic", {"schedule = \"quadratic\"", "\"linear\" or \"cosine\""}},
      {"schedule", nullptr, {"\"schedule\" missing"}},
      {"emb_dim", "32", {"emb_dim 32 does not match this build's 64"}},
      {"hidden", "256", {"hidden 256 does not match this build's 128"}},
      {"hidden", "0x80", {"metadata hidden", "not an integer"}},
      {"steps", "-1", {"steps -1 is negative"}},
      {"steps", "1e3", {"metadata steps", "not an integer"}},
      {"steps", nullptr, {"\"steps\" missing"}},
      {"seed", "-1", {"metadata seed", "not an integer"}},
      {"seed", "18446744073709551616", {"metadata seed", "not an integer"}},
      {"seed", nullptr, {"\"seed\" missing"}},
      {"last_loss", "abc", {"metadata last_loss", "not a finite float"}},
      {"last_loss", "nan", {"metadata last_loss", "not a finite float"}},
      {"last_loss", "1e39", {"metadata last_loss", "not a finite float"}},
      {"last_loss", nullptr, {"\"last_loss\" missing"}},
      {"run.data-std-x", "nan", {"metadata run.data-std-x = \"nan\" is not a finite number"}},
      {"run.data-std-y", "0", {"metadata run.data-std-y = \"0\" is not a positive number"}},
      {"run.data-std-x", "-0", {"metadata run.data-std-x = \"-0\" is not a positive number"}},
      {"run.data-std-y", "-2.5", {"metadata run.data-std-y = \"-2.5\" is not a positive number"}},
      {"run.data-std-x", "inf", {"metadata run.data-std-x = \"inf\" is not a finite number"}},
      {"run.data-std-x", "1e999", {"metadata run.data-std-x", "not a finite number"}},
      {"run.data-mean-y", "NaN", {"metadata run.data-mean-y = \"NaN\" is not a finite number"}},
      {"run.data-mean-x", "100 ", {"metadata run.data-mean-x", "not a finite number"}},
      {"run.data-mean-x", "", {"metadata run.data-mean-x", "not a finite number"}},
      {"run.data-mean-y", nullptr, {"metadata key \"run.data-mean-y\" missing"}},
      {"run.data-std-x", nullptr, {"metadata key \"run.data-std-x\" missing"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.key) + " = " + (c.value ? c.value : "(missing)"));
    write_edited(path, in, [&](SafetensorsFile& f) {
      if (c.value)
        f.metadata[c.key] = c.value;
      else
        f.metadata.erase(c.key);
    });
    try {
      load_checkpoint(path);
      ADD_FAILURE() << "accepted";
    } catch (const ddpm::Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      for (const std::string& n : c.needles) EXPECT_NE(msg.find(n), std::string::npos) << msg << "\nlacks: " << n;
    }
  }
  // The data scale's keys alone, without the rest of ours, are a foreign file's: ignored.
  write_edited(path, in, [](SafetensorsFile& f) {
    f.metadata = {{"run.data-std-x", "0"}};
  });
  EXPECT_FALSE(load_checkpoint(path).meta.data_scale.has_value());
  // Keys this version does not know are ignored.
  write_edited(path, in, [](SafetensorsFile& f) { f.metadata["note"] = "anything"; });
  EXPECT_NO_THROW(load_checkpoint(path));
}

TEST(Checkpoint, ForeignMetadataIsAPlainStateDict) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("foreign.safetensors");
  Checkpoint in = random_checkpoint(rng);
  in.meta.data_scale = random_data_scale(rng);
  using Meta = std::map<std::string, std::string>;
  // safetensors.torch.save_model's, ours under another name or with no format, other tools' keys
  // (with our key names and bad values among them: not ours, so not read), a control character.
  for (const Meta& meta : {Meta{{"format", "pt"}}, Meta{{"format", "pytorch"}}, Meta{{"format", "DDPM-CUDA"}},
                           Meta{{"format", "ddpm-cuda "}, {"T", "0"}},
                           Meta{{"producer", "numpy"}, {"T", "7"}, {"run.data-std-x", "nan"}, {"beta_1", "x"}},
                           Meta{{"line\nbreak", "v"}, {"", ""}}}) {
    SCOPED_TRACE(meta.begin()->first + " = " + meta.begin()->second);
    write_edited(path, in, [&](SafetensorsFile& f) { f.metadata = meta; });
    const Checkpoint out = load_checkpoint(path);
    EXPECT_TRUE(same_bits(in.params, out.params));
    expect_same_meta(CheckpointMeta{}, out.meta);
    EXPECT_TRUE(out.meta.run.empty());
    std::vector<std::string> keys;
    for (const auto& [k, v] : meta) keys.push_back(k);
    EXPECT_EQ(out.ignored_metadata, keys);
    const std::string note = ignored_metadata_note(path, out);
    EXPECT_EQ(note.rfind(path + ": metadata not in ddpm-cuda's format", 0), 0u) << note;
    EXPECT_NE(note.find("T = 500, linear betas 0.0001..0.02"), std::string::npos) << note;
    EXPECT_EQ(note.find('\n'), std::string::npos) << note;
    for (const std::string& k : keys) {
      if (k.find('\n') == std::string::npos) {
        EXPECT_NE(note.find(k), std::string::npos) << note << "\nlacks " << k;
      }
    }
  }
  // Ours, and a file with no metadata at all: nothing ignored, no note.
  save_checkpoint(path, in);
  EXPECT_TRUE(load_checkpoint(path).ignored_metadata.empty());
  EXPECT_EQ(ignored_metadata_note(path, load_checkpoint(path)), "");
  write_edited(path, in, [](SafetensorsFile& f) { f.metadata.clear(); });
  EXPECT_EQ(ignored_metadata_note(path, load_checkpoint(path)), "");
}

TEST(Checkpoint, DataScaleRoundTripsAndItsKeys) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  for (int rep = 0; rep < 20; ++rep) {
    Checkpoint in = random_checkpoint(rng);
    in.meta.data_scale = random_data_scale(rng);
    in.meta.run = {{"data", "points.csv"}};
    save_checkpoint(path, in);
    const Checkpoint out = load_checkpoint(path);
    expect_same_meta(in.meta, out.meta);  // bit for bit through %.17g
    EXPECT_EQ(out.meta.run, in.meta.run);  // the scale's keys are not run settings
    const SafetensorsFile f = read_safetensors(path);
    EXPECT_EQ(std::stod(f.metadata.at("run.data-mean-x")), in.meta.data_scale->mean[0]);
    EXPECT_EQ(std::stod(f.metadata.at("run.data-mean-y")), in.meta.data_scale->mean[1]);
    EXPECT_EQ(std::stod(f.metadata.at("run.data-std-x")), in.meta.data_scale->std[0]);
    EXPECT_EQ(std::stod(f.metadata.at("run.data-std-y")), in.meta.data_scale->std[1]);
  }
  Checkpoint c = random_checkpoint(rng);
  c.meta.data_scale = random_data_scale(rng);
  c.meta.run = {{"data-std-x", "1"}};
  EXPECT_TRUE(throws_error([&] { save_checkpoint(path, c); }, {path, "run.data-std-x", "data scale"}));
}

TEST(Checkpoint, SaveRejectsInvalidInputAndLeavesNothing) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const auto rejects = [&](Checkpoint c, std::initializer_list<std::string> needles) {
    EXPECT_TRUE(throws_error([&] { save_checkpoint(path, c); }, needles));
    EXPECT_TRUE(dir.entries().empty());
  };
  const Checkpoint good = random_checkpoint(rng);
  Checkpoint c = good;
  c.params.pop_back();
  rejects(c, {path, "41857 parameters, expected 41858"});
  c = good;
  c.params[1234] = std::numeric_limits<float>::infinity();
  rejects(c, {path, "net.0.weight", "index 1234"});
  c = good;
  c.meta.T = 0;
  rejects(c, {"T = 0"});
  c = good;
  c.meta.beta_T = 0.5;
  c.meta.beta_1 = 0.75;
  rejects(c, {"beta_1"});
  c = good;
  c.meta.hidden = 64;
  rejects(c, {"hidden 64"});
  c = good;
  c.meta.schedule = "quadratic";
  rejects(c, {"quadratic", "expected \"linear\" or \"cosine\""});
  for (const double bad : {0.0, -0.0, -1.0, double(NAN), double(INFINITY)}) {
    c = good;
    c.meta.data_scale = CheckpointMeta::DataScale{{100, -50}, {10, bad}};
    rejects(c, {path, "run.data-std-y = ", "is not a positive finite number"});
  }
  c = good;
  c.meta.data_scale = CheckpointMeta::DataScale{{NAN, -50}, {10, 0.1}};
  rejects(c, {path, "run.data-mean-x = nan is not a finite number"});
  EXPECT_TRUE(throws_error([&] { save_checkpoint(dir.file("missing/ckpt.safetensors"), good); },
                           {dir.file("missing/ckpt.safetensors"), "No such file or directory"}));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Checkpoint, TruncatedFilesThrow) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  save_checkpoint(path, random_checkpoint(rng));
  const std::string full = read_bytes(path);
  std::vector<std::size_t> lengths;
  for (std::size_t len = 0; len < 1200 && len < full.size(); ++len) lengths.push_back(len);  // through the header
  for (int i = 0; i < 100; ++i) lengths.push_back(rng() % full.size());
  lengths.push_back(full.size() - 1);
  for (const std::size_t len : lengths) {
    SCOPED_TRACE("length " + std::to_string(len));
    write_bytes(path, full.substr(0, len));
    EXPECT_TRUE(throws_error([&] { load_checkpoint(path); }, {path}));
  }
}

TEST(Checkpoint, MissingFileThrows) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { load_checkpoint(dir.file("nope.safetensors")); }, {"nope.safetensors", "cannot open"}));
}

}  // namespace
}  // namespace ddpm::io

namespace ddpm::io {
namespace {

// A checkpoint with every optional part: EMA, training state, run settings.
Checkpoint random_full_checkpoint(std::mt19937& rng) {
  Checkpoint c = random_checkpoint(rng);
  c.meta.steps = int64_t(rng() % 3000);
  c.meta.schedule = rng() % 2 ? "linear" : "cosine";
  c.ema = test::random_floats(rng, kParamCount);
  c.training = TrainingState{test::random_floats(rng, kParamCount), test::random_floats(rng, kParamCount),
                             test::random_floats(rng, std::size_t(c.meta.steps))};
  c.meta.run = {{"batch", std::to_string(rng() % 5000)}, {"lr", "0.001"}, {"dataset", "moons"}, {"empty", ""}};
  return c;
}

TEST(Checkpoint, EmaTrainingStateAndRunSettingsRoundTrip) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  for (int rep = 0; rep < 3; ++rep) {
    const Checkpoint in = random_full_checkpoint(rng);
    save_checkpoint(path, in);
    const Checkpoint out = load_checkpoint(path);
    EXPECT_TRUE(same_bits(in.params, out.params));
    EXPECT_TRUE(same_bits(in.ema, out.ema));
    ASSERT_TRUE(out.training.has_value());
    EXPECT_TRUE(same_bits(in.training->adam_m, out.training->adam_m));
    EXPECT_TRUE(same_bits(in.training->adam_v, out.training->adam_v));
    EXPECT_TRUE(same_bits(in.training->losses, out.training->losses));
    expect_same_meta(in.meta, out.meta);
    EXPECT_EQ(in.meta.run, out.meta.run);
  }
  // The names a PyTorch user filters on.
  const SafetensorsFile f = read_safetensors(path);
  for (const char* name : {"ema.net.0.weight", "ema.net.6.bias", "optim.exp_avg.net.2.weight",
                           "optim.exp_avg_sq.net.4.bias", "train.losses"})
    EXPECT_NE(f.find(name), nullptr) << name;
  EXPECT_EQ(f.metadata.at("run.batch"), load_checkpoint(path).meta.run.at("batch"));
  // Without the optional parts, nothing optional is read back.
  Checkpoint plain = random_checkpoint(rng);
  save_checkpoint(path, plain);
  const Checkpoint out = load_checkpoint(path);
  EXPECT_TRUE(out.ema.empty());
  EXPECT_FALSE(out.training.has_value());
  EXPECT_TRUE(out.meta.run.empty());
}

TEST(Checkpoint, OptionalGroupsMustBeComplete) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Checkpoint in = random_full_checkpoint(rng);
  in.meta.steps = 7;
  in.training->losses.resize(7);
  const auto erase = [](const char* name) {
    return [name](SafetensorsFile& f) {
      const auto it = std::find_if(f.tensors.begin(), f.tensors.end(), [&](const Tensor& t) { return t.name == name; });
      ASSERT_NE(it, f.tensors.end()) << name;
      f.tensors.erase(it);
    };
  };
  const auto rejects = [&](const char* what, const std::function<void(SafetensorsFile&)>& edit,
                           std::initializer_list<std::string> needles) {
    SCOPED_TRACE(what);
    write_edited(path, in, edit);
    EXPECT_TRUE(throws_error([&] { load_checkpoint(path); }, needles));
  };
  rejects("EMA without one bias", erase("ema.net.4.bias"), {path, "tensor ema.net.4.bias missing"});
  rejects("moments without the losses", erase("train.losses"), {path, "tensor train.losses missing"});
  rejects("losses without a moment", erase("optim.exp_avg_sq.net.0.weight"),
          {"tensor optim.exp_avg_sq.net.0.weight missing"});
  rejects("losses of the wrong length",
          [](SafetensorsFile& f) {
            Tensor* t = const_cast<Tensor*>(f.find("train.losses"));
            t->data.push_back(1.f);
            t->shape = {8};
          },
          {"8 losses for 7 steps"});
  rejects("losses as a matrix",
          [](SafetensorsFile& f) { const_cast<Tensor*>(f.find("train.losses"))->shape = {7, 1}; },
          {"train.losses has shape [7, 1], expected [steps]"});
  rejects("unknown EMA tensor", [](SafetensorsFile& f) { f.tensors.push_back({"ema.net.8.weight", {1}, {1.f}}); },
          {"unexpected tensor ema.net.8.weight"});
  // save_checkpoint refuses the same inconsistencies before writing anything.
  TempDir empty;
  const auto save_rejects = [&](Checkpoint c, const std::string& needle) {
    EXPECT_TRUE(throws_error([&] { save_checkpoint(empty.file("c.safetensors"), c); }, {needle})) << needle;
  };
  Checkpoint c = in;
  c.ema.pop_back();
  save_rejects(c, "the EMA has 41857 values");
  c = in;
  c.training->adam_v.push_back(0.f);
  save_rejects(c, "Adam's second moment has 41859 values");
  c = in;
  c.meta.steps = 6;
  save_rejects(c, "7 losses for 6 steps");
  EXPECT_TRUE(empty.entries().empty());
}

}  // namespace
}  // namespace ddpm::io
