// HttpServer end to end, over real TCP on 127.0.0.1: the HTTP/1.1 details a
// client sees (pipelining order, keep-alive, chunked bodies, 100-continue,
// limits, timeouts, the connection limit), clients that vanish at awkward
// moments, graceful shutdown and the connection metrics.
//
// The tests talk raw bytes through a small blocking socket (Raw) so that
// framing, header and close behaviour are visible; every read has a
// deadline, so a server that fails to answer fails the test instead of
// hanging it.
#include "myelin/serve/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "myelin/serve/http_client.h"
#include "myelin/serve/model_repository.h"
#include "src/model/test_models.h"
#include "src/serve/http_test_util.h"

namespace myelin::serve {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test helpers
using std::chrono::milliseconds;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// The fixture: two models on disk, a repository and a server per test.
//  - "linear": LinearRegressor over 4 features, fast.
//  - "slow": a 4-256-256-1 MLP; a request of a few thousand rows keeps its
//    batcher busy for a while, so answers are still owed when a test acts.

constexpr std::size_t kSlowRows = 2048;

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("myelin_http_server_test_" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    std::ofstream(*dir_ / "linear.onnx", std::ios::binary)
        << model::testing::linear_regressor(4, 7);
    std::ofstream(*dir_ / "slow.onnx", std::ios::binary)
        << model::testing::mlp({4, 256, 256, 1}, 11, /*softmax=*/false);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    dir_ = nullptr;
  }

