// Running Python from a test: the interpreter (DDPM_TEST_PYTHON, default
// Debian's /usr/bin/python3, where python3-numpy, python3-torch and
// tools/install_deps.sh's safetensors are installed) and the scripts beside
// the tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ddpm::test_python {

inline std::string python() {
  const char* env = std::getenv("DDPM_TEST_PYTHON");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/python3";
}

inline std::string quoted(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The exit status of the command, or -1 when it did not exit normally.
inline int run(const std::string& command) {
  std::fflush(nullptr);
  const int status = std::system(command.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline bool python_has(const std::string& module) {
  return run(quoted(python()) + " -c 'import " + module + "' >/dev/null 2>&1") == 0;
}

// CI (CI=true) installs every module the tests import (tools/install_deps.sh):
// there a missing one fails the test instead of skipping it.
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::strcmp(ci, "true") == 0;
}

// In a test body: skips it, with the reason, where the interpreter cannot import
// `module` (a failure in CI).
#define DDPM_NEED_PYTHON_MODULE(module)                                                                   \
  do {                                                                                                    \
    if (!::ddpm::test_python::python_has(module)) {                                                       \
      if (::ddpm::test_python::in_ci())                                                                   \
        FAIL() << ::ddpm::test_python::python() << " cannot import " << (module)                          \
               << ", which tools/install_deps.sh installs";                                               \
      GTEST_SKIP() << ::ddpm::test_python::python() << " cannot import " << (module)                      \
                   << " (tools/install_deps.sh installs it)";                                             \
    }                                                                                                     \
  } while (0)

// A script of tests/io.
inline std::string script(const std::string& name) { return std::string(DDPM_SOURCE_DIR) + "/tests/io/" + name; }

// Runs `script args...` (each argument quoted); the exit status.
inline int run_script(const std::string& name, const std::string& quoted_args) {
  return run(quoted(python()) + " " + quoted(script(name)) + " " + quoted_args);
}

}  // namespace ddpm::test_python
