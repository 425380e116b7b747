// HttpServer with --tls-cert/--tls-key, over real TCP on 127.0.0.1, with a
// self-signed certificate made at test time: OIP requests over TLS 1.3 and
// 1.2 with ALPN http/1.1, keep-alive and pipelining through the TLS layer,
// and the clients a public HTTPS port meets (plain HTTP, garbage, silent
// and vanishing peers, refused ALPN, distrust), none of which stops it.
// Every wait has a deadline.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "myelin/net/tls.h"
#include "myelin/serve/http_client.h"
#include "myelin/serve/http_server.h"
#include "myelin/serve/model_repository.h"
#include "src/model/test_models.h"
#include "src/net/tls_test_util.h"
#include "src/serve/http_test_util.h"

namespace myelin::serve {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test helpers
namespace fs = std::filesystem;

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = net::testing::make_test_cert();
    ASSERT_FALSE(cert_.cert_file.empty());
    model_ = cert_.dir + "/linear.onnx";
    std::ofstream(model_, std::ios::binary) << model::testing::linear_regressor(4, 7);
  }

  void start(HttpServerOptions options = {}) {
    RepositoryOptions ro;
    ro.files = {{"linear", model_}};
    ro.log = [](const std::string&) {};
    auto repo = ModelRepository::create(std::move(ro));
    ASSERT_TRUE(repo.has_value()) << repo.error().message();
    repo_ = std::move(repo.value());
    ASSERT_EQ(repo_->load_all(), 1u);
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 2;
    options.tls_cert_file = cert_.cert_file;
    options.tls_key_file = cert_.key_file;
    options.log = [this](const std::string& line) {
      std::lock_guard lock(log_mu_);
      log_ += line + "\n";
    };
    auto server = HttpServer::create(std::move(options), *repo_);
    ASSERT_TRUE(server.has_value()) << server.error().message();
    server_ = std::move(server.value());
    ASSERT_TRUE(server_->start().ok());
    port_ = server_->port();
  }

  void TearDown() override {
    if (server_) (void)server_->shutdown(mono_now() + std::chrono::seconds(5));
    server_.reset();
    repo_.reset();
  }

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  net::TlsClientOptions trusting() const {
    net::TlsClientOptions o;
    o.ca_file = cert_.cert_file;
    return o;
  }
  std::string log() {
    std::lock_guard lock(log_mu_);
    return log_;
  }
  const net::TlsStats& tls_stats() const { return *server_->metrics().tls; }

  // One OIP inference on `client`, checked.
  static void infer_ok(HttpClient& client, const std::string& id) {
    auto r = client.request("POST", "/v2/models/linear/infer", infer_body(id), {}, kTimeout);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_TRUE(contains(r->body, id_field(id)));
    EXPECT_TRUE(contains(r->body, "\"outputs\":["));
  }

  net::testing::TestCert cert_;
  std::string model_;
  std::unique_ptr<ModelRepository> repo_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
  std::mutex log_mu_;
  std::string log_;
};

// Reads `n` whole answers (Content-Length framed) from a TLS stream.
std::vector<Reply> read_replies(net::Stream& s, std::size_t n) {
  std::vector<Reply> out;
  std::string in;
  const MonoTime deadline = mono_now() + kTimeout;
  char buf[16384];
  while (out.size() < n) {
    const std::size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      Reply r;
      r.status = std::stoi(in.substr(9, 3));
      const std::string head = lower(in.substr(0, end));
      const std::size_t cl = head.find("content-length: ");
      const std::size_t length = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
      if (in.size() >= end + 4 + length) {
        r.body = in.substr(end + 4, length);
        in.erase(0, end + 4 + length);
        out.push_back(std::move(r));
        continue;
      }
    }
    auto r = s.read(std::as_writable_bytes(std::span(buf)));
    if (!r || r->eof) break;
    if (r->would_block) {
      if (!s.wait(kIoReadable, deadline).ok()) break;
      continue;
    }
    in.append(buf, r->bytes);
  }
  return out;
}

