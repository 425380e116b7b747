// open_loop: an open-loop HTTP/1.1 load generator for `myelin bench serve`.
//
//   open_loop --port P --rate R --duration S [--host 127.0.0.1] [--path /]
//             [--body FILE] [--connections C] [--warmup S] [--drain S]
//             [--pipeline D] [--json]
//
// Request i is due at t0 + i/R, whatever happened before it: the offered load
// does not drop when the server slows down. A due request goes out on the
// longest-idle keep-alive connection with room (D requests in flight per
// connection, default 1); when none has room it waits, and its latency still
// runs from the time it was due, so a stall shows as latency instead of as
// requests never sent (no coordinated omission). Latency ends at the last byte
// of the response. POST with Content-Type: application/json when --body is
// given, else GET.
//
// Requests due in the first --warmup seconds are sent but not measured; those
// due in the --duration seconds after are. The run ends by itself --drain
// seconds (default 2) after the schedule. Percentiles are nearest-rank over
// every measured request; one without a response (connection failure, or none
// by the end) counts as infinitely slow, so an overloaded server cannot look
// fast: such a percentile prints as null. achieved_rps counts the responses
// that arrived inside the measured window. send_lag is how late requests left
// after they were due (no free connection, or this client falling behind).
// Non-200 responses are timed too and counted by status code.
//
// Loopback targets only (127.0.0.0/8, ::1, localhost). One thread, epoll, a
// timerfd for the schedule; libc and libstdc++ only (http_framing.h reads the
// responses):
//   g++ -std=c++20 -O2 -o open_loop bench/serve/open_loop.cc
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http_framing.h"

namespace {

using myelin::bench::FrameResponse;
using myelin::bench::Framing;

using Nanos = int64_t;
constexpr Nanos kSecond = 1'000'000'000;
constexpr Nanos kRetryDelay = kSecond / 10;  // before reconnecting after a failed connect
constexpr uint64_t kTimerTag = ~uint64_t{0};

Nanos Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * kSecond + ts.tv_nsec;
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "open_loop: %s\n", message.c_str());
  std::exit(1);
}

struct Options {
  std::string host = "127.0.0.1", path = "/", body_file;
  double port = 0, rate = 0, duration = 0, warmup = 0, drain = 2, connections = 1, pipeline = 1;
  bool json = false;
};

Options ParseArgs(int argc, char** argv) {
  Options o;
  const std::pair<const char*, std::string*> texts[] = {
      {"--host", &o.host}, {"--path", &o.path}, {"--body", &o.body_file}};
  const struct {
    const char* flag;
    double* value;
    double lo, hi;
  } numbers[] = {{"--port", &o.port, 1, 65535},
                 {"--rate", &o.rate, 1e-3, 1e7},
                 {"--duration", &o.duration, 1e-3, 3600},
                 {"--warmup", &o.warmup, 0, 3600},
                 {"--drain", &o.drain, 0, 60},
                 {"--connections", &o.connections, 1, 10000},
                 {"--pipeline", &o.pipeline, 1, 1024}};
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    if (i + 1 == argc) Fail("no value after " + std::string(arg));
    const char* value = argv[++i];
    bool known = false;
    for (auto& [flag, text] : texts) {
      if (arg == flag) *text = value, known = true;
    }
    for (auto& n : numbers) {
      if (arg != n.flag) continue;
      char* end = nullptr;
      *n.value = std::strtod(value, &end);
      if (end != value && *end == 's') ++end;  // "3s" reads as 3
      if (end == value || *end != '\0' || !(*n.value >= n.lo && *n.value <= n.hi)) {
        char range[64];
        std::snprintf(range, sizeof range, "[%g, %g]", n.lo, n.hi);
        Fail(std::string(arg) + ": '" + value + "' is not a number in " + range);
      }
      known = true;
    }
    if (!known) Fail("unknown argument '" + std::string(arg) + "' (see the top of open_loop.cc)");
  }
  if (o.port == 0 || o.rate == 0 || o.duration == 0)
    Fail("--port, --rate, --duration are required");
  if (o.path.empty() || o.path[0] != '/' || o.path.find_first_of("\" \\\r\n") != o.path.npos) {
    Fail("--path must start with '/' and hold no space, quote, backslash or line break");
  }
  if (o.rate * (o.warmup + o.duration) > 5e7) Fail("more than 50 million requests asked for");
  return o;
}

