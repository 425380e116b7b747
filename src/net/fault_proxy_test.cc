// FaultProxy against plain TCP servers on loopback. Every assertion is on
// bytes, resets and ends of stream; the only clock checks are lower bounds
// the proxy guarantees (latency and bandwidth never deliver early).
#include "myelin/net/fault_proxy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace myelin::net {
namespace {

using std::chrono::milliseconds;
constexpr auto kWait = std::chrono::seconds(10);  // bound on every wait

enum class End { kOpen, kEof, kReset, kError };

int listen_loopback(std::uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(::listen(fd, 128), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// A threaded TCP server: echoes (or only counts) what each connection sends
// and records how each connection ended.
class TestServer {
 public:
  explicit TestServer(bool echo = true) : echo_(echo) {
    listen_fd_ = listen_loopback(&port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TestServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (auto& c : conns_) ::shutdown(c->fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    for (auto& c : conns_) ::close(c->fd);
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }

  struct ConnState {
    int fd = -1;
    std::size_t received = 0;
    End end = End::kOpen;
  };

  std::size_t accepted() {
    std::lock_guard lock(mu_);
    return conns_.size();
  }
  // Waits (bounded) until `pred(conns)` holds; returns whether it did.
  template <typename Pred>
  bool wait_for(Pred pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return pred(conns_); });
  }
  bool wait_received(std::size_t index, std::size_t n) {
    return wait_for([&](auto& cs) { return cs.size() > index && cs[index]->received >= n; });
  }
  bool wait_end(std::size_t index) {
    return wait_for([&](auto& cs) { return cs.size() > index && cs[index]->end != End::kOpen; });
  }
  ConnState state(std::size_t index) {
    std::lock_guard lock(mu_);
    return *conns_.at(index);
  }

 private:
  void accept_loop() {
    while (!stop_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stop_ || errno == EINVAL) return;
        continue;
      }
      std::lock_guard lock(mu_);
      conns_.push_back(std::make_unique<ConnState>());
      conns_.back()->fd = fd;
      ConnState* c = conns_.back().get();
      workers_.emplace_back([this, c] { serve(c); });
      cv_.notify_all();
    }
  }
  void serve(ConnState* c) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      const ssize_t n = ::recv(c->fd, buf.data(), buf.size(), 0);
      if (n <= 0) {
        const End end = n == 0 ? End::kEof : (errno == ECONNRESET ? End::kReset : End::kError);
        if (n == 0 && echo_) ::shutdown(c->fd, SHUT_WR);
        std::lock_guard lock(mu_);
        c->end = end;
        cv_.notify_all();
        return;
      }
      if (echo_) {
        for (ssize_t off = 0; off < n;) {
          const ssize_t w =
              ::send(c->fd, buf.data() + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
          if (w <= 0) break;
          off += w;
        }
      }
      std::lock_guard lock(mu_);
      c->received += static_cast<std::size_t>(n);
      cv_.notify_all();
    }
  }

  bool echo_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<ConnState>> conns_;
  std::vector<std::thread> workers_;
};

// A blocking client socket whose reads give up after `kWait`.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void send_all(const std::string& s) {
    for (std::size_t off = 0; off < s.size();) {
      const ssize_t w = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      ASSERT_GT(w, 0) << std::strerror(errno);
      off += static_cast<std::size_t>(w);
    }
  }
  // Reads until `n` bytes, end of stream, an error, or `within`.
  struct Got {
    std::string bytes;
    End end = End::kOpen;
  };
  Got read_n(std::size_t n, Nanos within = kWait) {
    Got got;
    const MonoTime deadline = mono_now() + within;
    std::vector<char> buf(64 * 1024);
    while (got.bytes.size() < n) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - mono_now()).count();
      if (left <= 0) return got;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      const ssize_t r = ::recv(fd_, buf.data(), std::min(buf.size(), n - got.bytes.size()), 0);
      if (r == 0) {
        got.end = End::kEof;
        return got;
      }
      if (r < 0) {
        got.end = errno == ECONNRESET ? End::kReset : End::kError;
        return got;
      }
      got.bytes.append(buf.data(), static_cast<std::size_t>(r));
    }
    return got;
  }
  // Reads until end of stream or error (bounded).
  Got read_to_end() { return read_n(SIZE_MAX); }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string pattern(std::size_t n, unsigned seed = 7) {
  std::string s(n, '\0');
  std::uint32_t x = seed;
  for (auto& ch : s) {
    x = x * 1664525u + 1013904223u;
    ch = static_cast<char>(x >> 24);
  }
  return s;
}

