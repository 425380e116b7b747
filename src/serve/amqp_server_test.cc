// The RabbitMQ front end against the private broker (CTest's amqp_broker
// fixture) with the shipped models: answers equal HTTP's, many requests in
// flight each answered once with its id, bad requests answered and never
// requeued, dead-lettering, and a request for a model no worker serves.
#include "myelin/serve/amqp_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "myelin/amqp/connection.h"
#include "myelin/net/fault_proxy.h"
#include "myelin/serve/amqp_client.h"
#include "myelin/serve/http_client.h"
#include "myelin/serve/http_server.h"
#include "src/amqp/broker_test_util.h"
#include "src/serve/envelope_test_util.h"

#ifndef MYELIN_MODELS_DIR
#error "MYELIN_MODELS_DIR must name the shipped models/ directory"
#endif

namespace myelin::serve {
namespace {

constexpr Nanos kTimeout = std::chrono::seconds(20);  // bounds a failure only
const char* const kModels[] = {"logistic_regression", "mlp", "gradient_boosting"};

using testing::Request;
using testing::row_of;
using testing::values;

// Polls until `cond` holds (bounded): for broker-side effects with no event
// to wait on (an ack reaching the broker).
bool eventually(const std::function<bool()>& cond) {
  const auto end = std::chrono::steady_clock::now() + kTimeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class AmqpServe : public ::testing::Test {
 protected:
  void SetUp() override {
    RepositoryOptions ro;
    for (const char* m : kModels) {
      ro.files.emplace_back(m, std::string(MYELIN_MODELS_DIR) + "/" + m + ".onnx");
    }
    ro.log = [](const std::string&) {};
    auto repo = ModelRepository::create(std::move(ro));
    ASSERT_TRUE(repo) << repo.error().to_string();
    repo_ = std::move(*repo);
    ASSERT_EQ(repo_->load_all(), 3u);
    admin_ = amqp::testing::connect_or_fail();
    ASSERT_TRUE(admin_);
    auto ch = admin_->open_channel();
    ASSERT_TRUE(ch) << ch.error().to_string();
    admin_channel_ = std::move(*ch);
  }
  void TearDown() override {
    for (auto& w : workers_) {
      if (w) {
        EXPECT_TRUE(w->shutdown(mono_now() + std::chrono::seconds(10)).ok());
      }
    }
    workers_.clear();
    if (admin_channel_ && admin_channel_->is_open()) {
      for (const char* m : kModels) (void)admin_channel_->queue_delete(prefix_ + m).get();
    }
    admin_channel_.reset();
    admin_.reset();
    if (repo_) repo_->shutdown();
  }

  AmqpInferenceServer& worker(std::string dead_letter_exchange = {},
                              std::optional<amqp::ConnectionConfig> connection = {}) {
    AmqpServerOptions o;
    o.connection = connection ? *connection : amqp::testing::broker_config();
    o.queue_prefix = prefix_;
    o.dead_letter_exchange = std::move(dead_letter_exchange);
    auto w = AmqpInferenceServer::create(std::move(o), *repo_);
    EXPECT_TRUE(w) << w.error().to_string();
    workers_.push_back(std::move(*w));
    const Status s = workers_.back()->start();
    EXPECT_TRUE(s.ok()) << s.to_string();
    return *workers_.back();
  }
  std::unique_ptr<AmqpClient> client() {
    auto c = AmqpClient::connect(amqp::testing::broker_config(), prefix_);
    EXPECT_TRUE(c) << c.error().to_string();
    return c ? std::move(*c) : nullptr;
  }
  // Messages ready in a queue, from a passive declare.
  std::uint32_t ready(const std::string& queue) {
    amqp::QueueOptions q;
    q.passive = true;
    auto info = admin_channel_->queue_declare(queue, q).get();
    EXPECT_TRUE(info) << info.error().to_string();
    return info ? info->message_count : ~0u;
  }

  std::string prefix_ = amqp::testing::unique_name("serve") + ".";
  std::unique_ptr<ModelRepository> repo_;
  std::shared_ptr<amqp::Connection> admin_;
  std::shared_ptr<amqp::Channel> admin_channel_;
  std::vector<std::unique_ptr<AmqpInferenceServer>> workers_;
};

TEST_F(AmqpServe, DeclaresAQueuePerModelAndAnswersEqualHttp) {
  AmqpInferenceServer& w = worker();
  ASSERT_EQ(w.queues().size(), 3u);
  for (const char* m : kModels) {
    EXPECT_NE(std::find(w.queues().begin(), w.queues().end(), prefix_ + m), w.queues().end());
  }
  HttpServerOptions ho;
  ho.port = 0;
  ho.io_threads = 1;
  ho.log = [](const std::string&) {};
  auto http = HttpServer::create(ho, *repo_);
  ASSERT_TRUE(http);
  ASSERT_TRUE((*http)->start().ok());
  auto hc = HttpClient::connect("127.0.0.1", (*http)->port(), kTimeout);
  ASSERT_TRUE(hc);
  auto c = client();
  ASSERT_TRUE(c);
  std::uint64_t id = 7;
  for (const std::string model : kModels) {
    SCOPED_TRACE(model);
    const std::vector<float> x = row_of(model);
    const nlohmann::json body = {
        {"inputs", {{{"name", "X"}, {"shape", {1, x.size()}}, {"datatype", "FP32"}, {"data", x}}}}};
    auto h = (*hc)->request("POST", "/v2/models/" + model + "/infer", body.dump(),
                            {{"Content-Type", "application/json"}}, kTimeout);
    ASSERT_TRUE(h);
    ASSERT_EQ(h->status, 200) << h->body;
    const auto expected = nlohmann::json::parse(h->body)["outputs"];
    Request r(model, x, ++id);
    auto reply = c->infer(r.env, kTimeout);
    ASSERT_TRUE(reply) << reply.error().to_string();
    ASSERT_EQ(reply->code, ReplyCode::kOk) << reply->message;
    ASSERT_EQ(reply->outputs.size(), expected.size());
    for (std::size_t k = 0; k < expected.size(); ++k) {
      EXPECT_EQ(reply->outputs[k].name, expected[k]["name"].get<std::string>());
      const auto want = expected[k]["data"].get<std::vector<double>>();
      const auto got = values(reply->outputs[k]);
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], 1e-6 * (1 + std::abs(want[i]))) << "output " << k;
      }
    }
  }
  (void)(*http)->shutdown(mono_now() + std::chrono::seconds(5));
  // Acknowledged after the confirmed reply: nothing left in the queues.
  ASSERT_TRUE(eventually([&] { return w.stats().in_flight == 0; }));
  for (const char* m : kModels) EXPECT_EQ(ready(prefix_ + m), 0u) << m;
  EXPECT_EQ(w.stats().replies, 3u)
      << "unroutable " << w.stats().unroutable << " failures " << w.stats().reply_failures
      << " requests " << w.stats().requests;
  EXPECT_EQ(w.stats().error_replies, 0u);
}

