// mcpmw-splice-relay: the floor for any stdio proxy.
//
//   mcpmw-splice-relay -- CMD ARGS...
//
// Spawns CMD with a pipe on its stdin and its stdout, and moves bytes stdin → child and
// child → stdout with splice(2), one blocking thread per direction. Nothing is parsed, framed or
// copied through user space, so what a real proxy costs on top of this is the price of
// understanding the messages. At end of stdin the child's stdin is closed; when the child closes
// its stdout the relay reaps it and exits with its status. stderr is inherited.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace mcpmw::bench {
namespace {

constexpr size_t kSpliceBytes = 1 << 20;

// strerror(3) is not thread-safe and the two pumps run on two threads.
std::string ErrnoText(int err) {
  char buf[128];
  return ::strerror_r(err, buf, sizeof(buf));  // the GNU variant: returns the text
}

// Copies with read/write; only for a stdin or stdout splice(2) refuses (a terminal, O_APPEND).
void Copy(int from, int to) {
  std::vector<char> buf(size_t{64} * 1024);
  while (true) {
    ssize_t n = ::read(from, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(to, buf.data() + off, n - off);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w < 0) {
        return;
      }
      off += w;
    }
  }
}

// Moves bytes until end of input or a write error (the reader went away).
void Pump(int from, int to) {
  bool moved_any = false;
  while (true) {
    // Pipe-to-pipe splice returns as soon as any bytes are there, so latency is not traded for
    // batching; SPLICE_F_MOVE is a hint the kernel may ignore.
    ssize_t n = ::splice(from, nullptr, to, nullptr, kSpliceBytes, SPLICE_F_MOVE);
    if (n > 0) {
      moved_any = true;
      continue;
    }
    if (n == 0) {
      return;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EINVAL && !moved_any) {
      std::fprintf(stderr, "mcpmw-splice-relay: splice refused (%s), copying instead\n",
                   ErrnoText(errno).c_str());
      Copy(from, to);
    }
    return;
  }
}

int Run(int argc, char** argv) {
  int cmd = 1;
  while (cmd < argc && std::strcmp(argv[cmd], "--") != 0) {
    ++cmd;
  }
  ++cmd;
  if (cmd >= argc) {
    std::fprintf(stderr, "usage: mcpmw-splice-relay -- CMD ARGS...\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  int to_child[2];
  int from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) {
    std::perror("mcpmw-splice-relay: pipe2");
    return 1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("mcpmw-splice-relay: fork");
    return 1;
  }
  if (pid == 0) {
    std::signal(SIGPIPE, SIG_DFL);
    if (::dup2(to_child[0], STDIN_FILENO) < 0 || ::dup2(from_child[1], STDOUT_FILENO) < 0) {
      _exit(127);
    }
    ::execvp(argv[cmd], argv + cmd);
    std::fprintf(stderr, "mcpmw-splice-relay: exec %s: %s\n", argv[cmd], ErrnoText(errno).c_str());
    _exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  int child_in = to_child[1];
  int child_out = from_child[0];

  // Detached: when the child is gone this thread may still sit in a read of our stdin, and the
  // process exits under it.
  std::thread([child_in] {
    Pump(STDIN_FILENO, child_in);
    ::close(child_in);
  }).detach();
  Pump(child_out, STDOUT_FILENO);
  ::close(child_out);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

}  // namespace
}  // namespace mcpmw::bench

int main(int argc, char** argv) { return mcpmw::bench::Run(argc, argv); }