// The address of --host if it is loopback; refuses anything else.
sockaddr_storage LoopbackAddress(const Options& o, socklen_t* len, std::string* authority) {
  sockaddr_storage ss{};
  const std::string host = o.host == "localhost" ? "127.0.0.1" : o.host;
  const auto port = htons(static_cast<uint16_t>(o.port));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) Fail(o.host + " is not loopback (127.0.0.0/8)");
    v4->sin_family = AF_INET;
    v4->sin_port = port;
    *len = sizeof(sockaddr_in);
    *authority = host + ":" + std::to_string(ntohs(port));
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) Fail(o.host + " is not loopback (::1)");
    v6->sin6_family = AF_INET6;
    v6->sin6_port = port;
    *len = sizeof(sockaddr_in6);
    *authority = "[::1]:" + std::to_string(ntohs(port));
  } else {
    Fail("--host " + o.host + ": give a loopback address (127.0.0.1, ::1) or localhost");
  }
  return ss;
}

struct Conn {
  int fd = -1;
  bool connecting = false, dead = false, answered = false, polling_out = false;
  Nanos retry_at = 0;
  int parked = 0;  // request slots withheld while dead
  std::string in, out;
  size_t out_sent = 0;
  std::deque<uint64_t> inflight;  // request numbers, oldest first
};

class OpenLoop {
 public:
  explicit OpenLoop(const Options& o) : o_(o) {
    addr_ = LoopbackAddress(o, &addr_len_, &authority_);
    request_ = (o.body_file.empty() ? "GET " : "POST ") + o.path +
               " HTTP/1.1\r\nHost: " + authority_ + "\r\n";
    if (!o.body_file.empty()) {
      std::ifstream file(o.body_file, std::ios::binary);
      if (!file) Fail("--body " + o.body_file + ": " + std::strerror(errno));
      const std::string body(std::istreambuf_iterator<char>(file), {});
      request_ +=
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body;
    } else {
      request_ += "\r\n";
    }
    first_measured_ = static_cast<uint64_t>(std::ceil(o.warmup * o.rate));
    total_ = static_cast<uint64_t>(std::ceil((o.warmup + o.duration) * o.rate));
    latency_.reserve(total_ - first_measured_);  // no reallocation pauses mid-run
    send_lag_.reserve(total_ - first_measured_);
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    epoll_event ev{EPOLLIN, {.u64 = kTimerTag}};
    if (ep_ < 0 || timer_ < 0 || epoll_ctl(ep_, EPOLL_CTL_ADD, timer_, &ev) != 0) {
      Fail(std::string("epoll/timerfd: ") + std::strerror(errno));
    }
    conns_.resize(static_cast<size_t>(o.connections));
  }

  void Run() {
    prctl(PR_SET_TIMERSLACK, 1UL);  // wake when a request is due, not up to 50 us later
    for (size_t c = 0; c < conns_.size(); ++c) {
      Connect(c);
      for (int s = 0; s < o_.pipeline; ++s) free_.push_back(c);
    }
    WaitConnected();
    t0_ = Now() + kSecond / 1000;
    measure_start_ = Due(first_measured_);
    measure_end_ = t0_ + static_cast<Nanos>((o_.warmup + o_.duration) * kSecond);
    const Nanos deadline = measure_end_ + static_cast<Nanos>(o_.drain * kSecond);
    epoll_event events[256];
    for (Nanos now = Now(); now < deadline && (next_ < total_ || in_flight_ > 0); now = Now()) {
      Nanos wake = deadline;
      for (size_t c = 0; dead_ > 0 && c < conns_.size(); ++c) {
        if (conns_[c].dead && conns_[c].retry_at <= now) Revive(c);
        if (conns_[c].dead) wake = std::min(wake, conns_[c].retry_at);
      }
      Dispatch(now);
      if (next_ < total_ && !free_.empty()) wake = std::min(wake, Due(next_));
      ArmTimer(wake);
      const int n = epoll_wait(ep_, events, 256, -1);
      if (n < 0 && errno != EINTR) Fail(std::string("epoll_wait: ") + std::strerror(errno));
      for (int i = 0; i < n; ++i) {
        const uint64_t tag = events[i].data.u64;
        if (tag == kTimerTag) {
          uint64_t expirations;
          if (read(timer_, &expirations, sizeof expirations) > 0) armed_ = -1;  // disarmed
          continue;
        }
        const uint32_t e = events[i].events;
        if (conns_[tag].fd >= 0 && (e & (EPOLLOUT | EPOLLERR))) OnWritable(tag);
        if (conns_[tag].fd >= 0 && (e & (EPOLLIN | EPOLLHUP | EPOLLERR))) OnReadable(tag);
      }
    }
  }