std::unique_ptr<FaultProxy> make_proxy(std::uint16_t upstream_port) {
  FaultProxyOptions o;
  o.upstream_port = upstream_port;
  auto p = FaultProxy::start(o);
  EXPECT_TRUE(p.has_value()) << p.error().message();
  return p.has_value() ? std::move(p.value()) : nullptr;
}

// Waits (bounded) until the proxy's stats satisfy `pred`.
template <typename Pred>
bool wait_stats(const FaultProxy& proxy, Pred pred) {
  const MonoTime deadline = mono_now() + kWait;
  while (mono_now() < deadline) {
    if (pred(proxy.stats())) return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return false;
}

TEST(FaultProxy, ForwardsBytesBothWaysAndCountsThem) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  EXPECT_FALSE(proxy->last_fault_at().has_value());
  const std::string data = pattern(3 << 20);
  Client c(proxy->port());
  ASSERT_TRUE(c.connected());
  std::thread writer([&] { c.send_all(data); });
  const auto got = c.read_n(data.size());
  writer.join();
  ASSERT_EQ(got.bytes.size(), data.size());
  EXPECT_TRUE(got.bytes == data);
  const FaultProxyStats s = proxy->stats();
  EXPECT_EQ(s.accepted, 1u);
  EXPECT_EQ(s.active, 1u);
  EXPECT_EQ(s.bytes_upstream, data.size());
  EXPECT_EQ(s.bytes_downstream, data.size());
  EXPECT_EQ(s.resets_injected, 0u);
}

TEST(FaultProxy, ForwardsHalfCloseAndClosesWhenBothSidesEnd) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  Client c(proxy->port());
  c.send_all("hello");
  ::shutdown(c.fd(), SHUT_WR);
  // The echo server sees end of stream, echoes, and ends its side too.
  ASSERT_TRUE(server.wait_end(0));
  EXPECT_EQ(server.state(0).end, End::kEof);
  const auto got = c.read_to_end();
  EXPECT_EQ(got.bytes, "hello");
  EXPECT_EQ(got.end, End::kEof);
  EXPECT_TRUE(wait_stats(*proxy, [](const FaultProxyStats& s) { return s.active == 0; }));
}

TEST(FaultProxy, ResetAllResetsBothSidesAndReportsTheInstant) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  Client c(proxy->port());
  c.send_all("ping");
  ASSERT_EQ(c.read_n(4).bytes, "ping");
  const MonoTime before = mono_now();
  auto at = proxy->reset_all();
  ASSERT_TRUE(at.has_value());
  EXPECT_GE(at.value(), before);
  EXPECT_LE(at.value(), mono_now());
  ASSERT_TRUE(proxy->last_fault_at().has_value());
  EXPECT_EQ(*proxy->last_fault_at(), at.value());
  EXPECT_EQ(c.read_to_end().end, End::kReset);
  ASSERT_TRUE(server.wait_end(0));
  EXPECT_EQ(server.state(0).end, End::kReset);
  EXPECT_EQ(proxy->stats().resets_injected, 1u);
  EXPECT_EQ(proxy->stats().active, 0u);
  // The proxy still forwards new connections.
  Client again(proxy->port());
  again.send_all("more");
  EXPECT_EQ(again.read_n(4).bytes, "more");
}

