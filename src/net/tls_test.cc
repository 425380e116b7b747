#include "myelin/net/tls.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "src/net/tls_test_util.h"

namespace myelin::net {
namespace {

constexpr auto kWait = std::chrono::seconds(20);

std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Writes all of `s`, retrying the unsent rest as TlsStream requires.
Status write_all(Stream& s, std::string_view data) {
  const MonoTime deadline = mono_now() + kWait;
  std::size_t off = 0;
  while (off < data.size()) {
    MYELIN_ASSIGN_OR_RETURN(auto r, s.write(bytes(data.substr(off))));
    if (r.would_block) {
      MYELIN_RETURN_IF_ERROR(s.wait(kIoWritable, deadline));
      continue;
    }
    off += r.bytes;
  }
  return ok_status();
}

// Reads until `n` bytes or end of stream.
Result<std::string> read_n(Stream& s, std::size_t n) {
  const MonoTime deadline = mono_now() + kWait;
  std::string out;
  char buf[4096];
  while (out.size() < n) {
    MYELIN_ASSIGN_OR_RETURN(auto r, s.read(std::as_writable_bytes(std::span(buf))));
    if (r.would_block) {
      MYELIN_RETURN_IF_ERROR(s.wait(kIoReadable, deadline));
      continue;
    }
    if (r.eof) break;
    out.append(buf, r.bytes);
  }
  return out;
}

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = testing::make_test_cert();
    ASSERT_FALSE(cert_.cert_file.empty()) << "could not make a test certificate";
    TlsServerOptions so;
    so.cert_file = cert_.cert_file;
    so.key_file = cert_.key_file;
    so.plaintext_reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    so.on_failure = [this](const std::string&, const Status& s) {
      failures_.push_back(std::string(s.message()));
    };
    auto ctx = TlsContext::server(so);
    ASSERT_TRUE(ctx) << ctx.error().to_string();
    server_ctx_ = *ctx;
  }

  std::shared_ptr<TlsContext> client_ctx(TlsClientOptions o = {}) {
    if (o.ca_file.empty() && !o.insecure) o.ca_file = cert_.cert_file;
    auto ctx = TlsContext::client(o);
    EXPECT_TRUE(ctx) << ctx.error().to_string();
    return ctx ? *ctx : nullptr;
  }

  // A connected client/server pair over a socketpair, handshakes not run.
  std::pair<std::unique_ptr<TlsStream>, std::unique_ptr<TlsStream>> pair(
      std::shared_ptr<TlsContext> cc, const std::string& name = "localhost") {
    auto sp = socket_pair();
    EXPECT_TRUE(sp);
    auto c = TlsStream::client(std::move(cc), std::move(sp->first), name);
    auto s = TlsStream::server(server_ctx_, std::move(sp->second));
    EXPECT_TRUE(c) << c.error().to_string();
    EXPECT_TRUE(s) << s.error().to_string();
    return {std::move(*c), std::move(*s)};
  }

  // Runs both handshakes (the server's on another thread).
  static std::pair<Status, Status> handshake(TlsStream& c, TlsStream& s) {
    auto server = std::async(std::launch::async, [&] { return s.handshake(mono_now() + kWait); });
    Status cs = c.handshake(mono_now() + kWait);
    if (!cs.ok()) c.close();  // the server sees the end of the stream, not a hang
    return {cs, server.get()};
  }

  testing::TestCert cert_;
  std::shared_ptr<TlsContext> server_ctx_;
  std::vector<std::string> failures_;
};

TEST_F(Tls, Tls13WithAlpnAndDataBothWaysThenCloseNotifyIsEof) {
  auto [c, s] = pair(client_ctx());
  auto [cs, ss] = handshake(*c, *s);
  ASSERT_TRUE(cs.ok()) << cs.to_string();
  ASSERT_TRUE(ss.ok()) << ss.to_string();
  EXPECT_EQ(c->version(), "TLSv1.3");
  EXPECT_EQ(s->version(), "TLSv1.3");
  EXPECT_EQ(c->alpn(), "http/1.1");
  EXPECT_EQ(s->alpn(), "http/1.1");
  ASSERT_TRUE(write_all(*c, "ping").ok());
  auto got = read_n(*s, 4);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "ping");
  ASSERT_TRUE(write_all(*s, "pong").ok());
  got = read_n(*c, 4);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "pong");
  c->close();  // sends close_notify
  got = read_n(*s, 1);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, "");  // end of stream, not an error
  EXPECT_EQ(server_ctx_->stats().handshakes.load(), 1u);
  EXPECT_EQ(server_ctx_->stats().handshake_failures.load(), 0u);
}

TEST_F(Tls, Tls12NegotiatesAnEcdheAeadSuite) {
  TlsClientOptions o;
  o.max_version = TlsVersion::kTls12;
  auto [c, s] = pair(client_ctx(o));
  auto [cs, ss] = handshake(*c, *s);
  ASSERT_TRUE(cs.ok()) << cs.to_string();
  ASSERT_TRUE(ss.ok()) << ss.to_string();
  EXPECT_EQ(s->version(), "TLSv1.2");
  EXPECT_EQ(s->cipher().rfind("ECDHE-", 0), 0u) << s->cipher();
  EXPECT_NE(s->cipher().find("GCM"), std::string::npos) << s->cipher();
  EXPECT_EQ(c->alpn(), "http/1.1");
}

