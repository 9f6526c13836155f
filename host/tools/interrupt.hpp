// SIGINT and SIGTERM in the tools. By default a signal removes the tool's
// unfinished outputs (io::remove_pending_temporaries) and exits at once with
// 128 + the signal number, so an interrupted run never leaves a partial file.
// A loop that can stop cleanly (training, which then writes a checkpoint)
// defers signals instead: the first is only recorded, a second exits at once.
#pragma once

namespace ddpm::tools {

// Installs the handlers; `tool` prefixes the message printed on exit.
void install_interrupt_handlers(const char* tool);

// While one exists, signals are recorded instead of acted on.
class DeferInterrupts {
 public:
  DeferInterrupts();
  ~DeferInterrupts();
  DeferInterrupts(const DeferInterrupts&) = delete;
  DeferInterrupts& operator=(const DeferInterrupts&) = delete;
};

// The signal recorded while deferred (SIGINT or SIGTERM), or 0.
int pending_interrupt();

// "SIGINT", "SIGTERM", or "a signal".
const char* signal_name(int sig);

}  // namespace ddpm::tools
