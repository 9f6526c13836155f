// Runs a command-line tool in a scratch directory and captures its output.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host/io/samples_io.hpp"

namespace ddpm::testing {

struct Result {
  int exit_code;
  std::string out, err;
};

// A fresh empty directory, removed at scope exit.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    path = std::filesystem::temp_directory_path() / ("ddpm_test_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path)) names.push_back(e.path().filename().string());
    return names;
  }
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs `binary args` with the working directory `cwd`; stdout and stderr captured separately.
inline Result run(const std::string& binary, const std::string& args, const ScratchDir& cwd) {
  const std::string out = cwd / ".stdout", err = cwd / ".stderr";
  const std::string cmd = "cd '" + cwd.path.string() + "' && '" + binary + "' " + args + " > '" + out + "' 2> '" + err + "'";
  const int status = std::system(cmd.c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

// A tool started in the background (fork + exec, no shell), for tests that
// signal it mid-run; stdout and stderr go to the given files.
class Background {
 public:
  Background(const std::string& binary, const std::vector<std::string>& args, const std::string& cwd,
             const std::string& out_path, const std::string& err_path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::chdir(cwd.c_str()) != 0) ::_exit(126);
      if (!std::freopen(out_path.c_str(), "w", stdout) || !std::freopen(err_path.c_str(), "w", stderr)) ::_exit(126);
      std::vector<char*> argv{const_cast<char*>(binary.c_str())};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() {
    if (pid_ > 0 && !waited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  bool started() const { return pid_ > 0; }
  void signal(int sig) const { ::kill(pid_, sig); }
  bool running() const { return !waited_ && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

  // The exit code, or 128 + the signal that killed it.
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    waited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  bool waited_ = false;
};

// Polls until pred() holds or `seconds` pass; returns whether it held.
template <class Pred>
bool wait_until(Pred pred, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

inline int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Mean and population standard deviation of interleaved (x, y) points, in
// double (the test's own: the tools' normalization is what it checks).
struct Moments2 {
  double mean[2], sd[2];
};
inline Moments2 moments_of(const std::vector<float>& xy) {
  Moments2 m{};
  const std::size_t n = xy.size() / 2;
  for (int d = 0; d < 2; ++d) {
    double sum = 0, sq = 0;
    for (std::size_t i = 0; i < n; ++i) sum += xy[2 * i + d];
    m.mean[d] = sum / double(n);
    for (std::size_t i = 0; i < n; ++i) sq += (xy[2 * i + d] - m.mean[d]) * (xy[2 * i + d] - m.mean[d]);
    m.sd[d] = std::sqrt(sq / double(n));
  }
  return m;
}

// Interleaved (x, y) points to a sample file (.npy or .csv by the name).
inline void write_points(const std::string& path, const std::vector<float>& xy) {
  io::SampleWriter w(path, int64_t(xy.size() / 2));
  w.write(xy.data(), int64_t(xy.size() / 2));
  w.commit();
}

}  // namespace ddpm::testing