TEST_F(Tls, ClientOfferingOnlyOtherProtocolsIsRefused) {
  TlsClientOptions o;
  o.alpn = {"h2"};
  auto [c, s] = pair(client_ctx(o));
  auto [cs, ss] = handshake(*c, *s);
  EXPECT_FALSE(cs.ok());
  ASSERT_FALSE(ss.ok());
  EXPECT_NE(ss.to_string().find("TLS handshake with"), std::string::npos) << ss.to_string();
  EXPECT_EQ(server_ctx_->stats().handshake_failures.load(), 1u);
  ASSERT_EQ(failures_.size(), 1u);
}

TEST_F(Tls, ClientOfferingNoAlpnIsServed) {
  TlsClientOptions o;
  o.alpn = {};
  auto [c, s] = pair(client_ctx(o));
  auto [cs, ss] = handshake(*c, *s);
  ASSERT_TRUE(cs.ok()) << cs.to_string();
  ASSERT_TRUE(ss.ok()) << ss.to_string();
  EXPECT_EQ(s->alpn(), "");
}

TEST_F(Tls, UntrustedCertificateAndWrongNameFailWithTheReason) {
  const auto other = testing::make_test_cert();  // a CA that did not sign the server's
  TlsClientOptions o;
  o.ca_file = other.cert_file;
  {
    auto [c, s] = pair(client_ctx(o));
    auto [cs, ss] = handshake(*c, *s);
    ASSERT_FALSE(cs.ok());
    EXPECT_NE(cs.to_string().find("certificate verify failed"), std::string::npos)
        << cs.to_string();
    EXPECT_FALSE(ss.ok());
  }
  {
    auto [c, s] = pair(client_ctx(), "example.com");
    auto [cs, ss] = handshake(*c, *s);
    ASSERT_FALSE(cs.ok());
    EXPECT_NE(cs.to_string().find("hostname mismatch"), std::string::npos) << cs.to_string();
  }
  {
    TlsClientOptions insecure;
    insecure.insecure = true;
    auto [c, s] = pair(client_ctx(insecure), "example.com");
    auto [cs, ss] = handshake(*c, *s);
    EXPECT_TRUE(cs.ok()) << cs.to_string();
    EXPECT_TRUE(ss.ok()) << ss.to_string();
  }
  {
    auto [c, s] = pair(client_ctx(), "127.0.0.1");  // the IP SAN
    auto [cs, ss] = handshake(*c, *s);
    EXPECT_TRUE(cs.ok()) << cs.to_string();
  }
}

TEST_F(Tls, PlainHttpToTheTlsSideIsAnsweredInPlainTextAndCounted) {
  auto sp = socket_pair();
  ASSERT_TRUE(sp);
  auto s = TlsStream::server(server_ctx_, std::move(sp->second));
  ASSERT_TRUE(s);
  ASSERT_TRUE(write_all(*sp->first, "GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n").ok());
  Status st = (*s)->handshake(mono_now() + kWait);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.to_string().find("plain HTTP"), std::string::npos) << st.to_string();
  EXPECT_EQ(server_ctx_->stats().plaintext_requests.load(), 1u);
  EXPECT_EQ(server_ctx_->stats().handshake_failures.load(), 1u);
  (*s)->close();
  auto got = read_n(*sp->first, 1 << 20);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->rfind("HTTP/1.1 400 ", 0), 0u) << *got;
  // Every later call reports the same failure instead of touching OpenSSL.
  std::byte buf[8];
  EXPECT_FALSE((*s)->read(buf));
}

TEST_F(Tls, GarbageAndEarlyCloseAreHandshakeFailures) {
  {
    auto sp = socket_pair();
    ASSERT_TRUE(sp);
    auto s = TlsStream::server(server_ctx_, std::move(sp->second));
    ASSERT_TRUE(s);
    std::string junk(300, '\x16');  // a handshake record type, then nonsense
    ASSERT_TRUE(write_all(*sp->first, junk).ok());
    EXPECT_FALSE((*s)->handshake(mono_now() + kWait).ok());
  }
  {
    auto sp = socket_pair();
    ASSERT_TRUE(sp);
    auto s = TlsStream::server(server_ctx_, std::move(sp->second));
    ASSERT_TRUE(s);
    sp->first->close();
    const Status st = (*s)->handshake(mono_now() + kWait);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.to_string().find("closed the connection during the handshake"), std::string::npos)
        << st.to_string();
  }
  EXPECT_EQ(server_ctx_->stats().handshake_failures.load(), 2u);
  EXPECT_EQ(server_ctx_->stats().handshakes.load(), 0u);
}