  void start(HttpServerOptions options = {}) {
    RepositoryOptions ro;
    ro.files = {{"linear", (*dir_ / "linear.onnx").string()},
                {"slow", (*dir_ / "slow.onnx").string()}};
    ro.defaults.max_batch = 4 * kSlowRows;
    ro.log = [](const std::string&) {};
    auto repo = ModelRepository::create(std::move(ro));
    ASSERT_TRUE(repo.has_value()) << repo.error().message();
    repo_ = std::move(repo.value());
    ASSERT_EQ(repo_->load_all(), 2u);

    options.host = "127.0.0.1";
    options.port = 0;
    if (options.io_threads == 0) options.io_threads = 2;
    options.log = [](const std::string&) {};
    auto server = HttpServer::create(std::move(options), *repo_);
    ASSERT_TRUE(server.has_value()) << server.error().message();
    server_ = std::move(server.value());
    const Status s = server_->start();
    ASSERT_TRUE(s.ok()) << s.message();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  void TearDown() override {
    if (server_) (void)server_->shutdown(mono_now() + std::chrono::seconds(5));
    server_.reset();
    repo_.reset();
  }

  const ServerMetrics& metrics() const { return server_->metrics(); }
  ModelMetrics& model_metrics(std::string_view name) const {
    return *repo_->find(name).model->metrics;
  }
  bool no_open_connections() const {
    return eventually([&] { return metrics().open_connections.load() == 0; });
  }

  static fs::path* dir_;
  std::unique_ptr<ModelRepository> repo_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
};

fs::path* HttpServerTest::dir_ = nullptr;

// ---------------------------------------------------------------------------
// Pipelining and keep-alive.

TEST_F(HttpServerTest, PipelinedRequestsInOneWriteAreAnsweredInOrder) {
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  // The infer is answered later (by the batcher) than GET /v2 behind it.
  ASSERT_TRUE(c.send(get("/v2/health/live") + infer("linear", "p1") + get("/v2")));

  auto live = c.reply();
  ASSERT_TRUE(live) << c.why();
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(live->body, "");
  auto inferred = c.reply();
  ASSERT_TRUE(inferred) << c.why();
  EXPECT_EQ(inferred->status, 200);
  EXPECT_TRUE(contains(inferred->body, "\"model_name\":\"linear\""));
  EXPECT_TRUE(contains(inferred->body, id_field("p1")));
  EXPECT_TRUE(contains(inferred->body, "\"outputs\":["));
  auto meta = c.reply();
  ASSERT_TRUE(meta) << c.why();
  EXPECT_EQ(meta->status, 200);
  EXPECT_TRUE(contains(meta->body, "\"name\":\"myelin\""));
  EXPECT_TRUE(contains(meta->body, "\"extensions\""));
  EXPECT_TRUE(c.quiet(milliseconds(50))) << "a fourth answer, or a close, to three requests";
}

TEST_F(HttpServerTest, TwoHundredPipelinedInfersAreAnsweredInOrder) {
  // More than max_pipeline (8) at once, and two models whose answers finish
  // out of order: the slow model's requests complete after the fast ones
  // behind them.
  HttpServerOptions o;
  o.max_pipeline = 8;
  ASSERT_NO_FATAL_FAILURE(start(o));
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  std::string all;
  for (int k = 0; k < 200; ++k) {
    const std::string id = "i" + std::to_string(k);
    all += k % 10 == 0 ? infer("slow", id, 64) : infer("linear", id);
  }
  ASSERT_TRUE(c.send(all));
  for (int k = 0; k < 200; ++k) {
    auto r = c.reply();
    ASSERT_TRUE(r) << "answer " << k << ": " << c.why();
    ASSERT_EQ(r->status, 200) << r->body;
    ASSERT_TRUE(contains(r->body, id_field("i" + std::to_string(k)))) << "answer " << k;
  }
  EXPECT_EQ(metrics().http_requests.load(), 200u);
  EXPECT_EQ(metrics().accepted_connections.load(), 1u);
}

TEST_F(HttpServerTest, PipelinedAnswersOverTheOutputBufferLimitAllArrive) {
  // Each GET /metrics answer is a few KB for a 27-byte request: enough of
  // them in one write put more than the connection's 1 MiB output limit in
  // its buffer during one parse, so the server pauses reading. Once the
  // client has read that output the rest must still be answered.
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  ASSERT_TRUE(c.send(get("/metrics")));
  auto first = c.reply();
  ASSERT_TRUE(first) << c.why();
  ASSERT_EQ(first->status, 200);
  ASSERT_GT(first->body.size(), 1000u);
  const std::size_t n = (3u << 20) / first->body.size() + 1;  // ~3 MiB of answers
  std::string all;
  for (std::size_t k = 0; k < n; ++k) all += get("/metrics");
  ASSERT_TRUE(c.send(all));
  for (std::size_t k = 0; k < n; ++k) {
    auto r = c.reply(std::chrono::seconds(5));
    ASSERT_TRUE(r) << "answer " << k << " of " << n << ": " << c.why();
    ASSERT_EQ(r->status, 200);
    ASSERT_TRUE(contains(r->body, "myelin_http_requests_total"));
  }
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  for (int k = 0; k < 100; ++k) {
    const std::string id = "k" + std::to_string(k);
    ASSERT_TRUE(c.send(k % 2 == 0 ? get("/v2/health/ready") : infer("linear", id)));
    auto r = c.reply();
    ASSERT_TRUE(r) << "request " << k << ": " << c.why();
    ASSERT_EQ(r->status, 200) << r->body;
    ASSERT_EQ(r->header("connection"), "") << "request " << k;
    if (k % 2 == 1) {
      ASSERT_TRUE(contains(r->body, id_field(id)));
    }
  }
  EXPECT_EQ(metrics().accepted_connections.load(), 1u);
  EXPECT_EQ(metrics().http_requests.load(), 100u);
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveIsAnsweredWithConnectionCloseThenClosed) {
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  // The second request must not be read: the first ends the connection.
  ASSERT_TRUE(c.send(get("/v2", "HTTP/1.0") + get("/v2/health/live")));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(lower(r->header("connection")), "close");
  EXPECT_TRUE(contains(r->body, "\"name\":\"myelin\""));
  EXPECT_TRUE(c.eof()) << c.why();
  EXPECT_EQ(metrics().http_requests.load(), 1u);
}

TEST_F(HttpServerTest, ConnectionCloseRequestIsAnsweredThenClosed) {
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  ASSERT_TRUE(c.send(get("/v2/health/live", "HTTP/1.1", "Connection: close\r\n")));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(lower(r->header("connection")), "close");
  EXPECT_TRUE(c.eof()) << c.why();
}

TEST_F(HttpServerTest, Http10WithKeepAliveIsToldTheConnectionPersists) {
  // RFC 9112 section 9.3: an HTTP/1.0 client keeps the connection only if
  // the answer carries "Connection: keep-alive"; without it the client
  // (ApacheBench -k, old proxies) closes after every request.
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  for (int k = 0; k < 2; ++k) {
    ASSERT_TRUE(c.send(get("/v2/health/live", "HTTP/1.0", "Connection: keep-alive\r\n")));
    auto r = c.reply();
    ASSERT_TRUE(r) << "request " << k << ": " << c.why();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(lower(r->header("connection")), "keep-alive") << "request " << k;
  }
  EXPECT_EQ(metrics().accepted_connections.load(), 1u);
}

// ---------------------------------------------------------------------------
// Bodies: chunked, Expect: 100-continue.

TEST_F(HttpServerTest, ChunkedBodyIsDecoded) {
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  const std::string body = infer_body("c1", 3);
  std::string chunked;
  for (std::size_t at = 0; at < body.size(); at += 17) {
    const std::string piece = body.substr(at, 17);
    char size[16];
    std::snprintf(size, sizeof(size), "%zx", piece.size());
    chunked += std::string(size) + (at == 0 ? ";note=first" : "") + "\r\n" + piece + "\r\n";
  }
  chunked += "0\r\n\r\n";
  ASSERT_TRUE(
      c.send("POST /v2/models/linear/infer HTTP/1.1\r\nHost: myelin\r\n"
             "Transfer-Encoding: chunked\r\n\r\n" +
             chunked + get("/v2/health/live")));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(contains(r->body, id_field("c1")));
  EXPECT_TRUE(contains(r->body, "\"shape\":[3,1]"));
  auto after = c.reply();  // the chunked body ended exactly where it said
  ASSERT_TRUE(after) << c.why();
  EXPECT_EQ(after->status, 200);
}

TEST_F(HttpServerTest, BadChunkSizeIs400AndCloses) {
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  ASSERT_TRUE(
      c.send("POST /v2/models/linear/infer HTTP/1.1\r\nHost: myelin\r\n"
             "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(lower(r->header("connection")), "close");
  EXPECT_TRUE(contains(r->body, "\"error\":\"malformed HTTP request"));
  EXPECT_TRUE(c.eof()) << c.why();
}

TEST_F(HttpServerTest, ExpectContinueArrivesBeforeTheBodyIsSent) {
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  const std::string body = infer_body("e1");
  const std::string request = post("/v2/models/linear/infer", body, "Expect: 100-continue\r\n");
  ASSERT_TRUE(c.send(std::string_view(request).substr(0, request.size() - body.size())));
  auto cont = c.reply();
  ASSERT_TRUE(cont) << "no 100 Continue before the body: " << c.why();
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(c.send(body));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(contains(r->body, id_field("e1")));

  // The same with a chunked body, on the same connection.
  ASSERT_TRUE(
      c.send("POST /v2/models/linear/infer HTTP/1.1\r\nHost: myelin\r\n"
             "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"));
  cont = c.reply();
  ASSERT_TRUE(cont) << c.why();
  EXPECT_EQ(cont->status, 100);
  const std::string body2 = infer_body("e2");
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", body2.size());
  ASSERT_TRUE(c.send(std::string(size) + "\r\n" + body2 + "\r\n0\r\n\r\n"));
  r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(contains(r->body, id_field("e2")));
}

TEST_F(HttpServerTest, ExpectContinueBehindAPipelinedRequestArrivesOnceThatIsAnswered) {
  // A 100 must not overtake the answer owed to the request before it; but
  // once that answer is out, the client waiting to send its body must get
  // its 100 (RFC 9110 section 10.1.1), not wait for its own timeout.
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  const std::string body = infer_body("e3");
  const std::string second = post("/v2/models/linear/infer", body, "Expect: 100-continue\r\n");
  ASSERT_TRUE(
      c.send(infer("slow", "e0", 256) + std::string(second, 0, second.size() - body.size())));
  auto first = c.reply();
  ASSERT_TRUE(first) << c.why();
  EXPECT_EQ(first->status, 200);
  EXPECT_TRUE(contains(first->body, id_field("e0")));
  auto cont = c.reply(std::chrono::seconds(3));
  ASSERT_TRUE(cont) << "no 100 Continue once the earlier answer was sent: " << c.why();
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(c.send(body));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(contains(r->body, id_field("e3")));
}

TEST_F(HttpServerTest, ExpectContinueWithABodyOverTheLimitGets413NotContinue) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  ASSERT_NO_FATAL_FAILURE(start(o));
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  ASSERT_TRUE(
      c.send("POST /v2/models/linear/infer HTTP/1.1\r\nHost: myelin\r\n"
             "Expect: 100-continue\r\nContent-Length: 4096\r\n\r\n"));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c.eof()) << c.why();
}

// ---------------------------------------------------------------------------
// Limits.

TEST_F(HttpServerTest, HeadersOverMaxHeaderBytesAre431) {
  HttpServerOptions o;
  o.max_header_bytes = 1024;
  ASSERT_NO_FATAL_FAILURE(start(o));
  {  // Just under the limit: served.
    Raw c(port_);
    ASSERT_TRUE(c.connected()) << c.why();
    ASSERT_TRUE(c.send(get("/v2", "HTTP/1.1", "X-Filler: " + std::string(800, 'a') + "\r\n")));
    auto r = c.reply();
    ASSERT_TRUE(r) << c.why();
    EXPECT_EQ(r->status, 200);
  }
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  ASSERT_TRUE(c.send(get("/v2", "HTTP/1.1", "X-Filler: " + std::string(2000, 'a') + "\r\n")));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(lower(r->header("connection")), "close");
  EXPECT_TRUE(contains(r->body, "exceed 1024 bytes"));
  EXPECT_TRUE(c.eof()) << c.why();
}

TEST_F(HttpServerTest, ContentLengthOverMaxBodyBytesIs413BeforeTheBody) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  ASSERT_NO_FATAL_FAILURE(start(o));
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  // Only the head: the answer must not wait for a body it refuses.
  ASSERT_TRUE(
      c.send("POST /v2/models/linear/infer HTTP/1.1\r\nHost: myelin\r\n"
             "Content-Length: 1048576\r\n\r\n"));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(contains(r->body, "1048576"));
  EXPECT_EQ(lower(r->header("connection")), "close");
  EXPECT_TRUE(c.eof()) << c.why();
}

