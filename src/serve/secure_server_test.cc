// The MSC1 front end with the shipped models: answers equal HTTP's over TCP
// and a Unix socket, many requests in flight on one channel, bad envelopes
// answered (not dropped), and deadline expiry answered with its code.
#include "myelin/serve/secure_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "myelin/serve/client.h"
#include "myelin/serve/http_client.h"
#include "myelin/serve/http_server.h"
#include "src/serve/envelope_test_util.h"

#ifndef MYELIN_MODELS_DIR
#error "MYELIN_MODELS_DIR must name the shipped models/ directory"
#endif

namespace myelin::serve {
namespace {

constexpr Nanos kTimeout = std::chrono::seconds(20);  // bounds a failure only

using testing::Request;
using testing::row_of;
using testing::values;

class SecureServe : public ::testing::Test {
 protected:
  void start(const Clock* clock = nullptr) {
    RepositoryOptions ro;
    for (const char* m : {"logistic_regression", "mlp", "gradient_boosting"}) {
      ro.files.emplace_back(m, std::string(MYELIN_MODELS_DIR) + "/" + m + ".onnx");
    }
    ro.log = [](const std::string&) {};
    auto repo = ModelRepository::create(std::move(ro));
    ASSERT_TRUE(repo) << repo.error().to_string();
    repo_ = std::move(*repo);
    ASSERT_EQ(repo_->load_all(), 3u);
    auto sec = ChannelSecurity::create("mock");
    ASSERT_TRUE(sec);
    security_ = std::move(*sec);
    SecureServerOptions so;
    so.port = 0;
    so.unix_path = path_;
    so.session = security_->responder();
    so.clock = clock;
    auto server = SecureInferenceServer::create(std::move(so), *repo_);
    ASSERT_TRUE(server) << server.error().to_string();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->start().ok());
    ASSERT_NE(server_->port(), 0);
  }
  void TearDown() override {
    if (server_) {
      EXPECT_TRUE(server_->shutdown().ok());
    }
    server_.reset();
    if (repo_) repo_->shutdown();
  }
  std::unique_ptr<SecureClient> client(bool tcp) {
    const std::string target =
        tcp ? "127.0.0.1:" + std::to_string(server_->port()) : "unix:" + path_;
    auto c = SecureClient::connect(target, security_->initiator(), kTimeout);
    EXPECT_TRUE(c) << c.error().to_string();
    return c ? std::move(*c) : nullptr;
  }

  std::string path_ = "/tmp/myelin_secure_serve_" + std::to_string(::getpid()) + ".sock";
  std::unique_ptr<ModelRepository> repo_;
  std::unique_ptr<ChannelSecurity> security_;
  std::unique_ptr<SecureInferenceServer> server_;
};

TEST_F(SecureServe, AnswersEqualHttpOverTcpAndUnix) {
  start();
  HttpServerOptions ho;
  ho.port = 0;
  ho.io_threads = 1;
  ho.log = [](const std::string&) {};
  auto http = HttpServer::create(ho, *repo_);
  ASSERT_TRUE(http);
  ASSERT_TRUE((*http)->start().ok());
  auto hc = HttpClient::connect("127.0.0.1", (*http)->port(), kTimeout);
  ASSERT_TRUE(hc);
  for (const std::string model : {"logistic_regression", "mlp", "gradient_boosting"}) {
    SCOPED_TRACE(model);
    const std::vector<float> x = row_of(model);
    const nlohmann::json body = {
        {"inputs", {{{"name", "X"}, {"shape", {1, x.size()}}, {"datatype", "FP32"}, {"data", x}}}}};
    auto h = (*hc)->request("POST", "/v2/models/" + model + "/infer", body.dump(),
                            {{"Content-Type", "application/json"}}, kTimeout);
    ASSERT_TRUE(h);
    ASSERT_EQ(h->status, 200) << h->body;
    const auto expected = nlohmann::json::parse(h->body)["outputs"];
    for (const bool tcp : {true, false}) {
      auto c = client(tcp);
      ASSERT_TRUE(c);
      Request r(model, x, 11);
      auto reply = c->infer(r.env, kTimeout);
      ASSERT_TRUE(reply) << reply.error().to_string();
      ASSERT_EQ(reply->code, ReplyCode::kOk) << reply->message;
      ASSERT_EQ(reply->outputs.size(), expected.size());
      for (std::size_t k = 0; k < expected.size(); ++k) {
        EXPECT_EQ(reply->outputs[k].name, expected[k]["name"].get<std::string>());
        EXPECT_EQ(std::vector<std::int64_t>(reply->outputs[k].shape.dims().begin(),
                                            reply->outputs[k].shape.dims().end()),
                  expected[k]["shape"].get<std::vector<std::int64_t>>());
        const auto want = expected[k]["data"].get<std::vector<double>>();
        const auto got = values(reply->outputs[k]);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
          EXPECT_NEAR(got[i], want[i], 1e-6 * (1 + std::abs(want[i]))) << "output " << k;
        }
      }
      EXPECT_TRUE(c->close().ok());
    }
  }
  (void)(*http)->shutdown(mono_now() + std::chrono::seconds(5));
}

