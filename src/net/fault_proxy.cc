#include "myelin/net/fault_proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "myelin/loop/event_loop.h"

namespace myelin::net {

std::string_view to_string(FlowDirection direction) noexcept {
  switch (direction) {
    case FlowDirection::kUpstream:
      return "upstream";
    case FlowDirection::kDownstream:
      return "downstream";
    case FlowDirection::kBoth:
      return "both";
  }
  return "?";
}

std::string_view to_string(HalfOpenMode mode) noexcept {
  switch (mode) {
    case HalfOpenMode::kOff:
      return "off";
    case HalfOpenMode::kSilent:
      return "silent";
    case HalfOpenMode::kClosed:
      return "closed";
  }
  return "?";
}

namespace detail {
namespace {

constexpr int kUp = 0;    // client -> upstream
constexpr int kDown = 1;  // upstream -> client
constexpr std::size_t kReadChunk = 64 * 1024;

bool covers(FlowDirection d, int dir) {
  return d == FlowDirection::kBoth || (dir == kUp) == (d == FlowDirection::kUpstream);
}

void set_nodelay(int fd) {
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Closes `fd` so that the peer gets a RST instead of a FIN.
void close_with_rst(int fd) {
  const linger lg{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  ::close(fd);
}

struct Chunk {
  MonoTime due;
  std::vector<std::byte> bytes;
};

// One direction of one connection: bytes read from its source, held until
// they may be written to its destination.
struct Pipe {
  std::deque<Chunk> delayed;  // latency: not yet due
  std::size_t delayed_bytes = 0;
  std::vector<std::byte> out;  // due, to be written from out_off
  std::size_t out_off = 0;
  MonoTime last_due{};    // keeps delayed chunks in order
  bool src_eof = false;   // read end of stream from the source
  bool dst_shut = false;  // sent the destination a FIN
  bool discard = false;   // half-open kClosed: drop what the source sends
  bool blocked = false;   // the last write hit EAGAIN: wait for writable
  bool cut_armed = false;
  std::uint64_t cut_left = 0;
  double tokens = 0;  // bandwidth bucket
  MonoTime refilled{};
  TimerId timer = 0;  // latency or bandwidth wake-up

  [[nodiscard]] std::size_t pending() const { return out.size() - out_off; }
  [[nodiscard]] std::size_t held() const { return delayed_bytes + pending(); }
};

struct Conn {
  std::uint64_t id = 0;
  std::array<int, 2> fd{-1, -1};  // [0] client, [1] upstream
  std::array<std::uint32_t, 2> interest{0, 0};
  std::array<bool, 2> registered{false, false};
  bool connecting = false;     // upstream connect in flight
  bool awaiting_heal = false;  // accepted during a black hole: no upstream yet
  TimerId connect_timer = 0;
  std::array<Pipe, 2> pipe;  // [kUp], [kDown]
};

// Source and destination side (0 client, 1 upstream) of a direction.
int src_side(int dir) { return dir == kUp ? 0 : 1; }
int dst_side(int dir) { return dir == kUp ? 1 : 0; }

}  // namespace

class FaultProxyImpl {
 public:
  explicit FaultProxyImpl(FaultProxyOptions options)
      : options_(std::move(options)), rng_(options_.seed), scratch_(kReadChunk) {}

  ~FaultProxyImpl() {
    if (loop_) (void)loop_->close();  // joins the thread; timers die unrun
    for (auto& [id, c] : conns_) {
      for (int fd : c->fd) {
        if (fd >= 0) ::close(fd);
      }
    }
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  Status init() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string up = options_.upstream_host + ":" + std::to_string(options_.upstream_port);
    if (options_.upstream_port == 0) return invalid_argument("fault proxy: upstream port is 0");
    if (const int rc = ::getaddrinfo(options_.upstream_host.c_str(),
                                     std::to_string(options_.upstream_port).c_str(), &hints, &res);
        rc != 0) {
      return unavailable("fault proxy: resolve upstream " + up + ": " + ::gai_strerror(rc));
    }
    std::memcpy(&upstream_addr_, res->ai_addr, res->ai_addrlen);
    upstream_len_ = res->ai_addrlen;
    upstream_family_ = res->ai_family;
    ::freeaddrinfo(res);

    hints.ai_flags = AI_PASSIVE;
    const std::string lp = std::to_string(options_.listen_port);
    if (const int rc = ::getaddrinfo(options_.listen_host.c_str(), lp.c_str(), &hints, &res);
        rc != 0) {
      return unavailable("fault proxy: resolve listen address " + options_.listen_host + ": " +
                         ::gai_strerror(rc));
    }
    listen_fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) {
      ::freeaddrinfo(res);
      return errno_error("fault proxy: socket", errno);
    }
    const int one = 1;
    (void)::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const int brc = ::bind(listen_fd_, res->ai_addr, res->ai_addrlen);
    ::freeaddrinfo(res);
    if (brc != 0) {
      return errno_error("fault proxy: bind " + options_.listen_host + ":" + lp, errno);
    }
    if (::listen(listen_fd_, 1024) != 0) return errno_error("fault proxy: listen", errno);
    sockaddr_storage bound{};
    socklen_t blen = sizeof(bound);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

    EventLoopOptions lo;
    lo.spin_before_sleep = Nanos(0);  // a test tool: never steal the CPU under test
    MYELIN_ASSIGN_OR_RETURN(loop_, EventLoop::create(std::move(lo)));
    MYELIN_RETURN_IF_ERROR(
        loop_->register_fd(listen_fd_, kIoReadable, [this](std::uint32_t) { accept_ready(); }));
    return loop_->start();
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  // Runs `fn` on the proxy thread; returns the instant it ran.
  template <typename Fn>
  Result<MonoTime> control(Fn fn, bool is_fault) {
    if (loop_->in_loop_thread()) {
      return failed_precondition("fault proxy: a fault call on the proxy thread itself");
    }
    auto done = std::make_shared<std::promise<MonoTime>>();
    std::future<MonoTime> when = done->get_future();
    MYELIN_RETURN_IF_ERROR(loop_->submit([this, fn = std::move(fn), done, is_fault]() mutable {
      fn();
      const MonoTime now = mono_now();
      if (is_fault) last_fault_ns_.store(now.time_since_epoch().count(), std::memory_order_release);
      done->set_value(now);
    }));
    if (when.wait_for(options_.control_timeout) != std::future_status::ready) {
      return deadline_exceeded("fault proxy: the proxy thread did not apply the fault in time");
    }
    return when.get();
  }

  // --- faults (proxy thread) ---------------------------------------------------

  void do_reset_all() {
    std::vector<std::uint64_t> ids;
    ids.reserve(conns_.size());
    for (auto& [id, c] : conns_) ids.push_back(id);
    for (std::uint64_t id : ids) reset(id);
  }

  void do_refuse(bool on) { refuse_ = on; }

  void do_blackhole(bool on) {
    blackhole_ = on;
    if (!on) start_awaiting();
    refresh_all();
  }

  void do_latency(Nanos base, Nanos jitter) {
    latency_ = base;
    jitter_ = jitter;
  }

  void do_bandwidth(std::uint64_t rate) {
    rate_ = rate;
    const MonoTime now = mono_now();
    for (auto& [id, c] : conns_) {
      for (Pipe& p : c->pipe) {
        p.tokens = 0;
        p.refilled = now;
      }
    }
    refresh_all();
  }

  void do_cut(FlowDirection d, std::uint64_t bytes) {
    for (int dir : {kUp, kDown}) {
      if (!covers(d, dir)) continue;
      cut_[dir] = bytes;
      cut_on_[dir] = true;
    }
    std::vector<std::uint64_t> ids;
    for (auto& [id, c] : conns_) ids.push_back(id);
    for (std::uint64_t id : ids) {
      Conn* c = find(id);
      for (int dir : {kUp, kDown}) {
        if (c == nullptr || !covers(d, dir)) continue;
        c->pipe[dir].cut_armed = true;
        c->pipe[dir].cut_left = bytes;
        if (bytes == 0) {
          reset(id);
          c = nullptr;
        }
      }
      if (c != nullptr) refresh(*c);
    }
  }

  void do_half_open(FlowDirection d, HalfOpenMode mode) {
    for (int dir : {kUp, kDown}) {
      if (covers(d, dir)) half_open_[dir] = mode;
    }
    if (mode == HalfOpenMode::kClosed) {
      std::vector<std::uint64_t> ids;
      for (auto& [id, c] : conns_) ids.push_back(id);
      for (std::uint64_t id : ids) {
        for (int dir : {kUp, kDown}) {
          Conn* c = find(id);
          if (c != nullptr && covers(d, dir)) close_direction(*c, dir);
        }
      }
    }
    refresh_all();
  }

  void do_heal() {
    refuse_ = false;
    blackhole_ = false;
    latency_ = jitter_ = Nanos(0);
    rate_ = 0;
    cut_on_ = {false, false};
    half_open_ = {HalfOpenMode::kOff, HalfOpenMode::kOff};
    start_awaiting();
    std::vector<std::uint64_t> ids;
    for (auto& [id, c] : conns_) ids.push_back(id);
    for (std::uint64_t id : ids) {
      Conn* c = find(id);
      if (c == nullptr) continue;
      for (int dir : {kUp, kDown}) {
        Pipe& p = c->pipe[dir];
        p.cut_armed = false;
        if (p.timer != 0) {
          (void)loop_->cancel(p.timer);
          p.timer = 0;
        }
        // Held chunks are due now.
        while (!p.delayed.empty()) {
          append_out(p, p.delayed.front().bytes);
          p.delayed_bytes -= p.delayed.front().bytes.size();
          p.delayed.pop_front();
        }
      }
      pump(id);
    }
  }

  std::optional<MonoTime> last_fault_at() const noexcept {
    const std::int64_t ns = last_fault_ns_.load(std::memory_order_acquire);
    if (ns == 0) return std::nullopt;
    return MonoTime(Nanos(ns));
  }

  FaultProxyStats stats() const noexcept {
    FaultProxyStats s;
    s.accepted = accepted_.load(std::memory_order_relaxed);
    s.active = active_.load(std::memory_order_relaxed);
    s.refused = refused_.load(std::memory_order_relaxed);
    s.resets_injected = resets_.load(std::memory_order_relaxed);
    s.upstream_failures = upstream_failures_.load(std::memory_order_relaxed);
    s.bytes_upstream = bytes_[kUp].load(std::memory_order_relaxed);
    s.bytes_downstream = bytes_[kDown].load(std::memory_order_relaxed);
    return s;
  }

 private:
  // --- connections ---------------------------------------------------------------

  Conn* find(std::uint64_t id) {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : it->second.get();
  }

  void accept_ready() {
    for (int i = 0; i < 64; ++i) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          pause_accepting();
        }
        return;  // EAGAIN, or a per-connection error (ECONNABORTED...): next event
      }
      accepted_.fetch_add(1, std::memory_order_relaxed);
      if (refuse_) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        close_with_rst(fd);
        continue;
      }
      set_nodelay(fd);
      auto c = std::make_unique<Conn>();
      c->id = next_id_++;
      c->fd[0] = fd;
      const MonoTime now = mono_now();
      for (int dir : {kUp, kDown}) {
        Pipe& p = c->pipe[dir];
        p.refilled = now;
        p.cut_armed = cut_on_[dir];
        p.cut_left = cut_[dir];
      }
      const std::uint64_t id = c->id;
      conns_.emplace(id, std::move(c));
      active_.fetch_add(1, std::memory_order_relaxed);
      Conn& conn = *conns_.at(id);
      if ((conn.pipe[kUp].cut_armed && conn.pipe[kUp].cut_left == 0) ||
          (conn.pipe[kDown].cut_armed && conn.pipe[kDown].cut_left == 0)) {
        reset(id);
        continue;
      }
      for (int dir : {kUp, kDown}) {
        if (half_open_[dir] == HalfOpenMode::kClosed) conn.pipe[dir].discard = true;
      }
      if (blackhole_) {
        conn.awaiting_heal = true;  // a partition: the upstream is not reached
        refresh(conn);
      } else {
        connect_upstream(id);
      }
    }
  }

