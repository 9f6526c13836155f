#include "host/io/samples_io.hpp"

#include <sys/stat.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <system_error>

#include "ddpm/error.hpp"
#include "host/io/printable.hpp"

namespace ddpm::io {
namespace {

static_assert(std::endian::native == std::endian::little, ".npy data is written as '<f4'");

constexpr char kNpyMagic[] = "\x93" "NUMPY";  // 6 bytes
constexpr std::size_t kNpyMagicLen = 6;
constexpr std::size_t kCsvFlushBytes = 1 << 16;

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

bool ends_with(const std::string& s, const char* suffix) {
  const std::size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// The .npy v1.0 header for an (n, 2) float32 array in C order; its total
// length is a multiple of 64 so that the data is aligned.
std::string npy_header(int64_t n) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ", 2), }";
  const std::size_t unpadded = kNpyMagicLen + 2 + 2 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string out(kNpyMagic, kNpyMagicLen);
  out += char(1);
  out += char(0);
  out += char(dict.size() & 0xff);
  out += char(dict.size() >> 8);
  return out + dict;
}

const std::string& checked_sample_path(const std::string& path) {
  (void)sample_format_of(path);
  return path;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::string read_whole_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(::fileno(f.get()), &st) != 0) throw Error(path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  std::string data(std::size_t(st.st_size), '\0');
  errno = 0;
  const std::size_t got = data.empty() ? 0 : std::fread(data.data(), 1, data.size(), f.get());
  if (got != data.size()) {
    if (std::ferror(f.get())) throw Error(path + ": cannot read: " + std::strerror(errno ? errno : EIO));
    throw Error(path + ": file shrank while being read");
  }
  if (std::fgetc(f.get()) != EOF) throw Error(path + ": file grew while being read");
  return data;
}

// ---- .npy ----

// The subset of Python literal syntax that .npy headers use.
class NpyDict {
 public:
  struct Value {
    enum Kind { kString, kBool, kTuple } kind = kString;
    std::string str;
    bool flag = false;
    std::vector<uint64_t> tuple;
  };

  NpyDict(const std::string& path, std::string_view text) : path_(path), s_(text) {}

  // Parses "{'key': value, ...}" followed by whitespace only.
  std::vector<std::pair<std::string, Value>> parse() {
    std::vector<std::pair<std::string, Value>> items;
    skip_space();
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      std::string key = string_literal();
      skip_space();
      expect(':');
      skip_space();
      items.emplace_back(std::move(key), value());
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    for (; pos_ < s_.size(); ++pos_)
      if (s_[pos_] != ' ' && s_[pos_] != '\n' && s_[pos_] != '\r' && s_[pos_] != '\t')
        fail("unexpected text after the dictionary");
    return items;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": malformed .npy header at byte " + std::to_string(pos_) + ": " + what);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a string");
    const std::size_t start = ++pos_;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' || s_[pos_] == '\n') fail("unsupported character in a string");
      ++pos_;
    }
    if (pos_ >= s_.size()) fail("unterminated string");
    return std::string(s_.substr(start, pos_++ - start));
  }
  uint64_t integer() {
    const char* first = s_.data() + pos_;
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(first, s_.data() + s_.size(), v);
    if (ec != std::errc() || end == first) fail("expected a non-negative integer");
    pos_ += std::size_t(end - first);
    return v;
  }
  Value value() {
    Value v;
    const char c = peek();
    if (c == '\'' || c == '"') {
      v.kind = Value::kString;
      v.str = string_literal();
    } else if (s_.substr(pos_, 4) == "True" || s_.substr(pos_, 5) == "False") {
      v.kind = Value::kBool;
      v.flag = s_[pos_] == 'T';
      pos_ += v.flag ? 4 : 5;
    } else if (c == '(') {
      v.kind = Value::kTuple;
      ++pos_;
      for (;;) {
        skip_space();
        if (peek() == ')') break;
        v.tuple.push_back(integer());
        skip_space();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        if (peek() != ')') fail("expected ',' or ')'");
      }
      ++pos_;
    } else {
      fail("unsupported value");
    }
    return v;
  }

  const std::string& path_;
  std::string_view s_;
  std::size_t pos_ = 0;
};