TEST_F(HttpServerTest, ChunkedBodyGrowingOverMaxBodyBytesIs413) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  ASSERT_NO_FATAL_FAILURE(start(o));
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  std::string chunks;
  for (int k = 0; k < 4; ++k) chunks += "200\r\n" + std::string(512, 'x') + "\r\n";  // no end
  ASSERT_TRUE(
      c.send("POST /v2/models/linear/infer HTTP/1.1\r\nHost: myelin\r\n"
             "Transfer-Encoding: chunked\r\n\r\n" +
             chunks));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(contains(r->body, "exceeds the limit of 1024 bytes"));
  EXPECT_TRUE(c.eof()) << c.why();
}

TEST_F(HttpServerTest, ConnectionLimitRefusesWith503AndRecovers) {
  HttpServerOptions o;
  o.max_connections = 2;
  ASSERT_NO_FATAL_FAILURE(start(o));
  auto a = std::make_unique<Raw>(port_);
  Raw b(port_);
  for (Raw* c : {a.get(), &b}) {  // served, so certainly accepted
    ASSERT_TRUE(c->send(get("/v2/health/live")));
    auto r = c->reply();
    ASSERT_TRUE(r) << c->why();
    ASSERT_EQ(r->status, 200);
  }
  Raw third(port_);
  ASSERT_TRUE(third.connected()) << third.why();
  auto refused = third.reply();
  ASSERT_TRUE(refused) << third.why();
  EXPECT_EQ(refused->status, 503);
  EXPECT_TRUE(contains(refused->body, "too many connections (limit 2)"));
  EXPECT_EQ(lower(refused->header("connection")), "close");
  EXPECT_TRUE(third.eof()) << third.why();
  EXPECT_EQ(metrics().refused_connections.load(), 1u);

  a->close();
  ASSERT_TRUE(eventually([&] { return metrics().open_connections.load() == 1; }));
  Raw d(port_);
  ASSERT_TRUE(d.send(get("/v2/health/live")));
  auto r = d.reply();
  ASSERT_TRUE(r) << d.why();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(metrics().accepted_connections.load(), 3u);
}

