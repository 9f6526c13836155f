// Text taken from a file, made safe for a one-line error message: control
// and non-ASCII bytes escaped as \xNN, cut after `max` bytes with "...".
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace ddpm::io {

inline std::string printable(std::string_view s, std::size_t max = 120) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace ddpm::io
