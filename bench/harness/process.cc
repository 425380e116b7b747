#include "bench/harness/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "myelin/base/clock.h"

namespace myelin::bench::harness {

std::string shell_quote(std::string_view s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

Result<CommandResult> run_command(const std::string& command, const CommandOptions& options) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno_error("run " + command + ": pipe", errno);
  // Built before fork: the child may only make async-signal-safe calls.
  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return errno_error("run " + command + ": fork", e);
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(fds[1], 1) < 0 || ::dup2(fds[1], 2) < 0)
      ::_exit(127);
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: whichever runs first, the group exists before a kill
  ::close(fds[1]);

  CommandResult r;
  const MonoTime deadline = mono_now() + options.timeout;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - mono_now());
    if (left.count() <= 0) {
      r.timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), INT_MAX)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // the deadline check above ends the wait
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of output: the command (and its children) closed it
    const std::size_t room = options.max_output - std::min(options.max_output, r.output.size());
    r.output.append(buf, std::min(room, static_cast<std::size_t>(n)));
    if (static_cast<std::size_t>(n) > room) r.truncated = true;
  }
  ::close(fds[0]);
  int status = 0;
  // A command may close its output and keep running: the deadline holds for
  // the wait too.
  for (;;) {
    if (r.timed_out) ::kill(-pid, SIGKILL);
    const pid_t w = ::waitpid(pid, &status, r.timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return errno_error("run " + command + ": waitpid", errno);
    if (w == 0) {
      if (mono_now() >= deadline) {
        r.timed_out = true;
      } else {
        ::usleep(1000);
      }
    }
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

Result<std::string> executable_directory() {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return errno_error("readlink /proc/self/exe", errno);
  std::string p(path, static_cast<std::size_t>(n));
  const std::size_t slash = p.rfind('/');
  if (slash == std::string::npos) return internal_error("/proc/self/exe has no directory: " + p);
  return p.substr(0, slash);
}

}  // namespace myelin::bench::harness