  // Out of descriptors: the pending connection stays in the backlog and the
  // listening socket stays readable, so watching it would spin the loop.
  // Stop watching it for 50 ms, then try again.
  void pause_accepting() {
    (void)loop_->unregister_fd(listen_fd_);
    (void)loop_->schedule(std::chrono::milliseconds(50), [this] {
      (void)loop_->register_fd(listen_fd_, kIoReadable, [this](std::uint32_t) { accept_ready(); });
    });
  }

  void start_awaiting() {
    std::vector<std::uint64_t> ids;
    for (auto& [id, c] : conns_) {
      if (c->awaiting_heal) ids.push_back(id);
    }
    for (std::uint64_t id : ids) connect_upstream(id);
  }

  void connect_upstream(std::uint64_t id) {
    Conn* c = find(id);
    if (c == nullptr) return;
    c->awaiting_heal = false;
    const int fd = ::socket(upstream_family_, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      upstream_failed(id);
      return;
    }
    set_nodelay(fd);
    c->fd[1] = fd;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&upstream_addr_), upstream_len_) != 0) {
      if (errno != EINPROGRESS) {
        upstream_failed(id);
        return;
      }
      c->connecting = true;
      if (auto t = loop_->schedule(options_.connect_timeout,
                                   [this, id] {
                                     Conn* cc = find(id);
                                     if (cc == nullptr) return;
                                     cc->connect_timer = 0;
                                     if (cc->connecting) upstream_failed(id);
                                   });
          t.has_value()) {
        c->connect_timer = t.value();
      }
    }
    pump(id);
  }

  void upstream_failed(std::uint64_t id) {
    upstream_failures_.fetch_add(1, std::memory_order_relaxed);
    reset(id);
  }

  // Both sides get a RST.
  void reset(std::uint64_t id) {
    Conn* c = find(id);
    if (c == nullptr) return;
    resets_.fetch_add(1, std::memory_order_relaxed);
    destroy(*c, /*rst=*/true);
  }

  void destroy(Conn& c, bool rst) {
    for (Pipe& p : c.pipe) {
      if (p.timer != 0) (void)loop_->cancel(p.timer);
    }
    if (c.connect_timer != 0) (void)loop_->cancel(c.connect_timer);
    // Counted before the sockets close: whoever sees the close sees the count.
    active_.fetch_sub(1, std::memory_order_relaxed);
    for (int side : {0, 1}) {
      if (c.fd[side] < 0) continue;
      if (c.registered[side]) (void)loop_->unregister_fd(c.fd[side]);
      if (rst) {
        close_with_rst(c.fd[side]);
      } else {
        ::close(c.fd[side]);
      }
    }
    conns_.erase(c.id);  // c dies here
  }

  [[nodiscard]] bool frozen(int dir) const {
    return blackhole_ || half_open_[dir] == HalfOpenMode::kSilent;
  }

  [[nodiscard]] bool dst_ready(const Conn& c, int dir) const {
    const int side = dst_side(dir);
    return c.fd[side] >= 0 && !(side == 1 && c.connecting);
  }

  [[nodiscard]] bool can_read(const Conn& c, int dir) const {
    const int side = src_side(dir);
    const Pipe& p = c.pipe[dir];
    return c.fd[side] >= 0 && !(side == 1 && c.connecting) && !p.src_eof && !frozen(dir) &&
           p.held() < options_.buffer_bytes;
  }

  // Sets each socket's epoll interest from the connection's state. A socket
  // with nothing to wait for leaves epoll altogether, so that a hang-up or
  // error on a socket that is held (black hole, full buffer) cannot spin
  // the loop; it is seen once the socket is watched again.
  void refresh(Conn& c) {
    for (int side : {0, 1}) {
      if (c.fd[side] < 0) continue;
      std::uint32_t want = 0;
      if (side == 1 && c.connecting) {
        want = kIoWritable;
      } else {
        const int out_dir = side == 0 ? kUp : kDown;  // read from this side
        const int in_dir = side == 0 ? kDown : kUp;   // written to this side
        if (can_read(c, out_dir)) want |= kIoReadable;
        if (c.pipe[in_dir].blocked && !frozen(in_dir)) want |= kIoWritable;
      }
      if (want == c.interest[side] && (want == 0) == !c.registered[side]) continue;
      if (want == 0) {
        (void)loop_->unregister_fd(c.fd[side]);
        c.registered[side] = false;
      } else if (!c.registered[side]) {
        const std::uint64_t id = c.id;
        if (loop_
                ->register_fd(c.fd[side], want,
                              [this, id, side](std::uint32_t ev) { on_io(id, side, ev); })
                .ok()) {
          c.registered[side] = true;
        }
      } else {
        (void)loop_->modify_fd(c.fd[side], want);
      }
      c.interest[side] = want;
    }
  }

  void refresh_all() {
    std::vector<std::uint64_t> ids;
    for (auto& [id, c] : conns_) ids.push_back(id);
    for (std::uint64_t id : ids) pump(id);
  }

  void on_io(std::uint64_t id, int side, std::uint32_t ev) {
    Conn* c = find(id);
    if (c == nullptr) return;
    if (side == 1 && c->connecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        upstream_failed(id);
        return;
      }
      if ((ev & (kIoWritable | kIoError | kIoHangup)) == 0) return;
      c->connecting = false;
      if (c->connect_timer != 0) {
        (void)loop_->cancel(c->connect_timer);
        c->connect_timer = 0;
      }
      pump(id);
      return;
    }
    const int in_dir = side == 0 ? kDown : kUp;
    if ((ev & (kIoWritable | kIoError | kIoHangup)) != 0) c->pipe[in_dir].blocked = false;
    // Only the socket that became ready is read: a read of the other would
    // be a wasted system call on every event.
    const bool readable = (ev & (kIoReadable | kIoError | kIoHangup)) != 0;
    pump(id, readable ? 1u << (side == 0 ? kUp : kDown) : 0u);
  }

  // Moves what can move in both directions (reading the sources in
  // `read_dirs`, a bit per direction), then re-arms the sockets.
  void pump(std::uint64_t id, unsigned read_dirs = 3u) {
    for (int dir : {kUp, kDown}) {
      Conn* c = find(id);
      if (c == nullptr) return;
      if ((read_dirs & (1u << dir)) != 0 && !read_side(*c, dir)) return;
      c = find(id);
      if (c == nullptr || !flush(*c, dir)) return;
    }
    Conn* c = find(id);
    if (c == nullptr) return;
    for (int dir : {kUp, kDown}) {
      if (!maybe_finish(*c, dir)) return;
    }
    refresh(*c);
  }

  // One read from the direction's source (level-triggered epoll brings the
  // rest). False if the connection died.
  bool read_side(Conn& c, int dir) {
    if (!can_read(c, dir)) return true;
    Pipe& p = c.pipe[dir];
    const std::size_t room = std::min(kReadChunk, options_.buffer_bytes - p.held());
    const ssize_t n = ::read(c.fd[src_side(dir)], scratch_.data(), room);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
      reset(c.id);  // the source reset or failed: the destination gets a RST
      return false;
    }
    if (n == 0) {
      p.src_eof = true;
      return true;
    }
    if (p.discard) return true;
    const std::span<const std::byte> got(scratch_.data(), static_cast<std::size_t>(n));
    if (latency_ == Nanos(0) && jitter_ == Nanos(0) && p.delayed.empty()) {
      append_out(p, got);
      return true;
    }
    Nanos delay = latency_;
    if (jitter_ > Nanos(0)) {
      delay += Nanos(std::uniform_int_distribution<std::int64_t>(0, jitter_.count())(rng_));
    }
    const MonoTime due = std::max(mono_now() + delay, p.last_due);
    p.last_due = due;
    p.delayed.push_back(Chunk{due, std::vector<std::byte>(got.begin(), got.end())});
    p.delayed_bytes += got.size();
    return true;
  }

  static void append_out(Pipe& p, std::span<const std::byte> bytes) {
    if (p.out_off > 0 && p.out_off == p.out.size()) {
      p.out.clear();
      p.out_off = 0;
    } else if (p.out_off > (1u << 20)) {
      p.out.erase(p.out.begin(), p.out.begin() + static_cast<std::ptrdiff_t>(p.out_off));
      p.out_off = 0;
    }
    p.out.insert(p.out.end(), bytes.begin(), bytes.end());
  }

  void arm_timer(Conn& c, int dir, MonoTime at) {
    Pipe& p = c.pipe[dir];
    if (p.timer != 0) return;  // fires and re-arms as needed
    const std::uint64_t id = c.id;
    const Nanos delay = std::max(Nanos(0), at - mono_now());
    if (auto t = loop_->schedule(delay,
                                 [this, id, dir] {
                                   Conn* cc = find(id);
                                   if (cc == nullptr) return;
                                   cc->pipe[dir].timer = 0;
                                   pump(id);
                                 });
        t.has_value()) {
      p.timer = t.value();
    }
  }

  // Writes what is due, within the bandwidth and the cut budget. False if
  // the connection died.
  bool flush(Conn& c, int dir) {
    Pipe& p = c.pipe[dir];
    const MonoTime now = mono_now();
    while (!p.delayed.empty() && p.delayed.front().due <= now) {
      append_out(p, p.delayed.front().bytes);
      p.delayed_bytes -= p.delayed.front().bytes.size();
      p.delayed.pop_front();
    }
    if (!p.delayed.empty()) arm_timer(c, dir, p.delayed.front().due);
    if (frozen(dir) || p.blocked || !dst_ready(c, dir) || p.dst_shut) return true;
    while (p.pending() > 0) {
      std::size_t n = p.pending();
      if (rate_ > 0) {
        const double burst = std::max(1.0, static_cast<double>(rate_) / 50.0);
        const double elapsed = std::chrono::duration<double>(now - p.refilled).count();
        p.tokens = std::min(burst, p.tokens + elapsed * static_cast<double>(rate_));
        p.refilled = now;
        if (p.tokens < 1.0) {
          const double need = std::min(static_cast<double>(n), burst) - p.tokens;
          arm_timer(c, dir,
                    now + std::chrono::duration_cast<Nanos>(
                              std::chrono::duration<double>(need / static_cast<double>(rate_))));
          return true;
        }
        n = std::min(n, static_cast<std::size_t>(p.tokens));
      }
      if (p.cut_armed) n = static_cast<std::size_t>(std::min<std::uint64_t>(n, p.cut_left));
      const ssize_t w = ::send(c.fd[dst_side(dir)], p.out.data() + p.out_off, n, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          p.blocked = true;
          return true;
        }
        if (errno == EINTR) continue;
        reset(c.id);  // the destination is gone: the source gets a RST
        return false;
      }
      const auto moved = static_cast<std::size_t>(w);
      p.out_off += moved;
      bytes_[dir].fetch_add(moved, std::memory_order_relaxed);
      if (rate_ > 0) p.tokens -= static_cast<double>(moved);
      if (p.cut_armed) {
        p.cut_left -= moved;
        if (p.cut_left == 0) {
          reset(c.id);
          return false;
        }
      }
    }
    return true;
  }

  // A direction whose source ended and whose bytes are all written sends
  // its destination a FIN; a connection with both directions ended closes.
  bool maybe_finish(Conn& c, int dir) {
    Pipe& p = c.pipe[dir];
    if (p.discard && !p.dst_shut && dst_ready(c, dir)) {
      (void)::shutdown(c.fd[dst_side(dir)], SHUT_WR);  // half-open kClosed on a new connection
      p.dst_shut = true;
    }
    if (p.src_eof && !p.dst_shut && p.held() == 0 && !frozen(dir) && dst_ready(c, dir)) {
      (void)::shutdown(c.fd[dst_side(dir)], SHUT_WR);
      p.dst_shut = true;
    }
    if (c.pipe[kUp].src_eof && c.pipe[kUp].dst_shut && c.pipe[kDown].src_eof &&
        c.pipe[kDown].dst_shut) {
      destroy(c, /*rst=*/false);
      return false;
    }
    return true;
  }

  // Half-open kClosed: the direction's destination gets a FIN now; what its
  // source sends from now on is dropped.
  void close_direction(Conn& c, int dir) {
    Pipe& p = c.pipe[dir];
    p.discard = true;
    p.delayed.clear();
    p.delayed_bytes = 0;
    p.out.clear();
    p.out_off = 0;
    if (!p.dst_shut && dst_ready(c, dir)) {
      (void)::shutdown(c.fd[dst_side(dir)], SHUT_WR);
      p.dst_shut = true;
    }
  }

  FaultProxyOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::byte> scratch_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  sockaddr_storage upstream_addr_{};
  socklen_t upstream_len_ = 0;
  int upstream_family_ = AF_INET;
  std::unordered_map<std::uint64_t, std::unique_ptr<Conn>> conns_;
  std::uint64_t next_id_ = 1;

  // Fault state (proxy thread).
  bool refuse_ = false;
  bool blackhole_ = false;
  Nanos latency_{0};
  Nanos jitter_{0};
  std::uint64_t rate_ = 0;
  std::array<bool, 2> cut_on_{false, false};
  std::array<std::uint64_t, 2> cut_{0, 0};
  std::array<HalfOpenMode, 2> half_open_{HalfOpenMode::kOff, HalfOpenMode::kOff};

  std::atomic<std::int64_t> last_fault_ns_{0};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> active_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> resets_{0};
  std::atomic<std::uint64_t> upstream_failures_{0};
  std::array<std::atomic<std::uint64_t>, 2> bytes_{};

  std::unique_ptr<EventLoop> loop_;  // last member, yet closed first (destructor)
};

}  // namespace detail