// ---------------------------------------------------------------------------
// Slow clients.

TEST_F(HttpServerTest, PartialRequestLineGets408ThenClose) {
  HttpServerOptions o;
  o.header_timeout = milliseconds(200);
  ASSERT_NO_FATAL_FAILURE(start(o));
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  const MonoTime t0 = mono_now();
  ASSERT_TRUE(c.send("GET /v2/hea"));
  auto r = c.reply(std::chrono::seconds(5));
  ASSERT_TRUE(r) << c.why();
  EXPECT_GE(since(t0), milliseconds(200));
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(contains(r->body, "not received within 200 ms"));
  EXPECT_EQ(lower(r->header("connection")), "close");
  EXPECT_TRUE(c.eof()) << c.why();
}

TEST_F(HttpServerTest, TricklingHeadersStillGet408) {
  // A byte every 20 ms keeps the connection active, but the header timeout
  // runs from the request's first byte.
  HttpServerOptions o;
  o.header_timeout = milliseconds(200);
  ASSERT_NO_FATAL_FAILURE(start(o));
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  const std::string request = get("/v2", "HTTP/1.1", "X-Slow: " + std::string(200, 's') + "\r\n");
  const MonoTime t0 = mono_now();
  for (std::size_t i = 0; i < request.size() - 2 && c.quiet(milliseconds(20)); ++i) {
    ASSERT_TRUE(c.send(request.substr(i, 1))) << c.why();
  }
  auto r = c.reply(std::chrono::seconds(5));
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 408);
  EXPECT_GE(since(t0), milliseconds(200));
  EXPECT_LT(since(t0), std::chrono::seconds(3));
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  HttpServerOptions o;
  o.idle_timeout = milliseconds(300);
  ASSERT_NO_FATAL_FAILURE(start(o));
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  const MonoTime t0 = mono_now();
  ASSERT_TRUE(c.send(get("/v2/health/live")));
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(c.eof(std::chrono::seconds(5))) << c.why();
  EXPECT_GE(since(t0), milliseconds(300));
  EXPECT_TRUE(no_open_connections());
}