std::vector<float> read_npy(const std::string& path, const std::string& bytes) {
  const auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };
  const auto u8 = [&](std::size_t i) { return uint32_t(static_cast<unsigned char>(bytes[i])); };
  if (bytes.size() < kNpyMagicLen + 4 || bytes.compare(0, kNpyMagicLen, kNpyMagic, kNpyMagicLen) != 0)
    fail("not a .npy file (bad magic)");
  const uint32_t major = u8(6), minor = u8(7);
  if (major < 1 || major > 3 || minor != 0)
    fail(".npy version " + std::to_string(major) + "." + std::to_string(minor) + " not supported");
  std::size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = u8(8) | u8(9) << 8;
    header_start = 10;
  } else {
    if (bytes.size() < 12) fail("file ends inside the .npy header length");
    header_len = u8(8) | u8(9) << 8 | u8(10) << 16 | u8(11) << 24;
    header_start = 12;
  }
  if (header_len > bytes.size() - header_start)
    fail(".npy header length " + std::to_string(header_len) + " runs past the end of the file");
  const std::string_view header(bytes.data() + header_start, header_len);

  const auto items = NpyDict(path, header).parse();
  const NpyDict::Value *descr = nullptr, *fortran = nullptr, *shape = nullptr;
  for (const auto& [key, value] : items) {
    const NpyDict::Value** slot = key == "descr"           ? &descr
                                  : key == "fortran_order" ? &fortran
                                  : key == "shape"         ? &shape
                                                           : nullptr;
    if (slot == nullptr) fail(".npy header has an unexpected key '" + printable(key) + "'");
    if (*slot != nullptr) fail(".npy header repeats the key '" + key + "'");
    *slot = &value;
  }
  if (!descr || !fortran || !shape) fail(".npy header lacks one of 'descr', 'fortran_order', 'shape'");
  if (descr->kind != NpyDict::Value::kString) fail(".npy descr is not a string");
  std::size_t item = 0;
  if (descr->str == "<f4") item = 4;
  else if (descr->str == "<f8") item = 8;
  else fail("dtype '" + printable(descr->str) + "' not supported, expected '<f4' or '<f8'");
  if (fortran->kind != NpyDict::Value::kBool) fail(".npy fortran_order is not True or False");
  if (fortran->flag) fail("fortran_order True not supported, expected C order");
  if (shape->kind != NpyDict::Value::kTuple) fail(".npy shape is not a tuple");
  std::string shape_text = "(";
  for (std::size_t i = 0; i < shape->tuple.size(); ++i)
    shape_text += (i ? ", " : "") + std::to_string(shape->tuple[i]);
  shape_text += shape->tuple.size() == 1 ? ",)" : ")";
  if (shape->tuple.size() != 2 || shape->tuple[1] != 2) fail("shape " + shape_text + " is not (N, 2)");

  const uint64_t n = shape->tuple[0];
  const std::size_t data_start = header_start + header_len;
  const uint64_t have = bytes.size() - data_start;
  const uint64_t row = 2 * item;
  if (n > have / row || n * row != have)
    fail("data holds " + std::to_string(have) + " bytes but shape " + shape_text + " of " + descr->str + " needs " +
         (n > std::numeric_limits<uint64_t>::max() / row ? std::string("more") : std::to_string(n * row)));

  std::vector<float> out(std::size_t(2 * n));
  const char* data = bytes.data() + data_start;
  for (std::size_t i = 0; i < out.size(); ++i) {
    double v = 0;
    if (item == 4) {
      float f = 0;
      std::memcpy(&f, data + 4 * i, 4);
      v = f;
    } else {
      std::memcpy(&v, data + 8 * i, 8);
    }
    if (!std::isfinite(v) || std::fabs(v) > double(std::numeric_limits<float>::max()))
      fail("row " + std::to_string(i / 2) + ", column " + std::to_string(i % 2) + ": value " +
           (std::isnan(v) ? std::string("nan") : std::isinf(v) ? std::string("inf") : std::string("out of range")) +
           (std::isfinite(v) ? " for float32" : " is not finite"));
    out[i] = float(v);
  }
  return out;
}

// ---- CSV ----

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

enum class Parse { kOk, kNotNumber, kOutOfRange };

