#include "host/io/safetensors.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "ddpm/error.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/printable.hpp"

namespace ddpm::io {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's cap
constexpr const char* kMetadataKey = "__metadata__";

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// A bounded, non-recursive rendering of a JSON value (the header may nest deeply).
std::string describe(const Json& v) {
  const auto scalar = [](const Json& x) -> std::string {
    if (x.is_array()) return "[...]";
    if (x.is_object()) return "{...}";
    if (x.is_string()) {
      std::string q(1, '"');
      q += printable(x.get_ref<const std::string&>());
      return q += '"';
    }
    return x.dump();
  };
  if (!v.is_array()) return scalar(v);
  std::string s = "[";
  std::size_t i = 0;
  for (const Json& x : v) {
    if (i == 8) {
      s += ", ...";
      break;
    }
    s += (i++ ? ", " : "") + scalar(x);
  }
  return s + "]";
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

struct Reader {
  const std::string& path;

  [[noreturn]] void fail(const std::string& what) const { throw Error(path + ": " + what); }
};

// Known dtypes of the format; only F32 is accepted as data.
constexpr std::array<const char*, 20> kKnownDtypes = {
    "BOOL", "U8",  "I8",  "U16", "I16",     "U32",     "I32",     "U64",  "I64",    "F16",
    "BF16", "F32", "F64", "C64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",   "F6_E2M3", "F6_E3M2"};

struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// A non-negative JSON integer, or nullopt-like failure via the bool.
bool as_u64(const Json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    const int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    out = uint64_t(s);
    return true;
  }
  return false;
}

Entry parse_entry(const Reader& r, const std::string& name, const Json& v) {
  const std::string who = "tensor " + printable(name);
  if (name.empty()) r.fail("tensor with an empty name");
  if (!v.is_object()) r.fail(who + ": entry is not an object");
  for (const auto& [key, value] : v.items()) {
    (void)value;
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      r.fail(who + ": unexpected field \"" + printable(key) + "\"");
  }
  Entry e;
  e.name = name;

  const auto dtype_it = v.find("dtype");
  if (dtype_it == v.end()) r.fail(who + ": missing dtype");
  if (!dtype_it->is_string()) r.fail(who + ": dtype is not a string");
  const std::string& dtype = dtype_it->get_ref<const std::string&>();
  if (dtype != "F32") {
    if (std::find_if(kKnownDtypes.begin(), kKnownDtypes.end(), [&](const char* d) { return dtype == d; }) !=
        kKnownDtypes.end())
      r.fail(who + ": dtype " + dtype + " not supported, expected F32");
    r.fail(who + ": unknown dtype \"" + printable(dtype) + "\"");
  }

  const auto shape_it = v.find("shape");
  if (shape_it == v.end()) r.fail(who + ": missing shape");
  if (!shape_it->is_array()) r.fail(who + ": shape is not an array");
  // Elements, checked so that elements * 4 fits in 63 bits.
  constexpr uint64_t kMaxElements = uint64_t(std::numeric_limits<int64_t>::max()) / sizeof(float);
  uint64_t elements = 1;
  for (const Json& d : *shape_it) {
    uint64_t dim = 0;
    if (!as_u64(d, dim) || dim > uint64_t(std::numeric_limits<int64_t>::max()))
      r.fail(who + ": shape " + describe(*shape_it) + " has a dimension that is not a non-negative integer");
    e.shape.push_back(int64_t(dim));
    if (elements != 0 && dim != 0 && dim > kMaxElements / elements)
      r.fail(who + ": shape " + describe(*shape_it) + " is too large");
    elements *= dim;
  }
  if (elements > kMaxElements) r.fail(who + ": shape " + describe(*shape_it) + " is too large");

  const auto off_it = v.find("data_offsets");
  if (off_it == v.end()) r.fail(who + ": missing data_offsets");
  if (!off_it->is_array() || off_it->size() != 2 || !as_u64((*off_it)[0], e.begin) ||
      !as_u64((*off_it)[1], e.end) || e.end < e.begin)
    r.fail(who + ": data_offsets " + describe(*off_it) +
           " are not two non-decreasing non-negative integers");

  const uint64_t held = e.end - e.begin, needed = elements * sizeof(float);
  if (held != needed)
    r.fail(who + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] hold " +
           std::to_string(held) + " bytes but shape " + shape_string(e.shape) + " of F32 needs " +
           std::to_string(needed));
  return e;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

void read_exact(const Reader& r, std::FILE* f, void* dst, std::size_t bytes, const char* what) {
  if (bytes == 0) return;
  errno = 0;
  if (std::fread(dst, 1, bytes, f) != bytes) {
    if (std::ferror(f)) r.fail(std::string("cannot read ") + what + ": " + std::strerror(errno ? errno : EIO));
    r.fail(std::string("file ends inside the ") + what);
  }
}

}  // namespace

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const Tensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  const auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };
  OrderedJson header = OrderedJson::object();
  if (!file.metadata.empty()) {
    OrderedJson meta = OrderedJson::object();
    for (const auto& [k, v] : file.metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const Tensor& t : file.tensors) {
    const std::string who = "tensor " + printable(t.name);
    if (t.name.empty()) fail("tensor with an empty name");
    if (t.name == kMetadataKey) fail("a tensor cannot be named " + t.name);
    if (!names.insert(t.name).second) fail(who + ": duplicate name");
    uint64_t elements = 1;
    for (const int64_t d : t.shape) {
      if (d < 0) fail(who + ": negative dimension in shape " + shape_string(t.shape));
      if (d != 0 && elements > std::numeric_limits<uint64_t>::max() / uint64_t(d))
        fail(who + ": shape " + shape_string(t.shape) + " is too large");
      elements *= uint64_t(d);
    }
    if (elements != t.data.size())
      fail(who + ": shape " + shape_string(t.shape) + " needs " + std::to_string(elements) + " values, got " +
           std::to_string(t.data.size()));
    for (std::size_t i = 0; i < t.data.size(); ++i)
      if (!std::isfinite(t.data[i])) fail(who + ": value at index " + std::to_string(i) + " is not finite");
    const uint64_t bytes = uint64_t(t.data.size()) * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump(-1, ' ', false, OrderedJson::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    fail("a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));

  AtomicFile out(path);
  out.write(len, sizeof len);
  out.write(text.data(), text.size());
  for (const Tensor& t : file.tensors) out.write(t.data.data(), t.data.size() * sizeof(float));
  out.commit();
}

SafetensorsFile read_safetensors(const std::string& path) {
  const Reader r{path};
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) r.fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(::fileno(f.get()), &st) != 0) r.fail(std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) r.fail("not a regular file");
  const uint64_t size = uint64_t(st.st_size);
  if (size < 8) r.fail("file of " + std::to_string(size) + " bytes is too short for a safetensors header");

  unsigned char len_bytes[8];
  read_exact(r, f.get(), len_bytes, 8, "header length");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(len_bytes[i]) << (8 * i);
  if (header_len > kMaxHeaderBytes)
    r.fail("header length " + std::to_string(header_len) + " exceeds the limit of " +
           std::to_string(kMaxHeaderBytes) + " bytes");
  if (header_len > size - 8)
    r.fail("header length " + std::to_string(header_len) + " exceeds the " + std::to_string(size - 8) +
           " bytes after the length field");
  std::string text(header_len, '\0');
  read_exact(r, f.get(), text.data(), text.size(), "header");
  if (text.empty() || text[0] != '{') r.fail("header is not a JSON object");
  // nlohmann's lexer would take a NUL byte for the end of the input.
  if (const std::size_t nul = text.find('\0'); nul != std::string::npos)
    r.fail("header is not valid JSON: NUL byte at offset " + std::to_string(nul));

  // Parse, noting duplicate keys at any depth (nlohmann keeps only the last).
  std::vector<std::set<std::string>> keys_at_depth;
  std::string duplicate;
  const Json::parser_callback_t note_keys = [&](int depth, Json::parse_event_t event, Json& parsed) {
    const auto d = std::size_t(depth);
    if (event == Json::parse_event_t::object_start) {
      if (keys_at_depth.size() < d + 2) keys_at_depth.resize(d + 2);
      keys_at_depth[d + 1].clear();
    } else if (event == Json::parse_event_t::key && d < keys_at_depth.size() && parsed.is_string()) {
      if (!keys_at_depth[d].insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, note_keys);
  } catch (const Json::exception& e) {
    r.fail("header is not valid JSON: " + printable(e.what()));
  }
  if (!duplicate.empty()) r.fail("duplicate key \"" + printable(duplicate) + "\" in the header");
  if (!header.is_object()) r.fail("header is not a JSON object");

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      if (!value.is_object()) r.fail("__metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) r.fail("__metadata__ value of \"" + printable(k) + "\" is not a string");
        out.metadata.emplace(k, v.get<std::string>());
      }
      continue;
    }
    entries.push_back(parse_entry(r, name, value));
  }

  // The tensors must tile the data section exactly: no overlap, no hole.
  const uint64_t data_size = size - 8 - header_len;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t covered = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.end > data_size)
      r.fail("tensor " + printable(e.name) + ": data_offsets [" + std::to_string(e.begin) + ", " +
             std::to_string(e.end) + "] run past the " + std::to_string(data_size) + "-byte data section");
    if (e.begin < covered)
      r.fail("tensor " + printable(e.name) + " overlaps tensor " + printable(entries[i - 1].name));
    if (e.begin > covered)
      r.fail("bytes [" + std::to_string(covered) + ", " + std::to_string(e.begin) +
             ") of the data section belong to no tensor (before tensor " + printable(e.name) + ")");
    covered = e.end;
  }
  if (covered != data_size)
    r.fail(std::to_string(data_size - covered) + " bytes at the end of the data section belong to no tensor");

  for (const Entry& e : entries) {
    Tensor t;
    t.name = e.name;
    t.shape = e.shape;
    t.data.resize((e.end - e.begin) / sizeof(float));
    read_exact(r, f.get(), t.data.data(), t.data.size() * sizeof(float), "data section");
    for (std::size_t i = 0; i < t.data.size(); ++i)
      if (!std::isfinite(t.data[i]))
        r.fail("tensor " + printable(e.name) + ": value at index " + std::to_string(i) + " is " +
               (std::isnan(t.data[i]) ? "NaN" : "infinite"));
    out.tensors.push_back(std::move(t));
  }
  return out;
}

}  // namespace ddpm::io
