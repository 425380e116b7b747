#include "myelin/net/stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "src/net/fd_wait.h"

namespace myelin::net {
namespace {

Status set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return errno_error("fcntl(O_NONBLOCK)", errno);
  }
  return ok_status();
}

// "a.b.c.d:port" or "[v6]:port" for the address at the other end of a
// connected socket; `fallback` when the kernel does not say.
std::string peer_address(int fd, const std::string& fallback) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return fallback;
  char text[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) == nullptr) return fallback;
    return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)) == nullptr) return fallback;
    std::string name = "[";
    name += text;
    name += "]:";
    name += std::to_string(ntohs(in6->sin6_port));
    return name;
  }
  return fallback;
}

// A client of a Unix socket has no address of its own (it is unnamed); what
// identifies it is its process, from SO_PEERCRED.
std::string unix_peer(int fd, const std::string& path) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  std::string name = "unix:";
  name += path;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return name;
  name += " (pid ";
  name += std::to_string(cred.pid);
  name += ", uid ";
  name += std::to_string(cred.uid);
  name += ")";
  return name;
}

Status set_nodelay(int fd) {
  const int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return errno_error("setsockopt(TCP_NODELAY)", errno);
  }
  return ok_status();
}

// Non-blocking connect, waited for with poll() up to `timeout`.
Status connect_with_timeout(int fd, const sockaddr* addr, socklen_t len, Nanos timeout,
                            const std::string& what) {
  MYELIN_RETURN_IF_ERROR(set_nonblocking(fd));
  if (::connect(fd, addr, len) == 0) return ok_status();
  if (errno != EINPROGRESS && errno != EAGAIN) return errno_error("connect " + what, errno);
  pollfd p{fd, POLLOUT, 0};
  const int ms =
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
  const int r = ::poll(&p, 1, ms);
  if (r == 0) return deadline_exceeded("connect " + what + ": timed out");
  if (r < 0) return errno_error("connect " + what + ": poll", errno);
  int err = 0;
  socklen_t elen = sizeof(err);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) return errno_error("connect " + what, err);
  return ok_status();
}

// A Stream over a socket fd.
class FdStream final : public Stream {
 public:
  FdStream(int fd, std::string peer) : Stream(std::move(peer)), fd_(fd) {}
  ~FdStream() override { FdStream::close(); }

  Result<IoResult> read(std::span<std::byte> into) override {
    for (;;) {
      const ssize_t n = ::read(fd_, into.data(), into.size());
      if (n > 0) return IoResult{static_cast<std::size_t>(n), false, false};
      if (n == 0) return IoResult{0, false, true};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{0, true, false};
      return errno_error("read " + peer(), errno);
    }
  }

  Result<IoResult> writev(std::span<const iovec> iov) override {
    for (;;) {
      // sendmsg with MSG_NOSIGNAL: a closed peer is an error, not a SIGPIPE.
      msghdr msg{};
      msg.msg_iov = const_cast<iovec*>(iov.data());
      msg.msg_iovlen = iov.size();
      const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n >= 0) return IoResult{static_cast<std::size_t>(n), false, false};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{0, true, false};
      return errno_error("write " + peer(), errno);
    }
  }

  Status shutdown_write() override {
    if (fd_ >= 0 && ::shutdown(fd_, SHUT_WR) != 0 && errno != ENOTCONN) {
      return errno_error("shutdown " + peer(), errno);
    }
    return ok_status();
  }

  Status watch(EventLoop& loop, std::uint32_t interest, EventLoop::IoCallback on_io) override {
    MYELIN_RETURN_IF_ERROR(loop.register_fd(fd_, interest, std::move(on_io)));
    loop_ = &loop;
    interest_ = interest;
    return ok_status();
  }

  Status set_interest(std::uint32_t interest) override {
    if (loop_ == nullptr) return failed_precondition("Stream::set_interest: not watched");
    if (interest == interest_) return ok_status();
    MYELIN_RETURN_IF_ERROR(loop_->modify_fd(fd_, interest));
    interest_ = interest;
    return ok_status();
  }

  Status wait(std::uint32_t events, MonoTime deadline) override {
    if (fd_ < 0) return failed_precondition("Stream::wait: " + peer() + " is closed");
    MYELIN_ASSIGN_OR_RETURN(const bool ready, wait_fd(fd_, events, deadline));
    if (ready) return ok_status();
    return deadline_exceeded(peer() + ": timed out waiting to " +
                             ((events & kIoReadable) != 0 ? "read" : "write"));
  }

  bool ready_now(std::uint32_t events) override {
    if (fd_ < 0) return true;  // the next call reports the closed stream
    pollfd p{fd_, 0, 0};
    if ((events & kIoReadable) != 0) p.events |= POLLIN;
    if ((events & kIoWritable) != 0) p.events |= POLLOUT;
    // An error (EINTR included) counts as ready: the next call reports or retries.
    return ::poll(&p, 1, 0) != 0;
  }

  void close() override {
    if (fd_ < 0) return;
    if (loop_ != nullptr) (void)loop_->unregister_fd(fd_);
    loop_ = nullptr;
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  EventLoop* loop_ = nullptr;
  std::uint32_t interest_ = 0;
};

}  // namespace

