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
  tmp_path_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(g_temp_counter++);
  const int fd = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) fail(path_, "cannot create file", errno);
  file_ = ::fdopen(fd, "wb");
  if (file_ == nullptr) {
    const int err = errno;
    (void)::close(fd);
    (void)::unlink(tmp_path_.c_str());
    fail(path_, "cannot open file", err);
  }
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) (void)std::fclose(file_);
  if (!committed_) (void)::unlink(tmp_path_.c_str());
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

void write_file_atomic(const std::string& path, const void* data, std::size_t bytes) {
  AtomicFile file(path);
  file.write(data, bytes);
  file.commit();
}

}  // namespace ddpm::io
