// What the fuzz targets share: a scratch file that holds each input (the
// loaders take paths, and reading the file is part of what is fuzzed), the
// contract every loader error must meet, and a way to report a broken contract
// that still reaches the terminal when libFuzzer runs with -close_fd_mask=3.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>

#include "ddpm/error.hpp"

namespace ddpm::fuzz {

// stderr as it was before libFuzzer closed it; static initialisation runs before libFuzzer's main.
inline const int kReportFd = ::dup(2);

// A broken contract: says what on the saved stderr, then aborts so that
// libFuzzer keeps the input as a crash.
[[noreturn]] inline void fail(const std::string& what) {
  const std::string line = "fuzz target: " + what + "\n";
  if (kReportFd >= 0) (void)!::write(kReportFd, line.data(), line.size());
  std::abort();
}

// Every loader error is a ddpm::Error of one line that starts with the path.
inline void check_error(const ddpm::Error& e, const std::string& path) {
  const std::string_view msg = e.what();
  if (msg.find('\n') != std::string_view::npos || msg.find('\r') != std::string_view::npos)
    fail("error message is not one line: " + std::string(msg));
  if (msg.substr(0, path.size() + 2) != path + ": ")
    fail("error message does not start with the path: " + std::string(msg));
}

// Runs load(), which may throw ddpm::Error only; true when it returned.
template <class F>
bool loads(const std::string& path, F&& load) {
  try {
    load();
    return true;
  } catch (const ddpm::Error& e) {
    check_error(e, path);
  } catch (const std::exception& e) {
    fail(std::string("exception other than ddpm::Error: ") + e.what());
  } catch (...) {
    fail("exception of a type not derived from std::exception");
  }
  return false;
}

// One file under $TMPDIR, else on tmpfs when there is one, else in /tmp, in a
// directory of its own so that parallel fuzzers do not share it; removed at
// a normal exit (tools/run_fuzz.sh points TMPDIR at a directory it removes
// itself, for the files of crashed runs).
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& name) {
    std::string base = "/tmp";
    struct stat st {};
    if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0')
      base = tmp;
    else if (::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode))
      base = "/dev/shm";
    std::string dir = base + "/ddpm_fuzz_XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) fail("mkdtemp " + dir + ": " + std::strerror(errno));
    dir_ = dir;
    path_ = dir + "/" + name;
  }
  ~ScratchFile() {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::string& path() const { return path_; }

  // Replaces the file's contents with the given pieces, in order.
  void write(std::initializer_list<std::string_view> pieces) {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail("open " + path_ + ": " + std::strerror(errno));
    for (std::string_view p : pieces)
      while (!p.empty()) {
        const ssize_t n = ::write(fd, p.data(), p.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write " + path_ + ": " + std::strerror(errno));
        p.remove_prefix(std::size_t(n));
      }
    ::close(fd);
  }

 private:
  std::string dir_, path_;
};

inline std::string_view bytes(const uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace ddpm::fuzz