TEST(FaultProxy, RefuseResetsNewConnectionsOnlyUntilHeal) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  Client open(proxy->port());
  open.send_all("a");
  ASSERT_EQ(open.read_n(1).bytes, "a");
  ASSERT_TRUE(proxy->set_refuse(true).has_value());
  Client refused(proxy->port());
  EXPECT_EQ(refused.read_to_end().end, End::kReset);
  EXPECT_EQ(proxy->stats().refused, 1u);
  EXPECT_EQ(server.accepted(), 1u);  // the upstream never saw it
  open.send_all("b");                // connections open before the fault keep working
  EXPECT_EQ(open.read_n(1).bytes, "b");
  ASSERT_TRUE(proxy->heal().has_value());
  Client healed(proxy->port());
  healed.send_all("c");
  EXPECT_EQ(healed.read_n(1).bytes, "c");
}

TEST(FaultProxy, BlackholeHoldsBytesAndEndsUntilHeal) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  Client c(proxy->port());
  c.send_all("x");
  ASSERT_EQ(c.read_n(1).bytes, "x");
  ASSERT_TRUE(proxy->set_blackhole(true).has_value());
  const FaultProxyStats frozen = proxy->stats();
  c.send_all("held");
  // Nothing can arrive while the hole is open: neither bytes nor an end.
  const auto during = c.read_n(4, milliseconds(200));
  EXPECT_EQ(during.bytes, "");
  EXPECT_EQ(during.end, End::kOpen);
  EXPECT_EQ(server.state(0).received, 1u);
  // A connection opened during the partition does not reach the upstream.
  Client late(proxy->port());
  ASSERT_TRUE(late.connected());
  late.send_all("late");
  EXPECT_EQ(late.read_n(4, milliseconds(100)).bytes, "");
  EXPECT_EQ(server.accepted(), 1u);
  EXPECT_EQ(proxy->stats().bytes_upstream, frozen.bytes_upstream);
  EXPECT_EQ(proxy->stats().bytes_downstream, frozen.bytes_downstream);
  ASSERT_TRUE(proxy->heal().has_value());
  EXPECT_EQ(c.read_n(4).bytes, "held");
  EXPECT_EQ(late.read_n(4).bytes, "late");
  EXPECT_EQ(server.accepted(), 2u);
}

TEST(FaultProxy, BlackholeHidesAClientsCloseFromTheUpstreamUntilHeal) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  auto c = std::make_unique<Client>(proxy->port());
  c->send_all("x");
  ASSERT_EQ(c->read_n(1).bytes, "x");
  ASSERT_TRUE(proxy->set_blackhole(true).has_value());
  const linger lg{1, 0};
  ::setsockopt(c->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  c.reset();  // the client resets its side; the partition hides it
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(server.state(0).end, End::kOpen);
  ASSERT_TRUE(proxy->heal().has_value());
  ASSERT_TRUE(server.wait_end(0));
  EXPECT_EQ(server.state(0).end, End::kReset);
  EXPECT_TRUE(wait_stats(*proxy, [](const FaultProxyStats& s) { return s.active == 0; }));
}

TEST(FaultProxy, LatencyDelaysEveryChunkAndKeepsOrder) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  ASSERT_TRUE(proxy->set_latency(milliseconds(20), milliseconds(20)).has_value());
  Client c(proxy->port());
  std::string sent;
  for (int i = 0; i < 50; ++i) {
    const std::string msg = std::to_string(i) + ",";
    sent += msg;
    c.send_all(msg);
  }
  const MonoTime t0 = mono_now();
  c.send_all("end");
  sent += "end";
  const auto got = c.read_n(sent.size());
  // Each way is delayed at least the base latency: never earlier.
  EXPECT_GE(mono_now() - t0, milliseconds(40));
  EXPECT_EQ(got.bytes, sent);
  ASSERT_TRUE(proxy->heal().has_value());
  c.send_all("fast");
  EXPECT_EQ(c.read_n(4).bytes, "fast");
}

TEST(FaultProxy, BandwidthLimitPacesTheBytes) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  constexpr std::uint64_t kRate = 200 * 1024;
  ASSERT_TRUE(proxy->set_bandwidth(kRate).has_value());
  const std::string data = pattern(100 * 1024);
  Client c(proxy->port());
  const MonoTime t0 = mono_now();
  std::thread writer([&] { c.send_all(data); });
  const auto got = c.read_n(data.size());
  writer.join();
  EXPECT_TRUE(got.bytes == data);
  // 100 KiB at 200 KiB/s, less one 20 ms burst: at least ~0.48 s.
  EXPECT_GE(mono_now() - t0, milliseconds(400));
}

