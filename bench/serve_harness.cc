#include "bench/serve_harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "myelin/serve/http_client.h"

extern char** environ;

namespace myelin::bench::serve_harness {
namespace {

std::vector<char*> c_argv(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// In the child: new process group, extra env, exec. Never returns.
[[noreturn]] void exec_child(const std::vector<std::string>& argv,
                             const std::vector<std::string>& env) {
  ::setpgid(0, 0);
  for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
  auto args = c_argv(argv);
  ::execvp(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", argv[0].c_str(), std::strerror(errno));
  ::_exit(127);
}

// utime + stime of one /proc/<pid>/stat, if its group is `pgid`.
std::optional<double> proc_cpu(const std::string& pid, pid_t pgid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::string f;
  std::vector<std::string> fields;
  while (rest >> f) fields.push_back(f);
  // fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15.
  if (fields.size() < 13 || std::stol(fields[2]) != pgid) return std::nullopt;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

std::optional<double> proc_rss(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;
  }
  return std::nullopt;
}

template <typename F>
void each_pid(F f) {
  DIR* d = ::opendir("/proc");
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') f(std::string(e->d_name));
  }
  ::closedir(d);
}

}  // namespace

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    stop();
    pid_ = o.pid_;
    name_ = std::move(o.name_);
    o.pid_ = -1;
  }
  return *this;
}

Result<Process> Process::spawn(const std::vector<std::string>& argv, const std::string& log_path,
                               const std::vector<std::string>& env) {
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return errno_error("open " + log_path, errno);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log);
    return errno_error("fork", errno);
  }
  if (pid == 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    exec_child(argv, env);
  }
  ::close(log);
  ::setpgid(pid, pid);
  Process p;
  p.pid_ = pid;
  p.name_ = argv[0];
  return p;
}

bool Process::running() const {
  if (pid_ <= 0) return false;
  int status = 0;
  return ::waitpid(pid_, &status, WNOHANG) == 0;
}

int Process::stop(Nanos grace) {
  if (pid_ <= 0) return 0;
  ::kill(-pid_, SIGTERM);
  const MonoTime deadline = mono_now() + grace;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || r < 0) break;
    if (mono_now() > deadline) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      status = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(-pid_, SIGKILL);  // stragglers of the group (uvicorn workers, nginx)
  pid_ = -1;
  return status;
}

double group_cpu_seconds(pid_t pgid) {
  double total = 0;
  each_pid([&](const std::string& p) {
    if (auto c = proc_cpu(p, pgid)) total += *c;
  });
  return total;
}

double group_rss_bytes(pid_t pgid) {
  double total = 0;
  each_pid([&](const std::string& p) {
    if (proc_cpu(p, pgid)) total += proc_rss(p).value_or(0);
  });
  return total;
}

double Process::cpu_seconds() const { return group_cpu_seconds(pid_); }

namespace {
cpu_set_t cpus_for(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  for (long c = 0; c < n; ++c) {
    if (cpu < 0 || c == cpu) CPU_SET(static_cast<int>(c), &set);
  }
  return set;
}
}  // namespace

void pin_group(pid_t pgid, int cpu) {
  const cpu_set_t set = cpus_for(cpu);
  each_pid([&](const std::string& p) {
    if (!proc_cpu(p, pgid)) return;
    DIR* d = ::opendir(("/proc/" + p + "/task").c_str());
    if (!d) return;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] >= '0' && e->d_name[0] <= '9') {
        ::sched_setaffinity(static_cast<pid_t>(std::stol(e->d_name)), sizeof(set), &set);
      }
    }
    ::closedir(d);
  });
}

void pin_self(int cpu) {
  const cpu_set_t set = cpus_for(cpu);
  ::sched_setaffinity(0, sizeof(set), &set);
}

std::optional<double> Process::rss_bytes() const { return proc_rss(std::to_string(pid_)); }

double Process::group_rss_bytes() const { return serve_harness::group_rss_bytes(pid_); }

Result<std::string> run_capture(const std::vector<std::string>& argv, Nanos timeout,
                                const std::vector<std::string>& env) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno_error("pipe", errno);
  const pid_t pid = ::fork();
  if (pid < 0) return errno_error("fork", errno);
  if (pid == 0) {
    ::dup2(fds[1], 1);
    exec_child(argv, env);
  }
  ::close(fds[1]);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::string out;
  const MonoTime deadline = mono_now() + timeout;
  char buf[4096];
  int status = 0;
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (mono_now() > deadline) {
      ::kill(-pid, SIGKILL);
      ::close(fds[0]);
      ::waitpid(pid, &status, 0);
      return deadline_exceeded(argv[0] + ": still running after its time limit");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::close(fds[0]);
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return internal_error(argv[0] + " failed (status " + std::to_string(status) +
                          "): " + out.substr(0, 500));
  }
  return out;
}

