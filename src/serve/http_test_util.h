// Helpers of the HTTP server tests: a raw HTTP/1.1 client socket whose
// every read has a deadline, and request builders. Header-only, for
// http_server_test.cc.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "myelin/base/clock.h"

namespace myelin::serve::testing {

using std::chrono::milliseconds;

// Generous: sanitizer builds are slow, and a deadline only bounds a failure.
inline constexpr Nanos kTimeout = std::chrono::seconds(20);

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 client socket.

struct Reply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  [[nodiscard]] std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }
};

inline std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

::testing::AssertionResult contains(const std::string& haystack, std::string_view needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << needle << "' not in: " << haystack.substr(0, 400);
}

class Raw {
 public:
  // Connects (blocking) to 127.0.0.1:port. `rcvbuf` > 0 shrinks the receive
  // buffer first, so that a client that stops reading pushes back sooner.
  explicit Raw(std::uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      why_ = std::string("socket: ") + std::strerror(errno);
      return;
    }
    if (rcvbuf > 0) (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    const int one = 1;
    (void)::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      why_ = std::string("connect: ") + std::strerror(errno);
      close();
      return;
    }
    (void)::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~Raw() { close(); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  [[nodiscard]] const std::string& why() const { return why_; }

  // Writes all of `bytes`. Fails if the peer stops taking them until the deadline.
  bool send(std::string_view bytes, Nanos timeout = kTimeout) {
    const MonoTime deadline = mono_now() + timeout;
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        why_ = std::string("send: ") + std::strerror(errno);
        return false;
      }
      if (!poll_for(POLLOUT, deadline)) {
        why_ = "send: the server took no more bytes until the deadline (" +
               std::to_string(bytes.size()) + " left)";
        return false;
      }
    }
    return true;
  }

  // Reads one whole answer (status line, headers, Content-Length body).
  std::optional<Reply> reply(Nanos timeout = kTimeout) {
    const MonoTime deadline = mono_now() + timeout;
    for (;;) {
      const std::size_t end = in_.find("\r\n\r\n");
      if (end != std::string::npos) {
        Reply r;
        std::size_t length = 0;
        if (!parse_head(std::string_view(in_).substr(0, end), r, length)) {
          why_ = "malformed answer head: " + in_.substr(0, end);
          return std::nullopt;
        }
        if (in_.size() >= end + 4 + length) {
          r.body = in_.substr(end + 4, length);
          in_.erase(0, end + 4 + length);
          return r;
        }
      }
      if (eof_) {
        why_ = in_.empty() ? "the connection closed before an answer"
                           : "the connection closed inside an answer (" +
                                 std::to_string(in_.size()) + " bytes: " + in_.substr(0, 200) + ")";
        return std::nullopt;
      }
      if (!fill(deadline)) {
        why_ = "no complete answer before the deadline (" + std::to_string(in_.size()) +
               " bytes buffered)";
        return std::nullopt;
      }
    }
  }

  // True when the server closes (EOF or reset) with no further bytes first.
  bool eof(Nanos timeout = kTimeout) {
    const MonoTime deadline = mono_now() + timeout;
    while (!eof_ && in_.empty()) {
      if (!fill(deadline)) {
        why_ = "the connection is still open at the deadline";
        return false;
      }
    }
    if (!in_.empty()) {
      why_ = "unexpected bytes before the close: " + in_.substr(0, 200);
      return false;
    }
    return true;
  }

  // True when nothing (no byte, no close) arrives for `d`.
  bool quiet(Nanos d) {
    if (!in_.empty() || eof_) return false;
    return !fill(mono_now() + d);
  }

  void half_close() { (void)::shutdown(fd_, SHUT_WR); }
  // An abortive close: the server reads ECONNRESET, not end of stream.
  void reset() {
    if (fd_ < 0) return;
    const linger l{1, 0};
    (void)::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  bool poll_for(short events, MonoTime deadline) {
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - mono_now()).count();
      if (left < 0) return false;
      pollfd p{fd_, events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left) + 1);
      if (n > 0) return true;
      if (n == 0 && mono_now() >= deadline) return false;
    }
  }

  // Reads what arrives; false when nothing did before the deadline.
  bool fill(MonoTime deadline) {
    char buf[64 * 1024];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        in_.append(buf, static_cast<std::size_t>(n));
        return true;
      }
      if (n == 0) {
        eof_ = true;
        return true;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        eof_ = true;  // reset: as closed as it gets
        return true;
      }
      if (!poll_for(POLLIN, deadline)) return false;
    }
  }

  static bool parse_head(std::string_view head, Reply& r, std::size_t& length) {
    std::size_t eol = head.find("\r\n");
    const std::string_view status_line = head.substr(0, eol);
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") return false;
    r.status = std::stoi(std::string(status_line.substr(9, 3)));
    while (eol != std::string_view::npos) {
      head.remove_prefix(eol + 2);
      eol = head.find("\r\n");
      const std::string_view line = head.substr(0, eol);
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) return false;
      std::string value(line.substr(colon + 1));
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers.emplace_back(lower(std::string(line.substr(0, colon))), value);
    }
    const std::string cl = r.header("content-length");
    length = cl.empty() ? 0 : std::stoul(cl);
    return true;
  }

  int fd_ = -1;
  std::string in_;
  bool eof_ = false;
  std::string why_;
};

// ---------------------------------------------------------------------------
// Requests.

inline std::string get(std::string_view path, std::string_view version = "HTTP/1.1",
                       std::string_view extra = "") {
  return "GET " + std::string(path) + " " + std::string(version) + "\r\nHost: myelin\r\n" +
         std::string(extra) + "\r\n";
}

inline std::string post(std::string_view path, std::string_view body, std::string_view extra = "") {
  return "POST " + std::string(path) +
         " HTTP/1.1\r\nHost: myelin\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + std::string(extra) + "\r\n" + std::string(body);
}

// An OIP infer body for a model with input X [N, 4].
inline std::string infer_body(std::string_view id, std::size_t rows = 1) {
  static constexpr std::string_view kValues[] = {"0.5", "-1.25", "2", "0.125"};
  std::string s = R"({"id":")" + std::string(id) + R"(","inputs":[{"name":"X","shape":[)" +
                  std::to_string(rows) + R"(,4],"datatype":"FP32","data":[)";
  s.reserve(s.size() + rows * 4 * 6 + 8);
  for (std::size_t i = 0; i < rows * 4; ++i) {
    if (i != 0) s += ',';
    s += kValues[i % 4];
  }
  return s + "]}]}";
}

inline std::string infer(std::string_view model, std::string_view id, std::size_t rows = 1) {
  return post("/v2/models/" + std::string(model) + "/infer", infer_body(id, rows));
}

inline std::string id_field(std::string_view id) { return "\"id\":\"" + std::string(id) + "\""; }

template <class F>
bool eventually(F done, Nanos timeout = kTimeout) {
  const MonoTime deadline = mono_now() + timeout;
  while (!done()) {
    if (mono_now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

inline Nanos since(MonoTime t0) { return mono_now() - t0; }

}  // namespace myelin::serve::testing
