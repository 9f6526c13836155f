#include "host/tools/interrupt.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "host/io/atomic_file.hpp"

namespace ddpm::tools {
namespace {

std::atomic<bool> g_deferring{false};
volatile sig_atomic_t g_pending_signal = 0;
char g_message[2][256];  // preformatted for SIGINT and SIGTERM: no formatting in the handler

void on_signal(int sig) {
  if (g_deferring.load() && g_pending_signal == 0) {
    g_pending_signal = sig;
    return;
  }
  io::remove_pending_temporaries();
  const char* msg = g_message[sig == SIGTERM ? 1 : 0];
  (void)!::write(STDERR_FILENO, msg, std::strlen(msg));
  ::_exit(128 + sig);
}

}  // namespace

void install_interrupt_handlers(const char* tool) {
  const int sigs[2] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; ++i) {
    std::snprintf(g_message[i], sizeof g_message[i], "\n%s: interrupted by %s; unfinished outputs removed\n", tool,
                  signal_name(sigs[i]));
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // a deferred signal must not fail the writes in flight with EINTR
    sigaction(sigs[i], &sa, nullptr);
  }
}

DeferInterrupts::DeferInterrupts() { g_deferring.store(true); }
DeferInterrupts::~DeferInterrupts() { g_deferring.store(false); }

int pending_interrupt() { return g_pending_signal; }

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

}  // namespace ddpm::tools