TEST_F(AmqpServe, ManyRequestsInFlightAreEachAnsweredOnceWithTheirIds) {
  AmqpInferenceServer& w = worker();
  auto c = client();
  ASSERT_TRUE(c);
  const std::vector<float> base = row_of("logistic_regression");
  std::vector<Request> requests;
  for (std::uint64_t i = 0; i < 300; ++i) {
    std::vector<float> x = base;
    x[0] += 0.05F * static_cast<float>(i);
    requests.emplace_back("logistic_regression", x, 5000 + i);
  }
  // Each alone first: the answer its id must get back.
  std::map<std::uint64_t, std::vector<double>> alone;
  for (std::size_t i = 0; i < 20; ++i) {
    auto reply = c->infer(requests[i].env, kTimeout);
    ASSERT_TRUE(reply && reply->code == ReplyCode::kOk);
    alone[requests[i].env.id] = values(reply->outputs.back());
  }
  for (const Request& r : requests) ASSERT_TRUE(c->send(r.env).ok());
  std::map<std::uint64_t, int> seen;
  for (std::size_t n = 0; n < requests.size(); ++n) {
    auto reply = c->receive(kTimeout);
    ASSERT_TRUE(reply) << reply.error().to_string();
    ASSERT_EQ(reply->code, ReplyCode::kOk) << reply->message;
    ++seen[reply->id];
    if (auto it = alone.find(reply->id); it != alone.end()) {
      const auto got = values(reply->outputs.back());
      ASSERT_EQ(got.size(), it->second.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i], it->second[i], 1e-5 * (1 + std::abs(it->second[i])));
      }
    }
  }
  EXPECT_EQ(seen.size(), requests.size());
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << "id " << id;
  EXPECT_EQ(c->duplicates(), 0u);
  ASSERT_TRUE(eventually([&] { return w.stats().in_flight == 0; }));
  EXPECT_EQ(w.stats().replies, 320u);
  EXPECT_EQ(ready(prefix_ + "logistic_regression"), 0u);
}