  // One JSON object (--json) or the same fields one a line.
  void Report() {
    const uint64_t measured = total_ - first_measured_, completed = latency_.size();
    std::sort(latency_.begin(), latency_.end());
    std::sort(send_lag_.begin(), send_lag_.end());
    // Nearest rank among n requests, of which v holds the timed ones.
    auto pct = [](const std::vector<Nanos>& v, uint64_t n, double p) {
      const auto rank = static_cast<uint64_t>(std::max(1.0, std::ceil(p / 100 * n - 1e-9)));
      if (rank > v.size()) return std::string("null");
      char b[32];
      std::snprintf(b, sizeof b, "%.1f", static_cast<double>(v[rank - 1]) / 1e3);
      return std::string(b);
    };
    std::string non_200;
    for (const auto& [code, count] : statuses_) {
      if (code == 200) continue;
      non_200 += (non_200.empty() ? "\"" : ",\"") + std::to_string(code) + "\":";
      non_200 += std::to_string(count);
    }
    auto num = [](double v) {
      char b[32];
      std::snprintf(b, sizeof b, "%.10g", v);
      return std::string(b);
    };
    const uint64_t lags = send_lag_.size();
    // Per status code, over the requests answered with it (a refusal's speed
    // and the admitted requests' latency are different questions).
    std::string by_status;
    for (auto& [code, v] : by_status_) {
      std::sort(v.begin(), v.end());
      by_status += (by_status.empty() ? "\"" : ",\"") + std::to_string(code) +
                   "\":{\"p50\":" + pct(v, v.size(), 50) + ",\"p99\":" + pct(v, v.size(), 99) +
                   ",\"max\":" + pct(v, v.size(), 100) + "}";
    }
    const std::pair<const char*, std::string> fields[] = {
        {"target", "\"http://" + authority_ + o_.path + "\""},
        {"rate", num(o_.rate)},
        {"duration_s", num(o_.duration)},
        {"warmup_s", num(o_.warmup)},
        {"connections", num(o_.connections)},
        {"pipeline", num(o_.pipeline)},
        {"scheduled", num(measured)},
        {"sent", num(next_ > first_measured_ ? next_ - first_measured_ : 0)},
        {"completed", num(completed)},
        {"status_200", num(statuses_.count(200) ? statuses_[200] : 0)},
        {"non_200", "{" + non_200 + "}"},
        {"errors", num(errors_)},
        {"connect_errors", num(connect_errors_)},
        {"unfinished", num(measured - completed - failed_measured_)},
        {"achieved_rps", num(std::round(window_completions_ / o_.duration * 10) / 10)},
        {"latency_us", "{\"p50\":" + pct(latency_, measured, 50) + ",\"p90\":" +
                           pct(latency_, measured, 90) + ",\"p99\":" + pct(latency_, measured, 99) +
                           ",\"p999\":" + pct(latency_, measured, 99.9) +
                           ",\"max\":" + pct(latency_, measured, 100) + "}"},
        {"latency_us_by_status", "{" + by_status + "}"},
        {"send_lag_us", "{\"p50\":" + pct(send_lag_, lags, 50) +
                            ",\"p99\":" + pct(send_lag_, lags, 99) +
                            ",\"max\":" + pct(send_lag_, lags, 100) + "}"}};
    std::string out;
    for (const auto& [key, value] : fields) {
      if (o_.json)
        out += (out.empty() ? "{\"" : ",\"") + std::string(key) + "\":" + value;
      else
        out += std::string(key) + ": " + value + "\n";
    }
    std::fputs((o_.json ? out + "}\n" : out).c_str(), stdout);
  }

 private:
  Nanos Due(uint64_t i) const {
    return t0_ + static_cast<Nanos>(static_cast<double>(i) * kSecond / o_.rate);
  }
  bool Measured(uint64_t i) const { return i >= first_measured_; }

  void ArmTimer(Nanos at) {
    if (at == armed_) return;
    armed_ = at;
    itimerspec its{};
    its.it_value = {static_cast<time_t>(at / kSecond), static_cast<long>(at % kSecond)};
    if (timerfd_settime(timer_, TFD_TIMER_ABSTIME, &its, nullptr) != 0) Fail("timerfd_settime");
  }

  void Watch(size_t c, bool out) {
    if (conns_[c].polling_out == out) return;
    conns_[c].polling_out = out;
    epoll_event ev{EPOLLIN | (out ? EPOLLOUT : 0u), {.u64 = c}};
    epoll_ctl(ep_, EPOLL_CTL_MOD, conns_[c].fd, &ev);
  }