// ---------------------------------------------------------------------------
// Clients that leave.

TEST_F(HttpServerTest, TruncatedBodyThenHalfCloseIs400Truncated) {
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.connected()) << c.why();
  const std::string request = infer("linear", "t1");
  ASSERT_TRUE(c.send(std::string_view(request).substr(0, request.size() - 10)));
  c.half_close();
  auto r = c.reply();
  ASSERT_TRUE(r) << c.why();
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(contains(r->body, "truncated request"));
  EXPECT_TRUE(c.eof()) << c.why();
}

TEST_F(HttpServerTest, ClientsLeavingMidRequestAndMidResponseDoNotStopTheServer) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string request = infer("linear", "m1");
  const std::string half(std::string_view(request).substr(0, request.size() / 2));
  {  // mid-request, orderly close
    Raw c(port_);
    ASSERT_TRUE(c.send(half)) << c.why();
  }
  {  // mid-request, reset
    Raw c(port_);
    ASSERT_TRUE(c.send(half)) << c.why();
    c.reset();
  }
  {  // mid-response: megabytes of answers owed, one read, then gone (a reset,
     // since unread bytes remain)
    Raw c(port_, /*rcvbuf=*/4096);
    std::string all;
    for (int k = 0; k < 32; ++k) all += infer("linear", "big" + std::to_string(k), 4096);
    ASSERT_TRUE(c.send(all)) << c.why();
    auto r = c.reply();
    ASSERT_TRUE(r) << c.why();
    EXPECT_EQ(r->status, 200);
  }
  auto client = HttpClient::connect("127.0.0.1", port_);
  ASSERT_TRUE(client.has_value()) << client.error().message();
  auto r = client.value()->request("POST", "/v2/models/linear/infer", infer_body("after"));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r.value().status, 200);
  EXPECT_TRUE(contains(r.value().body, id_field("after")));
  client.value().reset();
  EXPECT_TRUE(no_open_connections());
}

// Each case: the client sends requests to the slow model and leaves while
// they are computing, so the batcher's reference to the connection is the
// last one. ASan reports any use after free.
TEST_F(HttpServerTest, ConnectionGoneWhileItsInferenceRunsIsSafe) {
  ASSERT_NO_FATAL_FAILURE(start());
  ModelMetrics& slow = model_metrics("slow");
  for (const bool abortive : {true, false}) {
    SCOPED_TRACE(abortive ? "reset" : "orderly close");
    {
      Raw c(port_);
      std::string all;
      for (int k = 0; k < 3; ++k) all += infer("slow", "gone" + std::to_string(k), kSlowRows);
      ASSERT_TRUE(c.send(all)) << c.why();
      ASSERT_TRUE(eventually([&] { return slow.in_flight.load() > 0; }));
      if (abortive) c.reset();
    }
    EXPECT_GT(slow.in_flight.load(), 0) << "the batch finished before the client left";
    EXPECT_TRUE(no_open_connections());
    EXPECT_TRUE(eventually([&] { return slow.in_flight.load() == 0; }));
    Raw next(port_);
    ASSERT_TRUE(next.send(infer("linear", "next")));
    auto r = next.reply();
    ASSERT_TRUE(r) << next.why();
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(contains(r->body, id_field("next")));
  }
}

// ---------------------------------------------------------------------------
// Graceful shutdown.