TEST_F(AmqpServe, BadRequestsGetAnErrorReplyAndAreNotRequeued) {
  AmqpInferenceServer& w = worker();
  auto c = client();
  ASSERT_TRUE(c);
  // Bytes that are no envelope.
  const std::string junk = "not an envelope at all";
  ASSERT_TRUE(c->send_raw("mlp", 1, std::as_bytes(std::span(junk.data(), junk.size()))).ok());
  auto r1 = c->receive(kTimeout);
  ASSERT_TRUE(r1) << r1.error().to_string();
  EXPECT_EQ(r1->code, ReplyCode::kBadRequest);
  EXPECT_FALSE(r1->message.empty());
  // A model the worker does not serve, sent through a queue it consumes.
  Request unknown("no_such_model", row_of("mlp"), 2);
  auto bytes = encode_request(unknown.env);
  ASSERT_TRUE(bytes);
  ASSERT_TRUE(c->send_raw("mlp", 2, *bytes).ok());
  auto r2 = c->receive(kTimeout);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->code, ReplyCode::kNotFound) << r2->message;
  EXPECT_NE(r2->message.find("no_such_model"), std::string::npos) << r2->message;
  // Inputs that do not fit the model: the message says where.
  Request wrong("mlp", {1.0F, 2.0F, 3.0F}, 3);
  auto r3 = c->infer(wrong.env, kTimeout);
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->code, ReplyCode::kBadRequest);
  EXPECT_NE(r3->message.find("shape"), std::string::npos) << r3->message;
  // No reply_to: nobody to answer; acknowledged and counted, not requeued.
  ASSERT_TRUE(c->send_raw("mlp", 4, *bytes, /*reply=*/false).ok());
  ASSERT_TRUE(eventually([&] { return w.stats().rejected == 1 && w.stats().in_flight == 0; }));
  EXPECT_EQ(w.stats().error_replies, 3u);
  EXPECT_EQ(ready(prefix_ + "mlp"), 0u);
  // And the worker still serves.
  Request good("mlp", row_of("mlp"), 5);
  auto r5 = c->infer(good.env, kTimeout);
  ASSERT_TRUE(r5);
  EXPECT_EQ(r5->code, ReplyCode::kOk) << r5->message;
}

TEST_F(AmqpServe, WithADeadLetterExchangeBadRequestsAreDeadLettered) {
  const std::string dlx = prefix_ + "dlx";
  const std::string dlq = prefix_ + "dlq";
  ASSERT_TRUE(admin_channel_->exchange_declare(dlx, "fanout").get().ok());
  ASSERT_TRUE(admin_channel_->queue_declare(dlq).get());
  ASSERT_TRUE(admin_channel_->queue_bind(dlq, dlx, "").get().ok());
  AmqpInferenceServer& w = worker(dlx);
  auto c = client();
  ASSERT_TRUE(c);
  const std::string junk = "\x01\x02\x03";
  ASSERT_TRUE(
      c->send_raw("logistic_regression", 9, std::as_bytes(std::span(junk.data(), junk.size())))
          .ok());
  auto r = c->receive(kTimeout);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, ReplyCode::kBadRequest);
  ASSERT_TRUE(eventually([&] { return ready(dlq) == 1; }));
  auto dead = admin_channel_->get(dlq, true).get();
  ASSERT_TRUE(dead && dead->has_value());
  EXPECT_EQ((*dead)->body, junk);
  EXPECT_EQ(w.stats().rejected, 1u);
  EXPECT_EQ(ready(prefix_ + "logistic_regression"), 0u);
  (void)admin_channel_->queue_delete(dlq).get();
  (void)admin_channel_->exchange_delete(dlx).get();
}

