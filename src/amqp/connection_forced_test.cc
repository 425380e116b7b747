// A node shutting down (rabbitmqctl stop_app) sends connection.close 320
// CONNECTION_FORCED and resets the socket right after it. The close reason
// must be the broker's 320 text, not the write error the client meets when
// it answers close-ok on the reset socket (issue 22, finding 5). A scripted
// broker on loopback plays the node, so the reset follows the frame every
// time; no RabbitMQ is needed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "myelin/amqp/connection.h"
#include "src/amqp/frame.h"
#include "src/amqp/method.h"

namespace myelin::amqp {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kShutdownText =
    "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'";

// One connection: the handshake, then close 320 and an RST (SO_LINGER 0).
class ShuttingDownBroker {
 public:
  ShuttingDownBroker() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(listen_fd_, 1), 0);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  // Closes with 320, resets the socket and joins.
  ~ShuttingDownBroker() {
    shutdown_.set_value();
    thread_.join();
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }
  // Set by the broker thread before the handshake completes, if it fails.
  std::string error() const { return error_; }

 private:
  bool send(int fd, const wire::Method& m) {
    std::vector<std::byte> out;
    if (!wire::append_method_frame(out, 0, m).ok()) return false;
    return ::write(fd, out.data(), out.size()) == static_cast<ssize_t>(out.size());
  }
  // Reads frames until a method for which `want` is true (5 s at most).
  template <typename M>
  bool expect(int fd) {
    const MonoTime deadline = mono_now() + 5s;
    while (mono_now() < deadline) {
      wire::FrameView frame;
      auto n = wire::parse_frame(in_, 0, frame);
      if (!n) return false;
      if (*n > 0) {
        auto m = wire::decode_method(frame.payload);
        const bool match = m && std::holds_alternative<M>(*m);
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(*n));
        if (match) return true;
        continue;
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      std::byte buf[4096];
      const ssize_t r = ::read(fd, buf, sizeof(buf));
      if (r <= 0) return false;
      in_.insert(in_.end(), buf, buf + r);
    }
    return false;
  }
  void run() {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return void(error_ = "accept failed");
    // As RabbitMQ does; without it Nagle may hold the close frame back until
    // the reset discards it.
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::byte header[8];
    if (::read(fd, header, sizeof(header)) != 8) return void(error_ = "no protocol header");
    wire::ConnectionTune tune;
    tune.channel_max = 16;
    tune.frame_max = 131072;
    tune.heartbeat = 0;
    if (!send(fd, wire::ConnectionStart{}) || !expect<wire::ConnectionStartOk>(fd) ||
        !send(fd, tune) || !expect<wire::ConnectionOpen>(fd) ||
        !send(fd, wire::ConnectionOpenOk{})) {
      ::close(fd);
      return void(error_ = "handshake failed");
    }
    shutdown_.get_future().wait();
    wire::ConnectionClose close;
    close.reply_code = wire::reply_code::kConnectionForced;
    close.reply_text = std::string(kShutdownText);
    if (!send(fd, close)) error_ = "cannot send connection.close";
    const linger reset{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    ::close(fd);  // RST: the client's close-ok meets a reset socket
  }

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<std::byte> in_;
  std::promise<void> shutdown_;
  std::string error_;
  std::thread thread_;
};

TEST(AmqpConnectionForced, CloseReasonIsTheBrokers320TextNotTheReset) {
  // The reset may reach the client before or after it writes close-ok; both
  // orders must give the broker's reason. Ten rounds see both.
  for (int round = 0; round < 10; ++round) {
    std::promise<Status> closed;
    auto closed_f = closed.get_future();
    {
      auto broker = std::make_unique<ShuttingDownBroker>();
      ConnectionConfig config;
      config.port = broker->port();
      config.heartbeat_s = 0;
      config.connect_timeout = 5s;
      auto c = Connection::connect(config);
      ASSERT_TRUE(c) << c.error().to_string() << " / " << broker->error();
      (*c)->on_closed([&](const Status& s) { closed.set_value(s); });
      broker.reset();  // sends 320 + RST, then joins
      ASSERT_EQ(closed_f.wait_for(5s), std::future_status::ready) << "no on_closed";
      const Status why = closed_f.get();
      EXPECT_EQ(why.code(), ErrorCode::kUnavailable) << why.to_string();
      EXPECT_NE(why.message().find("320"), std::string_view::npos) << why.to_string();
      EXPECT_NE(why.message().find(kShutdownText), std::string_view::npos) << why.to_string();
      EXPECT_EQ((*c)->close_reason().to_string(), why.to_string());
    }
  }
}

}  // namespace
}  // namespace myelin::amqp