bool send_all(net::Stream& s, std::string_view data) {
  const MonoTime deadline = mono_now() + kTimeout;
  std::size_t off = 0;
  while (off < data.size()) {
    auto r = s.write(std::as_bytes(std::span(data.substr(off))));
    if (!r) return false;
    if (r->would_block) {
      if (!s.wait(kIoWritable, deadline).ok()) return false;
      continue;
    }
    off += r->bytes;
  }
  return true;
}

TEST_F(HttpsServerTest, InferOverTls13AndTls12WithAlpnAndKeepAlive) {
  ASSERT_NO_FATAL_FAILURE(start());
  for (const auto version : {net::TlsVersion::kTls13, net::TlsVersion::kTls12}) {
    auto o = trusting();
    o.max_version = version;
    o.min_version = version;
    auto client = HttpClient::connect(url(), kTimeout, o);
    ASSERT_TRUE(client) << client.error().to_string();
    ASSERT_NE((*client)->tls(), nullptr);
    EXPECT_EQ((*client)->tls()->version(), to_string(version));
    EXPECT_EQ((*client)->tls()->alpn(), "http/1.1");
    for (int i = 0; i < 20; ++i) {  // one connection, many requests
      ASSERT_NO_FATAL_FAILURE(infer_ok(**client, "k" + std::to_string(i)));
    }
    auto meta = (*client)->request("GET", "/v2/models/linear", {}, {}, kTimeout);
    ASSERT_TRUE(meta);
    EXPECT_EQ(meta->status, 200);
  }
  EXPECT_EQ(tls_stats().handshakes.load(), 2u);
  EXPECT_EQ(server_->metrics().accepted_connections.load(), 2u);
}

TEST_F(HttpsServerTest, PipelinedRequestsAreAnsweredInOrderThroughTls) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto ctx = net::TlsContext::client(trusting());
  ASSERT_TRUE(ctx);
  auto s = net::connect_tls("127.0.0.1", port_, *ctx, "127.0.0.1", kTimeout);
  ASSERT_TRUE(s) << s.error().to_string();
  // 200 requests in one write: more than the pipeline limit (128), so the
  // connection pauses and resumes with requests held inside the TLS layer.
  std::string all;
  for (int i = 0; i < 200; ++i) all += infer("linear", "p" + std::to_string(i));
  all += get("/v2/health/live");
  ASSERT_TRUE(send_all(**s, all));
  const auto replies = read_replies(**s, 201);
  ASSERT_EQ(replies.size(), 201u);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(replies[i].status, 200);
    EXPECT_TRUE(contains(replies[i].body, id_field("p" + std::to_string(i))));
  }
  EXPECT_EQ(replies[200].status, 200);
  EXPECT_EQ(replies[200].body, "");
}