Parse parse_float(std::string_view s, float& v) {
  s = trim(s);
  if (s.size() >= 2 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  if (s.empty()) return Parse::kNotNumber;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (end != s.data() + s.size()) return Parse::kNotNumber;
  if (ec == std::errc::result_out_of_range) return Parse::kOutOfRange;
  if (ec != std::errc()) return Parse::kNotNumber;
  return Parse::kOk;
}

std::vector<float> read_csv(const std::string& path, std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
  if (text.empty()) throw Error(path + ": empty file");
  std::vector<float> out;
  std::size_t line_no = 0, blank_line = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    const auto fail = [&](const std::string& what) {
      throw Error(path + ": line " + std::to_string(line_no) + ": " + what);
    };
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) {
      if (blank_line == 0) blank_line = line_no;
      continue;
    }
    if (blank_line != 0) {
      line_no = blank_line;
      fail("empty line");
    }
    std::string_view fields[2];
    std::size_t count = 0;
    for (std::string_view rest = line;;) {
      const std::size_t comma = rest.find(',');
      if (count < 2) fields[count] = rest.substr(0, comma);
      ++count;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (count != 2) fail("expected 2 comma-separated fields, got " + std::to_string(count));
    float v[2] = {0, 0};
    const Parse p[2] = {parse_float(fields[0], v[0]), parse_float(fields[1], v[1])};
    if (line_no == 1 && p[0] == Parse::kNotNumber && p[1] == Parse::kNotNumber) continue;  // header
    for (int i = 0; i < 2; ++i) {
      const std::string field = "field " + std::to_string(i + 1) + " \"" + printable(trim(fields[i])) + "\"";
      if (p[i] == Parse::kNotNumber) fail(field + " is not a number");
      if (p[i] == Parse::kOutOfRange) fail(field + " is out of float32 range");
      if (!std::isfinite(v[i])) fail(field + " is not finite");
    }
    out.push_back(v[0]);
    out.push_back(v[1]);
  }
  return out;
}

}  // namespace

SampleFormat sample_format_of(const std::string& path) {
  const std::string l = lower(path);
  if (ends_with(l, ".npy")) return SampleFormat::kNpy;
  if (ends_with(l, ".csv")) return SampleFormat::kCsv;
  throw Error(path + ": unknown sample file format, expected a .npy or .csv extension");
}

SampleWriter::SampleWriter(const std::string& path, int64_t n)
    : file_(checked_sample_path(path)), format_(sample_format_of(path)), n_(n) {
  if (n < 0) throw Error(path + ": negative point count " + std::to_string(n));
  if (format_ == SampleFormat::kNpy) {
    const std::string header = npy_header(n);
    file_.write(header.data(), header.size());
  } else {
    text_ = "x,y\n";
  }
}

void SampleWriter::write(const float* xy, int64_t count) {
  if (count < 0 || count > n_ - written_)
    throw Error(file_.path() + ": writing " + std::to_string(count) + " more points after " +
                std::to_string(written_) + " exceeds the announced " + std::to_string(n_));
  if (format_ == SampleFormat::kNpy) {
    file_.write(xy, std::size_t(count) * 2 * sizeof(float));
  } else {
    char buf[64];
    for (int64_t i = 0; i < count; ++i) {
      const int len = std::snprintf(buf, sizeof buf, "%.9g,%.9g\n", double(xy[2 * i]), double(xy[2 * i + 1]));
      text_.append(buf, std::size_t(len));
      if (text_.size() >= kCsvFlushBytes) {
        file_.write(text_.data(), text_.size());
        text_.clear();
      }
    }
  }
  written_ += count;
}

void SampleWriter::commit() {
  if (written_ != n_)
    throw Error(file_.path() + ": wrote " + std::to_string(written_) + " points but announced " +
                std::to_string(n_));
  if (!text_.empty()) {
    file_.write(text_.data(), text_.size());
    text_.clear();
  }
  file_.commit();
}

std::vector<float> read_samples(const std::string& path) {
  const SampleFormat format = sample_format_of(path);
  const std::string bytes = read_whole_file(path);
  return format == SampleFormat::kNpy ? read_npy(path, bytes) : read_csv(path, bytes);
}

}  // namespace ddpm::io