TEST(FaultProxy, CutAfterForwardsExactlyNBytesThenResets) {
  TestServer sink(/*echo=*/false);
  auto proxy = make_proxy(sink.port());
  ASSERT_NE(proxy, nullptr);
  ASSERT_TRUE(proxy->cut_after(FlowDirection::kUpstream, 1000).has_value());
  Client c(proxy->port());
  c.send_all(pattern(5000));
  ASSERT_TRUE(sink.wait_end(0));
  EXPECT_EQ(sink.state(0).received, 1000u);
  EXPECT_EQ(sink.state(0).end, End::kReset);
  EXPECT_EQ(c.read_to_end().end, End::kReset);
  EXPECT_EQ(proxy->stats().bytes_upstream, 1000u);
  EXPECT_EQ(proxy->stats().resets_injected, 1u);
  // The budget is per connection, for new ones too, until heal.
  Client second(proxy->port());
  second.send_all(pattern(1500));
  ASSERT_TRUE(sink.wait_end(1));
  EXPECT_EQ(sink.state(1).received, 1000u);
  ASSERT_TRUE(proxy->heal().has_value());
  Client third(proxy->port());
  third.send_all(pattern(1500));
  EXPECT_TRUE(sink.wait_received(2, 1500));
  EXPECT_EQ(sink.state(2).end, End::kOpen);
}

TEST(FaultProxy, CutAfterDownstreamCountsFromTheFault) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  Client c(proxy->port());
  c.send_all("0123456789");
  ASSERT_EQ(c.read_n(10).bytes, "0123456789");
  ASSERT_TRUE(proxy->cut_after(FlowDirection::kDownstream, 6).has_value());
  c.send_all("abcdefghij");
  const auto got = c.read_to_end();
  EXPECT_EQ(got.bytes, "abcdef");
  EXPECT_EQ(got.end, End::kReset);
}

TEST(FaultProxy, HalfOpenSilentStopsOneDirectionOnly) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  Client c(proxy->port());
  ASSERT_TRUE(proxy->set_half_open(FlowDirection::kDownstream, HalfOpenMode::kSilent).has_value());
  c.send_all("ping");
  ASSERT_TRUE(server.wait_received(0, 4));  // upstream still flows
  const auto during = c.read_n(4, milliseconds(150));
  EXPECT_EQ(during.bytes, "");
  EXPECT_EQ(during.end, End::kOpen);
  EXPECT_EQ(proxy->stats().bytes_downstream, 0u);
  ASSERT_TRUE(proxy->heal().has_value());
  EXPECT_EQ(c.read_n(4).bytes, "ping");
}

TEST(FaultProxy, HalfOpenClosedSendsAFinOneWayAndDropsThatWay) {
  TestServer sink(/*echo=*/false);
  auto proxy = make_proxy(sink.port());
  ASSERT_NE(proxy, nullptr);
  Client c(proxy->port());
  c.send_all("ab");
  ASSERT_TRUE(sink.wait_received(0, 2));
  ASSERT_TRUE(proxy->set_half_open(FlowDirection::kUpstream, HalfOpenMode::kClosed).has_value());
  ASSERT_TRUE(sink.wait_end(0));
  EXPECT_EQ(sink.state(0).end, End::kEof);
  c.send_all("dropped");  // read by the proxy and discarded
  EXPECT_TRUE(wait_stats(*proxy, [](const FaultProxyStats& s) { return s.bytes_upstream == 2; }));
  EXPECT_EQ(sink.state(0).received, 2u);
}

TEST(FaultProxy, UnreachableUpstreamResetsTheClient) {
  std::uint16_t dead_port = 0;
  ::close(listen_loopback(&dead_port));  // a port nobody listens on
  auto proxy = make_proxy(dead_port);
  ASSERT_NE(proxy, nullptr);
  Client c(proxy->port());
  EXPECT_EQ(c.read_to_end().end, End::kReset);
  EXPECT_EQ(proxy->stats().upstream_failures, 1u);
  EXPECT_EQ(proxy->stats().active, 0u);
}