TEST_F(HttpsServerTest, HostileAndBrokenClientsAreDroppedAndCountedAndTheServerServesOn) {
  HttpServerOptions o;
  o.header_timeout = std::chrono::milliseconds(300);
  ASSERT_NO_FATAL_FAILURE(start(o));
  {  // plain HTTP to the TLS port: a plain 400 saying so, then close
    Raw c(port_);
    ASSERT_TRUE(c.connected()) << c.why();
    ASSERT_TRUE(c.send(get("/v2/health/live")));
    auto r = c.reply();
    ASSERT_TRUE(r) << c.why();
    EXPECT_EQ(r->status, 400);
    EXPECT_TRUE(contains(r->body, "this port speaks HTTPS"));
    EXPECT_TRUE(c.eof());
  }
  {  // garbage
    Raw c(port_);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send(std::string(64, '\x16') + std::string(500, 'x')));
    EXPECT_TRUE(c.eof());
  }
  {  // a handshake that never starts: closed after the header timeout
    Raw c(port_);
    ASSERT_TRUE(c.connected());
    EXPECT_TRUE(c.eof());
  }
  {  // connect and vanish with a reset
    Raw c(port_);
    ASSERT_TRUE(c.connected());
    c.reset();
  }
  {  // a client that trusts another CA
    const auto other = net::testing::make_test_cert();
    net::TlsClientOptions distrust;
    distrust.ca_file = other.cert_file;
    auto client = HttpClient::connect(url(), kTimeout, distrust);
    ASSERT_FALSE(client);
    EXPECT_TRUE(contains(client.error().to_string(), "certificate verify failed"));
  }
  {  // a client that speaks only h2
    auto h2 = trusting();
    h2.alpn = {"h2"};
    auto client = HttpClient::connect(url(), kTimeout, h2);
    ASSERT_FALSE(client);
  }
  // Every one of them counted once the server has seen them off.
  EXPECT_TRUE(eventually([&] { return tls_stats().handshake_failures.load() == 6; }))
      << tls_stats().handshake_failures.load();
  EXPECT_EQ(tls_stats().plaintext_requests.load(), 1u);
  EXPECT_TRUE(eventually([&] { return server_->metrics().open_connections.load() == 0; }));
  EXPECT_TRUE(contains(log(), "\"event\":\"tls_failed\""));
  EXPECT_TRUE(contains(log(), "plain HTTP"));
  // And it still serves, with the counters in /metrics.
  auto client = HttpClient::connect(url(), kTimeout, trusting());
  ASSERT_TRUE(client) << client.error().to_string();
  ASSERT_NO_FATAL_FAILURE(infer_ok(**client, "after"));
  auto m = (*client)->request("GET", "/metrics", {}, {}, kTimeout);
  ASSERT_TRUE(m);
  EXPECT_TRUE(contains(m->body, "myelin_tls_handshake_failures_total 6"));
  EXPECT_TRUE(contains(m->body, "myelin_tls_plaintext_requests_total 1"));
  EXPECT_TRUE(contains(m->body, "myelin_tls_handshakes_total 1"));
}

TEST_F(HttpsServerTest, ClientGoneWhileItsAnswerIsOwedIsSafe) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto ctx = net::TlsContext::client(trusting());
  ASSERT_TRUE(ctx);
  for (int round = 0; round < 20; ++round) {
    auto s = net::connect_tls("127.0.0.1", port_, *ctx, "localhost", kTimeout);
    ASSERT_TRUE(s) << s.error().to_string();
    std::string many;
    for (int i = 0; i < 50; ++i) many += infer("linear", "g" + std::to_string(i), 64);
    ASSERT_TRUE(send_all(**s, many));
    if (round % 2 == 0) {
      (*s)->close();  // close_notify, answers still owed
    } else {
      s->reset();  // the same without waiting
    }
  }
  auto client = HttpClient::connect(url(), kTimeout, trusting());
  ASSERT_TRUE(client) << client.error().to_string();
  ASSERT_NO_FATAL_FAILURE(infer_ok(**client, "still"));
}

TEST(HttpsServerConfig, StartupErrorsNameTheFile) {
  RepositoryOptions ro;
  ro.log = [](const std::string&) {};
  auto repo = ModelRepository::create(std::move(ro));
  ASSERT_TRUE(repo);
  const auto cert = net::testing::make_test_cert();
  const auto other = net::testing::make_test_cert();
  HttpServerOptions o;
  o.tls_cert_file = cert.cert_file;
  auto r = HttpServer::create(o, **repo);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error().to_string(), "give both"));
  o.tls_key_file = cert.dir + "/absent.key";
  r = HttpServer::create(o, **repo);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error().to_string(), "absent.key"));
  o.tls_key_file = other.key_file;
  r = HttpServer::create(o, **repo);
  ASSERT_FALSE(r);
  EXPECT_TRUE(
      contains(r.error().to_string(), "does not match the certificate in " + cert.cert_file));
  o.tls_key_file = cert.key_file;
  r = HttpServer::create(o, **repo);
  EXPECT_TRUE(r) << r.error().to_string();
}

}  // namespace
}  // namespace myelin::serve
