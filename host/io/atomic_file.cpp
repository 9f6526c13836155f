#include "host/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "ddpm/error.hpp"

namespace ddpm::io {
namespace {

std::atomic<unsigned long> g_temp_counter{0};

// The temporaries in flight, in a fixed table a signal handler can read
// without allocating or locking: a slot's path is written while the slot is
// claimed (kFilling) and published with a release store (kLive).
constexpr int kPendingSlots = 64;
enum SlotState : int { kFree, kFilling, kLive };
struct PendingSlot {
  std::atomic<int> state{kFree};
  char path[4096];
};
static_assert(std::atomic<int>::is_always_lock_free, "signal handlers need lock-free atomics");
PendingSlot g_pending[kPendingSlots];

// Returns the slot, or -1 when the path is too long or the table is full (the
// file is then still removed on every ordinary path, just not on a signal).
int add_pending(const std::string& path) {
  if (path.size() >= sizeof(PendingSlot::path)) return -1;
  for (int i = 0; i < kPendingSlots; ++i) {
    int expected = kFree;
    if (g_pending[i].state.compare_exchange_strong(expected, kFilling, std::memory_order_acquire)) {
      std::memcpy(g_pending[i].path, path.c_str(), path.size() + 1);
      g_pending[i].state.store(kLive, std::memory_order_release);
      return i;
    }
  }
  return -1;
}

void drop_pending(int slot) {
  if (slot >= 0) g_pending[slot].state.store(kFree, std::memory_order_release);
}

[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw Error(path + ": " + what + ": " + std::strerror(err != 0 ? err : EIO));
}

std::string directory_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes the rename itself durable. Best effort: some file systems refuse
// fsync on a directory, and the data is already safe by then.
void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  (void)::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw Error("empty output path");
  if (path_.back() == '/') fail(path_, "cannot write", EISDIR);
  // Renaming over a device or a pipe (say /dev/null) would replace the node
  // itself; a directory cannot be replaced. Only regular files are targets.
  struct stat st;
  if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw Error(path_ + ": " + (S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file") +
                "; outputs are written to a temporary file and renamed into place");
  tmp_path_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(g_temp_counter++);
  const int fd = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) fail(path_, "cannot create file", errno);
  pending_slot_ = add_pending(tmp_path_);
  file_ = ::fdopen(fd, "wb");
  if (file_ == nullptr) {
    const int err = errno;
    (void)::close(fd);
    (void)::unlink(tmp_path_.c_str());
    drop_pending(pending_slot_);
    fail(path_, "cannot open file", err);
  }
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) (void)std::fclose(file_);
  if (!committed_) (void)::unlink(tmp_path_.c_str());
  drop_pending(pending_slot_);
}

void AtomicFile::write(const void* data, std::size_t bytes) {
  if (file_ == nullptr) throw Error(path_ + ": write after the file was closed");
  if (bytes == 0) return;
  errno = 0;
  if (std::fwrite(data, 1, bytes, file_) != bytes) fail(path_, "write failed", errno);
}

void AtomicFile::write_at(std::size_t offset, const void* data, std::size_t bytes) {
  if (file_ == nullptr) throw Error(path_ + ": write after the file was closed");
  errno = 0;
  if (std::fflush(file_) != 0) fail(path_, "write failed", errno);
  const off_t end = ::ftello(file_);
  if (end < 0) fail(path_, "cannot query the file position", errno);
  if (offset > std::size_t(end) || bytes > std::size_t(end) - offset)
    throw Error(path_ + ": write_at past the bytes written so far");
  if (::fseeko(file_, off_t(offset), SEEK_SET) != 0) fail(path_, "seek failed", errno);
  errno = 0;
  if (bytes != 0 && std::fwrite(data, 1, bytes, file_) != bytes) fail(path_, "write failed", errno);
  errno = 0;
  if (std::fflush(file_) != 0) fail(path_, "write failed", errno);
  if (::fseeko(file_, end, SEEK_SET) != 0) fail(path_, "seek failed", errno);
}

void AtomicFile::commit() {
  if (committed_) throw Error(path_ + ": already committed");
  if (file_ == nullptr) throw Error(path_ + ": commit after the file was closed");
  std::FILE* f = std::exchange(file_, nullptr);
  const char* what = nullptr;
  int err = 0;
  errno = 0;
  if (std::ferror(f)) {
    what = "an earlier write failed";
    err = EIO;
  } else if (std::fflush(f) != 0) {
    what = "write failed";
    err = errno;
  } else if (::fsync(::fileno(f)) != 0) {
    what = "fsync failed";
    err = errno;
  }
  errno = 0;
  if (std::fclose(f) != 0 && what == nullptr) {
    what = "close failed";
    err = errno;
  }
  if (what == nullptr && ::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    what = "cannot rename the temporary file into place";
    err = errno;
  }
  if (what != nullptr) {
    (void)::unlink(tmp_path_.c_str());
    fail(path_, what, err);
  }
  committed_ = true;
  sync_directory(directory_of(path_));
}

void remove_pending_temporaries() noexcept {
  for (PendingSlot& slot : g_pending)
    if (slot.state.load(std::memory_order_acquire) == kLive) (void)::unlink(slot.path);
}

void write_file_atomic(const std::string& path, const void* data, std::size_t bytes) {
  AtomicFile file(path);
  file.write(data, bytes);
  file.commit();
}

}  // namespace ddpm::io
