// Scale-out through the broker (issue 23): three `myelin serve --amqp`
// worker processes consume the same queue; a client keeps 256 requests in
// flight, 20,000 in all; mid-run one worker is killed (kill -9) or frozen
// (SIGSTOP). Every request must get exactly one reply at the client (which
// drops a repeated id and counts it) and none may be lost. The test prints
// how long the survivors took to answer everything the client had sent
// before the fault; timing is reported, not asserted (that is the bench's).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "myelin/amqp/connection.h"
#include "myelin/serve/amqp_client.h"
#include "src/amqp/broker_test_util.h"

#ifndef MYELIN_BINARY
#error "MYELIN_BINARY must name the myelin executable"
#endif
#ifndef MYELIN_MODELS_DIR
#error "MYELIN_MODELS_DIR must name the shipped models/ directory"
#endif

namespace myelin::serve {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kWorkers = 3;
constexpr int kRequests = 20000;
constexpr int kWindow = 256;
constexpr int kFaultAfter = 5000;                          // replies received before the fault
constexpr Nanos kReplyTimeout = std::chrono::seconds(30);  // bounds a failure only
const std::string kModel = "logistic_regression";

std::vector<float> row() {
  std::ifstream in(std::string(MYELIN_MODELS_DIR) + "/" + kModel + ".input.json");
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str())["X"][0].get<std::vector<float>>();
}

class ScaleOut : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("myelin_scaleout_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    admin_ = amqp::testing::connect_or_fail();
    ASSERT_TRUE(admin_);
    auto ch = admin_->open_channel();
    ASSERT_TRUE(ch);
    admin_channel_ = std::move(*ch);
  }
  void TearDown() override {
    for (const pid_t pid : workers_) {
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (admin_channel_ && admin_channel_->is_open()) {
      (void)admin_channel_->queue_delete(prefix_ + kModel).get();
      for (const char* m : {"mlp", "gradient_boosting"}) {
        (void)admin_channel_->queue_delete(prefix_ + m).get();
      }
    }
    fs::remove_all(dir_);
  }

  // A worker with a 1 s heartbeat, so the broker notices a frozen one in
  // about two seconds.
  void spawn_worker(int i) {
    const std::string uri = amqp::testing::broker_uri() + "?heartbeat=1";
    const std::string log = (dir_ / ("worker" + std::to_string(i) + ".log")).string();
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (!std::freopen(log.c_str(), "w", stderr) || !std::freopen("/dev/null", "w", stdout)) {
        _exit(127);
      }
      ::execl(MYELIN_BINARY, MYELIN_BINARY, "serve", "--http-port", "0", "--amqp", uri.c_str(),
              "--amqp-queue-prefix", prefix_.c_str(), "--amqp-prefetch", "32", "--model",
              (kModel + "=" + std::string(MYELIN_MODELS_DIR) + "/" + kModel + ".onnx").c_str(),
              static_cast<char*>(nullptr));
      _exit(127);
    }
    ASSERT_GT(pid, 0);
    workers_.push_back(pid);
  }
  // Consumers on the model's queue, from a passive declare (0 while absent).
  std::uint32_t consumers() {
    amqp::QueueOptions q;
    q.passive = true;
    auto ch = admin_->open_channel();  // a failed passive declare closes its channel
    if (!ch) return 0;
    auto info = (*ch)->queue_declare(prefix_ + kModel, q).get();
    (void)(*ch)->close().get();
    return info ? info->consumer_count : 0;
  }

  // Sends kRequests with kWindow in flight; after kFaultAfter replies runs
  // `fault`. Returns the milliseconds from the fault until every request
  // sent before it was answered.
  double run(const std::function<void()>& fault) {
    for (int i = 0; i < kWorkers; ++i) spawn_worker(i);
    const auto start_deadline = Clock::now() + std::chrono::seconds(60);
    while (consumers() < kWorkers && Clock::now() < start_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(consumers(), static_cast<std::uint32_t>(kWorkers)) << "workers did not start";
    auto c = AmqpClient::connect(amqp::testing::broker_config(), prefix_);
    EXPECT_TRUE(c) << c.error().to_string();
    if (!c) return -1;
    std::vector<float> x = row();
    RequestEnvelope env;
    env.model = kModel;
    env.inputs = {{"X", TensorView{DType::kF32, Shape{1, static_cast<std::int64_t>(x.size())},
                                   std::as_bytes(std::span(x))}}};
    std::map<std::uint64_t, int> answered;
    std::uint64_t sent = 0;
    auto send_next = [&] {
      env.id = ++sent;
      const Status s = (*c)->send(env);
      EXPECT_TRUE(s.ok()) << s.to_string();
    };
    while (sent < kWindow) send_next();
    std::uint64_t sent_before_fault = 0;
    Clock::time_point fault_at{};
    double takeover_ms = -1;
    int errors = 0;
    while (answered.size() < static_cast<std::size_t>(kRequests)) {
      auto reply = (*c)->receive(kReplyTimeout);
      if (!reply) {
        ADD_FAILURE() << reply.error().to_string() << " with " << answered.size() << " answered";
        break;
      }
      if (reply->code != ReplyCode::kOk && ++errors <= 3) {
        ADD_FAILURE() << "id " << reply->id << ": " << to_string(reply->code) << " "
                      << reply->message;
      }
      ++answered[reply->id];
      if (answered.size() == static_cast<std::size_t>(kFaultAfter)) {
        sent_before_fault = sent;
        fault_at = Clock::now();
        fault();
      }
      if (sent_before_fault != 0 && takeover_ms < 0) {
        bool all = true;
        for (std::uint64_t id = 1; id <= sent_before_fault && all; ++id) {
          all = answered.count(id) != 0;
        }
        if (all) {
          takeover_ms = std::chrono::duration<double, std::milli>(Clock::now() - fault_at).count();
        }
      }
      if (sent < static_cast<std::uint64_t>(kRequests)) send_next();
    }
    EXPECT_EQ(answered.size(), static_cast<std::size_t>(kRequests)) << "requests lost";
    for (const auto& [id, n] : answered) {
      if (n != 1) ADD_FAILURE() << "id " << id << " answered " << n << " times";
    }
    EXPECT_EQ(errors, 0);
    std::printf(
        "scale-out: %d workers, %d requests, %d in flight; every request sent before "
        "the fault answered %.1f ms after it (the dead worker's requeued requests and "
        "the backlog of the window); %llu duplicate replies dropped by the client\n",
        kWorkers, kRequests, kWindow, takeover_ms,
        static_cast<unsigned long long>((*c)->duplicates()));
    return takeover_ms;
  }

  fs::path dir_;
  std::string prefix_ = amqp::testing::unique_name("scaleout") + ".";
  std::vector<pid_t> workers_;
  std::shared_ptr<amqp::Connection> admin_;
  std::shared_ptr<amqp::Channel> admin_channel_;
};

TEST_F(ScaleOut, AKilledWorkersRequestsAreAnsweredByTheOthersOnceEach) {
  const double takeover = run([&] { ASSERT_EQ(::kill(workers_[0], SIGKILL), 0); });
  EXPECT_GE(takeover, 0) << "requests sent before the kill were not all answered";
}

TEST_F(ScaleOut, AFrozenWorkersRequestsAreAnsweredByTheOthersOnceEach) {
  const double takeover = run([&] { ASSERT_EQ(::kill(workers_[0], SIGSTOP), 0); });
  EXPECT_GE(takeover, 0) << "requests sent before the freeze were not all answered";
}

}  // namespace
}  // namespace myelin::serve