Result<bool> wait_fd(int fd, std::uint32_t events, MonoTime deadline) {
  pollfd p{fd, 0, 0};
  if ((events & kIoReadable) != 0) p.events |= POLLIN;
  if ((events & kIoWritable) != 0) p.events |= POLLOUT;
  for (;;) {
    const auto left = deadline - mono_now();
    const int ms =
        left <= Nanos::zero()
            ? 0
            : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
    const int r = ::poll(&p, 1, ms);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return errno_error("poll", errno);
  }
}

Result<std::unique_ptr<Stream>> Stream::adopt(int fd, std::string peer) {
  if (fd < 0) return invalid_argument("Stream::adopt: bad fd");
  if (Status s = set_nonblocking(fd); !s.ok()) {
    ::close(fd);
    return s;
  }
  return std::unique_ptr<Stream>(new FdStream(fd, std::move(peer)));
}

Result<IoResult> Stream::write(std::span<const std::byte> bytes) {
  const iovec v{const_cast<std::byte*>(bytes.data()), bytes.size()};
  return writev({&v, 1});
}

Result<std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>>> socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return errno_error("socketpair", errno);
  }
  auto a = Stream::adopt(fds[0], "socketpair:a");
  if (!a) {
    ::close(fds[1]);
    return a.error();
  }
  MYELIN_ASSIGN_OR_RETURN(auto b, Stream::adopt(fds[1], "socketpair:b"));
  return std::pair{std::move(*a), std::move(b)};
}

Result<std::unique_ptr<Stream>> connect_tcp(const std::string& host, std::uint16_t port,
                                            Nanos timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string what = host + ":" + std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
      rc != 0) {
    return unavailable("resolve " + what + ": " + ::gai_strerror(rc));
  }
  Status last = unavailable("connect " + what + ": no address");
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    last = connect_with_timeout(fd, ai->ai_addr, ai->ai_addrlen, timeout, what);
    if (last.ok()) last = set_nodelay(fd);
    if (last.ok()) {
      ::freeaddrinfo(res);
      return Stream::adopt(fd, peer_address(fd, what));
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return last;
}

Result<std::unique_ptr<Stream>> connect_unix(const std::string& path, Nanos timeout) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return invalid_argument("unix path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("socket(AF_UNIX)", errno);
  if (Status s = connect_with_timeout(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr), timeout,
                                      "unix:" + path);
      !s.ok()) {
    ::close(fd);
    return s;
  }
  return Stream::adopt(fd, "unix:" + path);
}

// --- Listener -------------------------------------------------------------------

Result<std::unique_ptr<Listener>> Listener::tcp(EventLoop& loop, const std::string& host,
                                                std::uint16_t port, AcceptCallback on_accept,
                                                ListenOptions options) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return invalid_argument("listen: '" + host + "' is not an IPv4 address");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno_error("socket", errno);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    const int e = errno;
    ::close(fd);
    return errno_error("setsockopt(SO_REUSEPORT)", e);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, options.backlog) != 0) {
    const int e = errno;
    ::close(fd);
    return errno_error("listen " + host + ":" + std::to_string(port), e);
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::unique_ptr<Listener> l(new Listener(loop, fd, std::move(on_accept), ""));
  l->port_ = ntohs(addr.sin_port);
  MYELIN_RETURN_IF_ERROR(l->arm());
  return l;
}

Result<std::unique_ptr<Listener>> Listener::unix_socket(EventLoop& loop, const std::string& path,
                                                        AcceptCallback on_accept) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return invalid_argument("unix path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno_error("socket(AF_UNIX)", errno);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 128) != 0) {
    const int e = errno;
    ::close(fd);
    return errno_error("listen unix:" + path, e);
  }
  std::unique_ptr<Listener> l(new Listener(loop, fd, std::move(on_accept), path));
  MYELIN_RETURN_IF_ERROR(l->arm());
  return l;
}

Status Listener::arm() {
  return loop_.register_fd(fd_, kIoReadable, [this](std::uint32_t) { accept_ready(); });
}

void Listener::accept_ready() {
  for (;;) {
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return;  // EAGAIN, or a transient error: try again on the next event
    std::string name;
    if (unix_path_.empty()) {
      (void)set_nodelay(c);
      name = peer_address(c, "tcp:?");
    } else {
      name = unix_peer(c, unix_path_);
    }
    auto s = Stream::adopt(c, std::move(name));
    if (s) on_accept_(std::move(*s));
  }
}

void Listener::close() {
  if (fd_ < 0) return;
  (void)loop_.unregister_fd(fd_);
  ::close(fd_);
  fd_ = -1;
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

Listener::~Listener() { close(); }

}  // namespace myelin::net