TEST_F(AmqpServe, ARequestForAModelNoWorkerServesComesBackNotFound) {
  auto c = client();  // no worker: no queue
  ASSERT_TRUE(c);
  Request r("mlp", row_of("mlp"), 42);
  auto reply = c->infer(r.env, kTimeout);
  ASSERT_TRUE(reply) << reply.error().to_string();
  EXPECT_EQ(reply->code, ReplyCode::kNotFound);
  EXPECT_NE(reply->message.find(prefix_ + "mlp"), std::string::npos) << reply->message;
}

TEST_F(AmqpServe, TwoWorkersShareAQueueAndAWorkerThatStopsLeavesNothingBehind) {
  AmqpInferenceServer& a = worker();
  AmqpInferenceServer& b = worker();
  auto c = client();
  ASSERT_TRUE(c);
  const std::vector<float> x = row_of("gradient_boosting");
  constexpr int kN = 400;
  std::vector<Request> requests;
  for (int i = 0; i < kN; ++i) requests.emplace_back("gradient_boosting", x, 100 + i);
  for (const Request& r : requests) ASSERT_TRUE(c->send(r.env).ok());
  // Stop one worker part-way: what it took and did not answer goes back to
  // the queue, and the other worker answers it.
  std::set<std::uint64_t> seen;
  for (int n = 0; n < kN / 4; ++n) {
    auto reply = c->receive(kTimeout);
    ASSERT_TRUE(reply) << reply.error().to_string();
    seen.insert(reply->id);
  }
  (void)a.shutdown(mono_now());
  for (int n = kN / 4; n < kN; ++n) {
    auto reply = c->receive(kTimeout);
    ASSERT_TRUE(reply) << reply.error().to_string() << " after " << n;
    EXPECT_EQ(reply->code, ReplyCode::kOk) << reply->message;
    seen.insert(reply->id);
  }
  // Every id once (a reply the stopped worker sent but could not see
  // confirmed may come again from the other: the client drops it).
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kN));
  EXPECT_GT(b.stats().replies, 0u);
  ASSERT_TRUE(eventually([&] { return b.stats().in_flight == 0; }));
  EXPECT_EQ(ready(prefix_ + "gradient_boosting"), 0u);
}

// A worker whose connection is reset (through the project's FaultProxy)
// recovers it, restarts its consumers and serves again; every request sent
// is answered, once at the client.
TEST_F(AmqpServe, AWorkerRecoversItsConnectionAndServesOn) {
  amqp::ConnectionConfig cfg = amqp::testing::broker_config();
  net::FaultProxyOptions po;
  po.upstream_host = cfg.host;
  po.upstream_port = cfg.port;
  auto proxy = net::FaultProxy::start(po);
  ASSERT_TRUE(proxy) << proxy.error().to_string();
  cfg.host = "127.0.0.1";
  cfg.port = (*proxy)->port();
  cfg.recovery.enabled = true;
  cfg.recovery.initial_delay = std::chrono::milliseconds(20);
  cfg.recovery.max_delay = std::chrono::milliseconds(500);
  cfg.recovery.max_attempts = 40;  // bounded: ~20 s at most
  AmqpInferenceServer& w = worker({}, cfg);
  auto c = client();  // straight to the broker
  ASSERT_TRUE(c);
  const std::vector<float> x = row_of("logistic_regression");
  std::set<std::uint64_t> answered;
  auto exchange = [&](std::uint64_t first, std::uint64_t n) {
    for (std::uint64_t id = first; id < first + n; ++id) {
      Request r("logistic_regression", x, id);
      ASSERT_TRUE(c->send(r.env).ok());
    }
    for (std::uint64_t k = 0; k < n; ++k) {
      auto reply = c->receive(kTimeout);
      ASSERT_TRUE(reply) << reply.error().to_string() << " after " << answered.size();
      EXPECT_EQ(reply->code, ReplyCode::kOk) << reply->message;
      answered.insert(reply->id);
    }
  };
  exchange(1, 100);
  ASSERT_TRUE((*proxy)->reset_all());  // RST both sides of the worker's connection
  exchange(101, 100);
  EXPECT_EQ(answered.size(), 200u);
  EXPECT_GE(w.stats().recoveries, 1u);
  ASSERT_TRUE(eventually([&] { return w.stats().in_flight == 0; }));
  EXPECT_EQ(ready(prefix_ + "logistic_regression"), 0u);
}

}  // namespace
}  // namespace myelin::serve