TEST_F(HttpServerTest, ShutdownAnswersEveryRequestInFlightThenRefusesConnections) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr int kConnections = 4, kPerConnection = 5;
  std::vector<std::unique_ptr<Raw>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<Raw>(port_));
    std::string all;
    for (int k = 0; k < kPerConnection; ++k) {
      all += infer("slow", "s" + std::to_string(i) + "_" + std::to_string(k), kSlowRows / 2);
    }
    ASSERT_TRUE(clients.back()->send(all)) << clients.back()->why();
  }
  ASSERT_TRUE(eventually([&] {
    return metrics().http_requests.load() == std::uint64_t{kConnections * kPerConnection};
  }));
  ASSERT_GT(model_metrics("slow").in_flight.load(), 0) << "nothing left in flight to drain";

  Status stopped;
  std::thread stopper([&] { stopped = server_->shutdown(mono_now() + kTimeout); });
  for (int i = 0; i < kConnections; ++i) {
    for (int k = 0; k < kPerConnection; ++k) {
      auto r = clients[i]->reply();
      EXPECT_TRUE(r) << "connection " << i << ", answer " << k << ": " << clients[i]->why();
      if (!r) break;
      EXPECT_EQ(r->status, 200) << r->body;
      EXPECT_TRUE(contains(r->body, id_field("s" + std::to_string(i) + "_" + std::to_string(k))));
    }
    EXPECT_TRUE(clients[i]->eof()) << "connection " << i << ": " << clients[i]->why();
  }
  stopper.join();
  EXPECT_TRUE(stopped.ok()) << stopped.message();

  Raw late(port_);
  EXPECT_FALSE(late.connected()) << "a connection was accepted after shutdown";
  auto pair = net::duplex_pair();
  ASSERT_TRUE(pair.has_value());
  EXPECT_FALSE(server_->adopt(std::move(pair.value().first)).ok());
  EXPECT_EQ(metrics().open_connections.load(), 0);
}

TEST_F(HttpServerTest, ShutdownGivesUpOnAStalledRequestAtItsDeadline) {
  ASSERT_NO_FATAL_FAILURE(start());
  Raw c(port_);
  ASSERT_TRUE(c.send("GET /v2 HTTP/1.1\r\nHost: my"));  // never finished
  ASSERT_TRUE(eventually([&] { return metrics().accepted_connections.load() == 1; }));
  std::this_thread::sleep_for(milliseconds(50));  // let the loop read the bytes
  const MonoTime t0 = mono_now();
  const Status s = server_->shutdown(t0 + milliseconds(300));
  EXPECT_EQ(s.code(), ErrorCode::kDeadlineExceeded) << s.message();
  EXPECT_GE(since(t0), milliseconds(300));
  EXPECT_LT(since(t0), std::chrono::seconds(5));
  EXPECT_TRUE(c.eof()) << c.why();
}

// ---------------------------------------------------------------------------
// Metrics.

TEST_F(HttpServerTest, ConnectionAndErrorMetrics) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::vector<std::unique_ptr<Raw>> clients;
  const std::string bad_requests[] = {get("/nope"), post("/v2", ""),
                                      post("/v2/models/linear/infer", "{not json")};
  const int want[] = {404, 405, 400};
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Raw>(port_));
    Raw& c = *clients.back();
    ASSERT_TRUE(c.send(get("/v2") + bad_requests[i]));
    auto ok = c.reply();
    ASSERT_TRUE(ok) << c.why();
    EXPECT_EQ(ok->status, 200);
    auto bad = c.reply();
    ASSERT_TRUE(bad) << c.why();
    EXPECT_EQ(bad->status, want[i]) << bad->body;
    EXPECT_TRUE(contains(bad->body, "\"error\":"));
  }
  EXPECT_EQ(metrics().open_connections.load(), 3);
  EXPECT_EQ(metrics().accepted_connections.load(), 3u);
  EXPECT_EQ(metrics().http_requests.load(), 6u);
  EXPECT_EQ(metrics().http_errors.load(), 3u);

  ASSERT_TRUE(clients[0]->send(get("/metrics")));
  auto m = clients[0]->reply();
  ASSERT_TRUE(m) << clients[0]->why();
  EXPECT_EQ(m->status, 200);
  EXPECT_TRUE(contains(m->body, "\nmyelin_http_open_connections 3\n"));
  EXPECT_TRUE(contains(m->body, "\nmyelin_http_error_responses_total 3\n"));
  EXPECT_TRUE(contains(m->body, "\nmyelin_http_requests_total 7\n"));

  clients.clear();
  EXPECT_TRUE(no_open_connections()) << metrics().open_connections.load() << " still open";
  EXPECT_EQ(metrics().http_errors.load(), 3u);
}

}  // namespace
}  // namespace myelin::serve
