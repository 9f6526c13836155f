#include "host/io/atomic_file.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "io_test_util.hpp"

namespace ddpm::io {
namespace {

using test::read_bytes;
using test::TempDir;
using test::throws_error;
using test::write_bytes;

std::string random_bytes(std::mt19937& rng, std::size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = char(rng() & 0xff);
  return s;
}

TEST(AtomicFile, WritesAndCommits) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::string path = dir.file("out.bin");
  const std::string a = random_bytes(rng, 1 + rng() % 5000), b = random_bytes(rng, 1 + rng() % 100000);
  {
    AtomicFile f(path);
    EXPECT_EQ(f.path(), path);
    f.write(a.data(), a.size());
    f.write(b.data(), 0);
    f.write(b.data(), b.size());
    // Until commit the target does not exist; only the temporary beside it.
    const auto names = dir.entries();
    ASSERT_EQ(names.size(), 1u);
    EXPECT_EQ(names[0].rfind("out.bin.tmp." + std::to_string(::getpid()) + ".", 0), 0u) << names[0];
    f.commit();
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
  EXPECT_EQ(read_bytes(path), a + b);
}

TEST(AtomicFile, AbandonedFileLeavesNothing) {
  TempDir dir;
  {
    AtomicFile f(dir.file("out.bin"));
    f.write("hello", 5);
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, ReplacesOnlyOnCommit) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  write_bytes(path, "old contents");
  {
    AtomicFile f(path);
    f.write("new", 3);
    EXPECT_EQ(read_bytes(path), "old contents");
  }
  EXPECT_EQ(read_bytes(path), "old contents");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
  AtomicFile f(path);
  f.write("new", 3);
  f.commit();
  EXPECT_EQ(read_bytes(path), "new");
}

TEST(AtomicFile, DistinctTemporariesForTheSameTarget) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  AtomicFile a(path), b(path);
  a.write("a", 1);
  b.write("b", 1);
  EXPECT_EQ(dir.entries().size(), 2u);
  a.commit();
  b.commit();
  EXPECT_EQ(read_bytes(path), "b");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, WriteAtPatchesEarlierBytes) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  AtomicFile f(path);
  f.write("0123456789", 10);
  f.write_at(2, "ab", 2);
  f.write("XY", 2);  // appends after the patch, not at offset 4
  f.write_at(11, "Z", 1);
  EXPECT_TRUE(throws_error([&] { f.write_at(11, "123", 3); }, {path}));
  EXPECT_TRUE(throws_error([&] { f.write_at(100, "1", 1); }, {path}));
  f.commit();
  EXPECT_EQ(read_bytes(path), "01ab456789XZ");
}

TEST(AtomicFile, MissingDirectoryThrows) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/out.bin");
  EXPECT_TRUE(throws_error([&] { AtomicFile f(path); }, {path, "No such file or directory"}));
  EXPECT_TRUE(throws_error([&] { write_file_atomic(path, "x", 1); }, {path}));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, EmptyPathThrows) {
  EXPECT_TRUE(throws_error([] { AtomicFile f(""); }, {"empty"}));
}

TEST(AtomicFile, RenameFailureThrowsAndCleansUp) {
  TempDir dir;
  // The target became a non-empty directory after the file was opened:
  // rename(2) cannot replace it.
  const std::string path = dir.file("target");
  AtomicFile f(path);
  f.write("data", 4);
  std::filesystem::create_directory(path);
  write_bytes(path + "/inside", "keep");
  EXPECT_TRUE(throws_error([&] { f.commit(); }, {path, "rename"}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"target"});
  EXPECT_EQ(read_bytes(path + "/inside"), "keep");
  // The failed file cannot be committed again.
  EXPECT_TRUE(throws_error([&] { f.commit(); }, {path}));
  EXPECT_TRUE(throws_error([&] { f.write("x", 1); }, {path}));
}

TEST(AtomicFile, OnlyRegularFilesAreTargets) {
  TempDir dir;
  // Renaming over a pipe or a device would replace the node itself.
  const std::string fifo = dir.file("pipe"), sub = dir.file("sub");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::filesystem::create_directory(sub);
  EXPECT_TRUE(throws_error([&] { AtomicFile f(fifo); }, {fifo + ": is not a regular file"}));
  EXPECT_TRUE(throws_error([&] { AtomicFile f(sub); }, {sub + ": is a directory"}));
  EXPECT_TRUE(throws_error([&] { write_file_atomic(fifo, "x", 1); }, {fifo}));
  struct stat st;
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"pipe", "sub"}));
}

TEST(AtomicFile, PendingTemporariesAreRemovedOnRequest) {
  TempDir dir;
  write_file_atomic(dir.file("done"), "kept", 4);
  AtomicFile a(dir.file("a")), b(dir.file("b"));
  a.write("x", 1);
  EXPECT_EQ(dir.entries().size(), 3u);  // done and two temporaries
  remove_pending_temporaries();           // what the interrupt handler does
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"done"});
  EXPECT_EQ(read_bytes(dir.file("done")), "kept");
  // A committed file is no longer pending: it stays.
  AtomicFile c(dir.file("c"));
  c.write("y", 1);
  c.commit();
  remove_pending_temporaries();
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"c", "done"}));
}

TEST(AtomicFile, CommitTwiceThrows) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  AtomicFile f(path);
  f.write("x", 1);
  f.commit();
  EXPECT_TRUE(throws_error([&] { f.commit(); }, {path}));
  EXPECT_EQ(read_bytes(path), "x");
}

TEST(AtomicFile, WriteFileAtomic) {
  TempDir dir;
  const std::string path = dir.file("whole.txt");
  write_file_atomic(path, "hello\n", 6);
  EXPECT_EQ(read_bytes(path), "hello\n");
  write_file_atomic(path, "", 0);
  EXPECT_EQ(read_bytes(path), "");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"whole.txt"});
}

// A full disk, simulated with a file size limit: write(2) fails with EFBIG
// once SIGXFSZ is ignored. Runs in a child so the limit does not leak.
// Exit codes: 0 pass, 1 no error, 2 wrong message, 3 temporary left,
// 4 target created, 5 a second commit succeeded.
int disk_full_child(const std::string& dir, const std::string& path, bool large) {
  ::signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{4096, 4096};
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
  {
    AtomicFile f(path);
    std::string msg;
    try {
      // A large write fails inside write(); small ones when a buffer is flushed.
      const std::string chunk(large ? 1 << 20 : 100, 'z');
      for (int i = 0; i < (large ? 1 : 100); ++i) f.write(chunk.data(), chunk.size());
      f.commit();
      return 1;
    } catch (const ddpm::Error& e) {
      msg = e.what();
    }
    if (msg.find(path) == std::string::npos || msg.find("File too large") == std::string::npos) return 2;
    try {
      f.commit();  // a file that lost data must never be renamed into place
      return 5;
    } catch (const ddpm::Error&) {
    }
  }
  if (std::filesystem::exists(path)) return 4;
  if (!std::filesystem::is_empty(dir)) return 3;
  return 0;
}

TEST(AtomicFile, DiskFullThrowsAndLeavesNothing) {
  for (const bool large : {true, false}) {
    SCOPED_TRACE(large ? "one large write" : "many small writes");
    TempDir dir;
    const std::string path = dir.file("big.bin");
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(disk_full_child(dir.path(), path, large));
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child died with status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "see disk_full_child";
    EXPECT_TRUE(dir.entries().empty());
  }
}

}  // namespace
}  // namespace ddpm::io