FaultProxy::FaultProxy(std::unique_ptr<detail::FaultProxyImpl> impl) : impl_(std::move(impl)) {}
FaultProxy::~FaultProxy() = default;

Result<std::unique_ptr<FaultProxy>> FaultProxy::start(FaultProxyOptions options) {
  auto impl = std::make_unique<detail::FaultProxyImpl>(std::move(options));
  MYELIN_RETURN_IF_ERROR(impl->init());
  return std::unique_ptr<FaultProxy>(new FaultProxy(std::move(impl)));
}

std::uint16_t FaultProxy::port() const noexcept { return impl_->port(); }

Result<MonoTime> FaultProxy::reset_all() {
  return impl_->control([i = impl_.get()] { i->do_reset_all(); }, true);
}
Result<MonoTime> FaultProxy::set_refuse(bool on) {
  return impl_->control([i = impl_.get(), on] { i->do_refuse(on); }, true);
}
Result<MonoTime> FaultProxy::set_blackhole(bool on) {
  return impl_->control([i = impl_.get(), on] { i->do_blackhole(on); }, true);
}
Result<MonoTime> FaultProxy::set_latency(Nanos base, Nanos jitter) {
  if (base < Nanos(0) || jitter < Nanos(0)) {
    return invalid_argument("fault proxy: latency and jitter must be >= 0");
  }
  return impl_->control([i = impl_.get(), base, jitter] { i->do_latency(base, jitter); }, true);
}
Result<MonoTime> FaultProxy::set_bandwidth(std::uint64_t bytes_per_second) {
  return impl_->control([i = impl_.get(), bytes_per_second] { i->do_bandwidth(bytes_per_second); },
                        true);
}
Result<MonoTime> FaultProxy::cut_after(FlowDirection direction, std::uint64_t bytes) {
  return impl_->control([i = impl_.get(), direction, bytes] { i->do_cut(direction, bytes); }, true);
}
Result<MonoTime> FaultProxy::set_half_open(FlowDirection direction, HalfOpenMode mode) {
  return impl_->control([i = impl_.get(), direction, mode] { i->do_half_open(direction, mode); },
                        true);
}
Result<MonoTime> FaultProxy::heal() {
  return impl_->control([i = impl_.get()] { i->do_heal(); }, false);
}

std::optional<MonoTime> FaultProxy::last_fault_at() const noexcept {
  return impl_->last_fault_at();
}
FaultProxyStats FaultProxy::stats() const noexcept { return impl_->stats(); }

}  // namespace myelin::net
