// A fault for the integration tests: a TCP forwarder between the client and
// the private RabbitMQ node that can go silent (a black hole).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace myelin::amqp::testing {

// A one-connection TCP forwarder on loopback. blackhole() stops it moving
// bytes in either direction while keeping both sockets open, as a dead
// middlebox or a paused peer would.
class SilenceableProxy {
 public:
  SilenceableProxy(const std::string& host, std::uint16_t port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(listen_fd_, 1), 0);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    upstream_.sin_family = AF_INET;
    upstream_.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &upstream_.sin_addr);
    thread_ = std::thread([this] { run(); });
  }
  ~SilenceableProxy() {
    stop_ = true;
    thread_.join();
    for (int fd : {listen_fd_, client_, server_}) {
      if (fd >= 0) ::close(fd);
    }
  }
  std::uint16_t port() const { return port_; }
  void blackhole() { silent_ = true; }

 private:
  void run() {
    pollfd lp{listen_fd_, POLLIN, 0};
    while (!stop_ && client_ < 0) {
      if (::poll(&lp, 1, 50) > 0) {
        client_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        server_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(server_, reinterpret_cast<sockaddr*>(&upstream_), sizeof(upstream_)) != 0) {
          return;
        }
      }
    }
    char buf[65536];
    while (!stop_) {
      if (silent_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      pollfd p[2] = {{client_, POLLIN, 0}, {server_, POLLIN, 0}};
      if (::poll(p, 2, 20) <= 0) continue;
      for (int i = 0; i < 2 && !silent_; ++i) {
        if ((p[i].revents & (POLLIN | POLLHUP)) == 0) continue;
        const ssize_t n = ::read(p[i].fd, buf, sizeof(buf));
        if (n <= 0) return;
        const int to = i == 0 ? server_ : client_;
        for (ssize_t off = 0; off < n;) {
          const ssize_t w = ::write(to, buf + off, static_cast<std::size_t>(n - off));
          if (w <= 0) return;
          off += w;
        }
      }
    }
  }

  int listen_fd_ = -1;
  int client_ = -1;
  int server_ = -1;
  std::uint16_t port_ = 0;
  sockaddr_in upstream_{};
  std::atomic<bool> stop_{false};
  std::atomic<bool> silent_{false};
  std::thread thread_;
};

}  // namespace myelin::amqp::testing