  void Connect(size_t c) {
    Conn& k = conns_[c];
    k.fd = socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k.fd < 0) Fail(std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    setsockopt(k.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    k.connecting = connect(k.fd, reinterpret_cast<sockaddr*>(&addr_), addr_len_) != 0;
    if (k.connecting && errno != EINPROGRESS) return Broken(c, true);
    k.answered = false;
    k.polling_out = k.connecting;
    epoll_event ev{EPOLLIN | (k.connecting ? EPOLLOUT : 0u), {.u64 = c}};
    epoll_ctl(ep_, EPOLL_CTL_ADD, k.fd, &ev);
  }

  void WaitConnected() {
    const Nanos limit = Now() + 2 * kSecond;
    epoll_event events[256];
    for (;;) {
      bool pending = false;
      for (const Conn& k : conns_) {
        if (k.dead) Fail("cannot connect to " + authority_);
        pending |= k.connecting;
      }
      if (!pending) return;
      if (Now() > limit) Fail("connecting to " + authority_ + " took more than 2 s");
      const int n = epoll_wait(ep_, events, 256, 100);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 != kTimerTag) OnWritable(events[i].data.u64);
      }
    }
  }

  // The connection failed: its requests are lost, its slots wait for a new one.
  void Broken(size_t c, bool connect_failed) {
    Conn& k = conns_[c];
    for (uint64_t i : k.inflight) failed_measured_ += Measured(i);
    errors_ += k.inflight.size();
    in_flight_ -= k.inflight.size();
    k.parked += static_cast<int>(k.inflight.size());
    k.inflight.clear();
    if (k.fd >= 0) close(k.fd);
    k.fd = -1;
    k.in.clear();
    k.out.clear();
    k.out_sent = 0;
    connect_errors_ += connect_failed;
    if (connect_failed || !k.answered) {  // back off rather than spin on a dead server
      k.dead = true;
      ++dead_;
      k.retry_at = Now() + kRetryDelay;
    } else {
      Revive(c);
    }
  }

  void Revive(size_t c) {
    Conn& k = conns_[c];
    dead_ -= k.dead;
    k.dead = false;
    for (; k.parked > 0; --k.parked) free_.push_back(c);
    Connect(c);
  }

  void Dispatch(Nanos now) {
    while (next_ < total_ && Due(next_) <= now && !free_.empty()) {
      const size_t c = free_.front();
      free_.pop_front();
      Conn& k = conns_[c];
      if (k.dead) {
        ++k.parked;
        continue;
      }
      if (Measured(next_)) send_lag_.push_back(now - Due(next_));
      k.inflight.push_back(next_++);
      ++in_flight_;
      k.out += request_;
      if (!k.connecting) OnWritable(c);
    }
  }

  void OnWritable(size_t c) {
    Conn& k = conns_[c];
    if (k.connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(k.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return Broken(c, true);
      k.connecting = false;
    }
    while (k.out_sent < k.out.size()) {
      const ssize_t w =
          send(k.fd, k.out.data() + k.out_sent, k.out.size() - k.out_sent, MSG_NOSIGNAL);
      if (w < 0 && errno == EAGAIN) break;
      if (w <= 0) return Broken(c, false);
      k.out_sent += static_cast<size_t>(w);
    }
    if (k.out_sent == k.out.size()) {
      k.out.clear();
      k.out_sent = 0;
    }
    Watch(c, !k.out.empty());
  }

  void OnReadable(size_t c) {
    Conn& k = conns_[c];
    char buf[64 * 1024];
    const ssize_t r = read(k.fd, buf, sizeof buf);
    const Nanos now = Now();
    if (r < 0 && errno == EAGAIN) return;
    if (r <= 0) return Broken(c, k.connecting);
    k.in.append(buf, static_cast<size_t>(r));
    size_t used = 0;  // a read may end mid-response or hold several
    while (used < k.in.size()) {
      const Framing f = FrameResponse(std::string_view(k.in).substr(used));
      if (f.state == Framing::kIncomplete) break;
      if (f.state == Framing::kMalformed || k.inflight.empty()) return Broken(c, false);
      used += f.length;
      const uint64_t i = k.inflight.front();
      k.inflight.pop_front();
      --in_flight_;
      k.answered = true;
      free_.push_back(c);
      if (Measured(i)) {
        latency_.push_back(now - Due(i));
        auto& per_status = by_status_[f.status];
        if (per_status.empty()) per_status.reserve(total_ - first_measured_);
        per_status.push_back(now - Due(i));
        ++statuses_[f.status];
      }
      window_completions_ += now >= measure_start_ && now < measure_end_;
      if (f.close) return Broken(c, false);  // an error only for requests still in flight
    }
    k.in.erase(0, used);
  }

  Options o_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::string authority_, request_;
  int ep_ = -1, timer_ = -1;
  std::vector<Conn> conns_;
  std::deque<size_t> free_;  // one entry per free request slot; FIFO spreads the load
  Nanos t0_ = 0, measure_start_ = 0, measure_end_ = 0, armed_ = -1;
  uint64_t next_ = 0, total_ = 0, first_measured_ = 0, in_flight_ = 0, dead_ = 0;
  std::vector<Nanos> latency_, send_lag_;
  std::map<int, uint64_t> statuses_;
  std::map<int, std::vector<Nanos>> by_status_;  // answered requests' latency per status
  uint64_t errors_ = 0, connect_errors_ = 0, failed_measured_ = 0, window_completions_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  OpenLoop loop(ParseArgs(argc, argv));
  loop.Run();
  loop.Report();
  return 0;
}