TEST_F(SecureServe, ManyRequestsInFlightAreAnsweredWithTheirIds) {
  start();
  auto c = client(true);
  ASSERT_TRUE(c);
  const std::vector<float> base = row_of("logistic_regression");
  // Each request alone first: the answer its id must get back.
  std::map<std::uint64_t, std::vector<double>> alone;
  std::vector<Request> requests;
  for (std::uint64_t i = 0; i < 40; ++i) {
    std::vector<float> x = base;
    x[0] += 0.1F * static_cast<float>(i);
    requests.emplace_back("logistic_regression", x, 1000 + i);
  }
  for (const Request& r : requests) {
    auto reply = c->infer(r.env, kTimeout);
    ASSERT_TRUE(reply && reply->code == ReplyCode::kOk);
    alone[r.env.id] = values(reply->outputs.back());
  }
  for (const Request& r : requests) ASSERT_TRUE(c->send(r.env, kTimeout).ok());
  std::map<std::uint64_t, int> seen;
  for (std::size_t n = 0; n < requests.size(); ++n) {
    auto reply = c->receive(kTimeout);
    ASSERT_TRUE(reply) << reply.error().to_string();
    ASSERT_EQ(reply->code, ReplyCode::kOk) << reply->message;
    ASSERT_TRUE(alone.count(reply->id)) << "unknown id " << reply->id;
    // Batched with others, the kernels may round the last bit differently;
    // neighbouring ids differ by far more.
    const auto got = values(reply->outputs.back());
    const auto& want = alone[reply->id];
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << "id " << reply->id;
    }
    ++seen[reply->id];
  }
  EXPECT_EQ(seen.size(), requests.size());  // every id exactly once
}

TEST_F(SecureServe, BadEnvelopesGetErrorRepliesAndTheChannelStaysOpen) {
  start();
  auto c = client(false);
  ASSERT_TRUE(c);
  const std::vector<float> x = row_of("logistic_regression");
  // Not an envelope at all: id 0, bad_request.
  const std::string junk = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_TRUE(c->send_raw(std::as_bytes(std::span(junk.data(), junk.size()))).ok());
  auto r = c->receive(kTimeout);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->id, 0u);
  EXPECT_EQ(r->code, ReplyCode::kBadRequest);
  EXPECT_NE(r->message.find("magic at byte 0"), std::string::npos) << r->message;
  // A readable id with a broken body: the reply carries the id.
  Request good("logistic_regression", x, 42);
  auto bytes = encode_request(good.env);
  ASSERT_TRUE(bytes);
  bytes->pop_back();
  ASSERT_TRUE(c->send_raw(*bytes).ok());
  r = c->receive(kTimeout);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, 42u);
  EXPECT_EQ(r->code, ReplyCode::kBadRequest);
  EXPECT_NE(r->message.find("inputs at byte"), std::string::npos) << r->message;
  // Unknown model; input bound by a name the model does not have.
  Request nope("no_such_model", x, 43);
  r = c->infer(nope.env, kTimeout);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, ReplyCode::kNotFound) << r->message;
  Request misnamed("logistic_regression", x, 44);
  misnamed.env.inputs[0].name = "Y";
  r = c->infer(misnamed.env, kTimeout);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, ReplyCode::kBadRequest);
  EXPECT_NE(r->message.find("'Y'"), std::string::npos) << r->message;
  Request unknown_output("logistic_regression", x, 45);
  unknown_output.env.outputs = {"nope"};
  r = c->infer(unknown_output.env, kTimeout);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, ReplyCode::kBadRequest) << r->message;
  // Still open: a good request is answered.
  r = c->infer(good.env, kTimeout);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->code, ReplyCode::kOk) << r->message;
}

// Arrivals are stamped by a clock 1 s after boot, so a 1 ms timeout has
// long passed when the batch starts: the reply is deadline_exceeded, and a
// request without a timeout on the same channel is computed.
TEST_F(SecureServe, ExpiredDeadlineGetsTheTimeoutError) {
  FakeClock long_ago(MonoTime(std::chrono::seconds(1)));
  start(&long_ago);
  auto c = client(true);
  ASSERT_TRUE(c);
  Request timed("mlp", row_of("mlp"), 7);
  timed.env.timeout_us = 1000;
  auto r = c->infer(timed.env, kTimeout);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->code, ReplyCode::kDeadlineExceeded) << r->message;
  EXPECT_NE(r->message.find("timed out"), std::string::npos) << r->message;
  Request untimed("mlp", row_of("mlp"), 8);
  r = c->infer(untimed.env, kTimeout);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, ReplyCode::kOk) << r->message;
}

}  // namespace
}  // namespace myelin::serve