Result<std::uint16_t> free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const int e = errno;
    ::close(fd);
    return errno_error("free port", e);
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

Result<Nanos> wait_ready(std::uint16_t port, const std::string& path, Nanos timeout) {
  const MonoTime start = mono_now();
  while (mono_now() - start < timeout) {
    auto c = serve::HttpClient::connect("127.0.0.1", port, std::chrono::milliseconds(200));
    if (c) {
      auto r = (*c)->request("GET", path, "", {}, std::chrono::seconds(1));
      if (r && r->status == 200) return mono_now() - start;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return deadline_exceeded("127.0.0.1:" + std::to_string(port) + path + " not ready in time");
}

Result<nlohmann::json> last_json_line(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  nlohmann::json found;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) found = std::move(j);
  }
  if (found.is_null()) return parse_error("no JSON line in: " + text.substr(0, 300));
  return found;
}

Result<std::string> scrape(std::uint16_t port) {
  MYELIN_ASSIGN_OR_RETURN(auto c, serve::HttpClient::connect("127.0.0.1", port));
  MYELIN_ASSIGN_OR_RETURN(auto r, c->request("GET", "/metrics"));
  if (r.status != 200) return unavailable("/metrics: HTTP " + std::to_string(r.status));
  return std::move(r.body);
}

namespace {
// Lines "name{labels...} value" whose labels contain `labels`.
template <typename F>
void each_sample(const std::string& text, const std::string& name, const std::string& labels, F f) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    const std::string rest = line.substr(name.size());
    if (!rest.empty() && rest[0] != '{' && rest[0] != ' ') continue;
    const auto close = rest.find('}');
    const std::string lab = close == std::string::npos ? "" : rest.substr(0, close + 1);
    if (!labels.empty() && lab.find(labels) == std::string::npos) continue;
    const auto sp = line.rfind(' ');
    f(lab, std::stod(line.substr(sp + 1)));
  }
}
}  // namespace

std::optional<PromHistogram> find_histogram(const std::string& text, const std::string& name,
                                            const std::string& labels) {
  PromHistogram h;
  each_sample(text, name + "_bucket", labels, [&](const std::string& lab, double v) {
    const auto le = lab.find("le=\"");
    if (le == std::string::npos) return;
    const std::string bound = lab.substr(le + 4, lab.find('"', le + 4) - le - 4);
    h.buckets.emplace_back(bound == "+Inf" ? 1e300 : std::stod(bound), v);
  });
  if (h.buckets.empty()) return std::nullopt;
  each_sample(text, name + "_sum", labels, [&](const std::string&, double v) { h.sum = v; });
  each_sample(text, name + "_count", labels, [&](const std::string&, double v) { h.count = v; });
  return h;
}

std::optional<double> find_value(const std::string& text, const std::string& name,
                                 const std::string& labels) {
  std::optional<double> out;
  each_sample(text, name, labels, [&](const std::string&, double v) { out = v; });
  return out;
}

PromHistogram subtract(const PromHistogram& after, const PromHistogram& before) {
  PromHistogram d = after;
  for (std::size_t i = 0; i < d.buckets.size() && i < before.buckets.size(); ++i) {
    d.buckets[i].second -= before.buckets[i].second;
  }
  d.sum -= before.sum;
  d.count -= before.count;
  return d;
}

double quantile(const PromHistogram& h, double q) {
  if (h.buckets.empty() || h.count <= 0) return 0;
  const double rank = q * h.buckets.back().second;
  double lo_bound = 0, lo_count = 0;
  for (const auto& [le, cum] : h.buckets) {
    if (cum >= rank) {
      if (le >= 1e300) return lo_bound;  // in +Inf: the last finite bound
      const double in_bucket = cum - lo_count;
      const double frac = in_bucket > 0 ? (rank - lo_count) / in_bucket : 1;
      return lo_bound + (le - lo_bound) * frac;
    }
    lo_bound = le;
    lo_count = cum;
  }
  return lo_bound;
}

}  // namespace myelin::bench::serve_harness