TEST(FaultProxy, RejectsBadArguments) {
  FaultProxyOptions o;
  o.upstream_port = 0;
  auto p = FaultProxy::start(o);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message().find("upstream port"), std::string::npos);
  o.upstream_port = 1;
  o.upstream_host = "no-such-host.invalid";
  p = FaultProxy::start(o);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message().find("no-such-host.invalid"), std::string::npos);
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  EXPECT_FALSE(proxy->set_latency(milliseconds(-1), milliseconds(0)).has_value());
}

TEST(FaultProxy, DestroyingTheProxyEndsItsConnections) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  Client c(proxy->port());
  c.send_all("x");
  ASSERT_EQ(c.read_n(1).bytes, "x");
  proxy.reset();
  EXPECT_NE(c.read_to_end().end, End::kOpen);
  ASSERT_TRUE(server.wait_end(0));
}

// Load with faults switched from other threads: every connection's bytes
// arrive intact and in order, or the connection ends with a reset — never
// corrupted, never hung.
TEST(FaultProxy, ManyConnectionsUnderSwitchingFaults) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  constexpr int kClients = 6;
  constexpr std::size_t kBytes = 1 << 20;
  std::atomic<bool> done{false};
  std::atomic<int> intact{0};
  std::thread chaos([&] {
    unsigned i = 0;
    while (!done) {
      switch (i++ % 4) {
        case 0:
          (void)proxy->set_latency(milliseconds(1), milliseconds(2));
          break;
        case 1:
          (void)proxy->set_bandwidth(8 << 20);
          break;
        case 2:
          (void)proxy->set_blackhole(true);
          break;
        default:
          (void)proxy->heal();
          break;
      }
      (void)proxy->stats();
      std::this_thread::sleep_for(milliseconds(3));
    }
    (void)proxy->heal();
  });
  std::vector<std::thread> clients;
  for (int k = 0; k < kClients; ++k) {
    clients.emplace_back([&, k] {
      Client c(proxy->port());
      const std::string data = pattern(kBytes, static_cast<unsigned>(k + 1));
      std::thread w([&] {
        for (std::size_t off = 0; off < data.size(); off += 4096) {
          const ssize_t n = ::send(c.fd(), data.data() + off, 4096, MSG_NOSIGNAL);
          if (n != 4096) return;
        }
      });
      const auto got = c.read_n(kBytes);
      w.join();
      if (got.bytes == data) intact.fetch_add(1);
    });
  }
  for (auto& t : clients) t.join();
  done = true;
  chaos.join();
  EXPECT_EQ(intact.load(), kClients);
  EXPECT_EQ(proxy->stats().bytes_upstream, kClients * kBytes);
  EXPECT_EQ(proxy->stats().bytes_downstream, kClients * kBytes);
}

TEST(FaultProxy, ResetAllWhileTrafficFlowsNeverHangs) {
  TestServer server;
  auto proxy = make_proxy(server.port());
  ASSERT_NE(proxy, nullptr);
  for (int round = 0; round < 20; ++round) {
    Client c(proxy->port());
    int write_errno = 0;
    std::thread w([&] {
      const std::string chunk = pattern(8192);
      while (::send(c.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
      }
      write_errno = errno;
    });
    ASSERT_EQ(c.read_n(8192).bytes.size(), 8192u);
    ASSERT_TRUE(proxy->reset_all().has_value());
    const End end = c.read_to_end().end;
    w.join();
    // The socket reports ECONNRESET once, to whichever call sees it first:
    // the reader, or the writer (after which the reader sees an end).
    EXPECT_TRUE(end == End::kReset || write_errno == ECONNRESET)
        << "round " << round << ": end " << static_cast<int>(end) << ", writer "
        << std::strerror(write_errno);
  }
  EXPECT_EQ(proxy->stats().resets_injected, 20u);
  EXPECT_TRUE(wait_stats(*proxy, [](const FaultProxyStats& s) { return s.active == 0; }));
}

}  // namespace
}  // namespace myelin::net
