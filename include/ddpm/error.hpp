// The one exception type of the project: a one-line message for the user.
#pragma once

#include <stdexcept>
#include <string>

namespace ddpm {

struct Error : std::runtime_error {
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace ddpm