TEST_F(Tls, ContextErrorsNameTheFile) {
  TlsServerOptions o;
  o.cert_file = cert_.dir + "/missing.pem";
  o.key_file = cert_.key_file;
  auto r = TlsContext::server(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("missing.pem"), std::string::npos) << r.error().to_string();

  const std::string junk = cert_.dir + "/junk.pem";
  std::ofstream(junk) << "not a certificate\n";
  o.cert_file = junk;
  r = TlsContext::server(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("junk.pem: not a PEM certificate"), std::string::npos)
      << r.error().to_string();

  o.cert_file = cert_.cert_file;
  o.key_file = junk;
  r = TlsContext::server(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("junk.pem: not an unencrypted PEM private key"),
            std::string::npos)
      << r.error().to_string();

  const auto other = testing::make_test_cert();
  o.key_file = other.key_file;
  r = TlsContext::server(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("does not match the certificate in " + cert_.cert_file),
            std::string::npos)
      << r.error().to_string();

  TlsClientOptions c;
  c.ca_file = cert_.dir + "/no-ca.pem";
  auto rc = TlsContext::client(c);
  ASSERT_FALSE(rc);
  EXPECT_NE(rc.error().to_string().find("no-ca.pem"), std::string::npos);
}

// An echo server on an EventLoop over a watched TlsStream, big enough that
// writes block mid-record and reads leave plaintext inside OpenSSL: the
// retry rule and the pending-data pump. The echo's callback destroys the
// stream when the client is done (a callback dropping the last reference).
TEST_F(Tls, WatchedEchoOfAMegabyteBothWays) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  auto sp = socket_pair();
  ASSERT_TRUE(sp);
  auto server = TlsStream::server(server_ctx_, std::move(sp->second));
  ASSERT_TRUE(server);
  struct Echo {
    std::unique_ptr<TlsStream> stream;
    std::string out;
    std::size_t off = 0;
    bool eof = false;
    std::atomic<bool> gone{false};
    std::size_t echoed = 0;
  } echo;
  echo.stream = std::move(*server);
  auto on_io = [&echo](std::uint32_t) {
    char buf[1000];  // smaller than a record: plaintext stays in OpenSSL
    for (int i = 0; i < 4 && !echo.eof; ++i) {
      auto r = echo.stream->read(std::as_writable_bytes(std::span(buf)));
      if (!r) {
        echo.eof = true;
        break;
      }
      if (r->would_block) break;
      if (r->eof) {
        echo.eof = true;
        break;
      }
      echo.out.append(buf, r->bytes);
      echo.echoed += r->bytes;
    }
    while (echo.off < echo.out.size()) {
      auto w = echo.stream->write(
          bytes(std::string_view(echo.out).substr(echo.off)));  // retry: same bytes first
      if (!w || w->would_block) break;
      echo.off += w->bytes;
    }
    if (echo.eof && echo.off == echo.out.size()) {
      echo.stream.reset();  // destroys the stream inside its own callback
      echo.gone = true;
      return;
    }
    (void)echo.stream->set_interest(kIoReadable | (echo.off < echo.out.size() ? kIoWritable : 0u));
  };
  ASSERT_TRUE(echo.stream->watch(**loop, kIoReadable, on_io).ok());  // before the loop runs
  ASSERT_TRUE((*loop)->start().ok());

  auto client = TlsStream::client(client_ctx(), std::move(sp->first), "localhost");
  ASSERT_TRUE(client);
  TlsStream& c = **client;
  std::string sent(1 << 20, '\0');
  std::uint32_t x = 12345;
  for (auto& ch : sent) {
    x = x * 1664525u + 1013904223u;
    ch = static_cast<char>(x >> 24);
  }
  std::string got;
  std::size_t off = 0;
  const MonoTime deadline = mono_now() + kWait;
  char buf[16384];
  while (got.size() < sent.size()) {
    bool progress = false;
    if (off < sent.size()) {
      auto w = c.write(bytes(std::string_view(sent).substr(off, 100000)));
      ASSERT_TRUE(w) << w.error().to_string();
      off += w->bytes;
      progress |= w->bytes > 0;
    }
    auto r = c.read(std::as_writable_bytes(std::span(buf)));
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_FALSE(r->eof);
    got.append(buf, r->bytes);
    progress |= r->bytes > 0;
    if (!progress) {
      ASSERT_TRUE(c.wait(kIoReadable | (off < sent.size() ? kIoWritable : 0u), deadline).ok());
    }
  }
  EXPECT_TRUE(got == sent) << "echo differs";
  EXPECT_EQ(c.version(), "TLSv1.3");
  c.close();
  const MonoTime stop = mono_now() + kWait;
  while (!echo.gone.load() && mono_now() < stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(echo.gone.load()) << "the server never saw the close";
  ASSERT_TRUE((*loop)->shutdown().ok());
  EXPECT_EQ(echo.echoed, sent.size());
  EXPECT_EQ(server_ctx_->stats().handshakes.load(), 1u);
}

}  // namespace
}  // namespace myelin::net
