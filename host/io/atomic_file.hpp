// Outputs are written to a temporary file beside the target and renamed into
// place only when complete, so a failure never leaves a partial file and never
// clobbers a good one.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace ddpm::io {

class AtomicFile {
 public:
  // Opens "<path>.tmp.<pid>.<n>" for writing; throws ddpm::Error naming the path if it cannot.
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  // Appends bytes; throws ddpm::Error (e.g. "disk full") on a short write.
  void write(const void* data, std::size_t bytes);
  // Overwrites bytes at an absolute offset already written (for headers).
  void write_at(std::size_t offset, const void* data, std::size_t bytes);
  // Flushes, fsyncs and renames over the target; throws ddpm::Error on failure.
  void commit();

  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
  int pending_slot_ = -1;  // its entry in the table remove_pending_temporaries() reads
};

// Removes every temporary file of an AtomicFile not yet committed or
// destroyed. Async-signal-safe: an interrupt handler calls it before _exit, so
// an interrupted tool leaves no partial output behind.
void remove_pending_temporaries() noexcept;

// Whole-buffer convenience.
void write_file_atomic(const std::string& path, const void* data, std::size_t bytes);

}  // namespace ddpm::io
