// The batcher against the model it serves: same answers as Model::predict,
// no cross-talk between concurrent requests, load shedding, timeouts,
// shutdown, bad input, and a completion that drops the last reference to
// the batcher.
#include "myelin/serve/batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "src/model/test_models.h"

namespace myelin::serve {
namespace {

using model::Model;

Model linear_model(std::size_t features) {
  const std::string onnx = model::testing::linear_regressor(features, 7);
  return Model::load(std::as_bytes(std::span<const char>(onnx))).value();
}

Model mlp_model() {
  const std::string onnx = model::testing::mlp({16, 32, 4}, 3);
  return Model::load(std::as_bytes(std::span<const char>(onnx))).value();
}

std::unique_ptr<InferenceRequest> request_for(const Model& m, std::vector<float> values,
                                              std::size_t rows) {
  auto r = std::make_unique<InferenceRequest>();
  r->model = "m";
  InputTensor& in = r->inputs.emplace_back();
  in.name = m.inputs()[0].name;
  in.dtype = DType::kF32;
  in.shape =
      Shape{static_cast<std::int64_t>(rows), static_cast<std::int64_t>(values.size() / rows)};
  in.owned.resize(values.size() * sizeof(float));
  std::memcpy(in.owned.data(), values.data(), in.owned.size());
  in.data = in.owned;
  return r;
}

std::vector<float> reference(const Model& m, const std::vector<float>& values, std::size_t rows) {
  const TensorView in = TensorView::of<float>(
      std::span<const float>(values),
      Shape{static_cast<std::int64_t>(rows), static_cast<std::int64_t>(values.size() / rows)});
  auto out = m.predict(std::span<const TensorView>(&in, 1)).value();
  auto f = out[0].as<float>();
  return {f.begin(), f.end()};
}

std::vector<float> first_output(const InferenceRequest& r) {
  const OutputTensor& o = r.outputs[0];
  std::vector<float> v(o.bytes.size() / sizeof(float));
  std::memcpy(v.data(), o.bytes.data(), o.bytes.size());
  return v;
}

// Batched and single-row kernels may sum in a different order, so answers
// agree to float rounding, not bit for bit; cross-talk would be far off.
void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-5f * std::max(1.0f, std::abs(want[i])))
        << what << " [" << i << "]";
  }
}

// Collects finished requests; optionally holds the worker inside complete()
// until released (so tests can fill the queue behind a busy worker).
class Collector final : public Responder {
 public:
  void complete(std::unique_ptr<InferenceRequest> r) override {
    std::unique_lock lock(mu_);
    if (hold_next_) {
      hold_next_ = false;
      holding_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !holding_; });
    }
    threads_.emplace_back(r->id, std::this_thread::get_id());
    done_.push_back(std::move(r));
    cv_.notify_all();
  }
  // The thread each request (by id) was completed on, in completion order.
  std::vector<std::pair<std::string, std::thread::id>> threads() {
    std::lock_guard lock(mu_);
    return threads_;
  }
  void hold_next() {
    std::lock_guard lock(mu_);
    hold_next_ = true;
  }
  void wait_holding() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return holding_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    holding_ = false;
    cv_.notify_all();
  }
  std::vector<std::unique_ptr<InferenceRequest>> wait_for(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return done_.size() >= n; });
    return std::move(done_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_next_ = false;
  bool holding_ = false;
  std::vector<std::unique_ptr<InferenceRequest>> done_;
  std::vector<std::pair<std::string, std::thread::id>> threads_;
};

TEST(Batcher, AnswersLikePredictAndALoneRequestIsNotDelayed) {
  const Model m = mlp_model();
  BatcherOptions o;
  o.max_delay = std::chrono::seconds(5);  // a lone request must not wait for it
  auto b = Batcher::create(m, o, nullptr).value();
  auto collector = std::make_shared<Collector>();
  const auto values = model::testing::random_floats(16 * 3, 11);
  auto r = request_for(m, values, 3);
  r->responder = collector;
  const MonoTime t0 = mono_now();
  ASSERT_TRUE(b->submit(r).ok());
  EXPECT_EQ(r, nullptr);
  auto done = collector->wait_for(1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_LT(mono_now() - t0, std::chrono::seconds(1));
  ASSERT_TRUE(done[0]->status.ok()) << done[0]->status.to_string();
  EXPECT_EQ(done[0]->rows, 3u);
  EXPECT_EQ(done[0]->outputs[0].shape, (Shape{3, 4}));
  expect_close(first_output(*done[0]), reference(m, values, 3), "3 rows");
}

TEST(Batcher, ConcurrentRequestsEachGetTheirOwnRows) {
  const Model m = mlp_model();
  BatcherOptions o;
  o.max_batch = 32;
  o.workers = 2;
  auto metrics = std::make_shared<ModelMetrics>();
  auto b = Batcher::create(m, o, metrics).value();
  auto collector = std::make_shared<Collector>();
  constexpr int kThreads = 8, kPerThread = 200;
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::size_t rows = 1 + static_cast<std::size_t>((t + i) % 3);
        auto r = request_for(m, model::testing::random_floats(16 * rows, t * 1000 + i), rows);
        r->id = std::to_string(t * 1000 + i);
        r->responder = collector;
        // Odd requests go in with the one before them, as a front end queues
        // what one read produced: shared batches form however fast the
        // model is (with submit alone, inline runs may keep every batch to
        // one request on a fast machine).
        while (!b->enqueue(r).ok()) {  // queue full: start what is queued, retry
          refused.fetch_add(1);
          b->flush();
          std::this_thread::yield();
        }
        if (i % 2 == 1) b->flush();
      }
      b->flush();
    });
  }
  for (auto& t : threads) t.join();
  auto done = collector->wait_for(kThreads * kPerThread);
  ASSERT_EQ(done.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::size_t batched = 0;
  for (const auto& r : done) {
    ASSERT_TRUE(r->status.ok());
    const int id = std::stoi(r->id);
    const auto values = model::testing::random_floats(16 * r->rows, id);
    expect_close(first_output(*r), reference(m, values, r->rows), "request " + r->id);
    if (r->batch_size > r->rows) ++batched;
  }
  EXPECT_GT(batched, 0u) << "8 producers on 2 workers should have formed shared batches";
  EXPECT_LT(metrics->execution_count.load(), metrics->inference_count.load());
  EXPECT_EQ(metrics->in_flight.load(), 0);
}

TEST(Batcher, AFullQueueRefusesAtOnceAndKeepsTheRequest) {
  const Model m = linear_model(4);
  BatcherOptions o;
  o.max_queue = 2;
  o.inline_max_compute = Nanos(0);  // the worker thread, not this one, must be the busy one
  auto b = Batcher::create(m, o, nullptr).value();
  auto collector = std::make_shared<Collector>();
  collector->hold_next();
  auto first = request_for(m, {1, 2, 3, 4}, 1);
  first->responder = collector;
  ASSERT_TRUE(b->submit(first).ok());
  collector->wait_holding();  // the only worker is busy in complete()
  for (int i = 0; i < 2; ++i) {
    auto r = request_for(m, {1, 2, 3, 4}, 1);
    r->responder = collector;
    ASSERT_TRUE(b->submit(r).ok());
  }
  auto extra = request_for(m, {1, 2, 3, 4}, 1);
  extra->responder = collector;
  const MonoTime t0 = mono_now();
  const Status s = b->submit(extra);
  EXPECT_LT(mono_now() - t0, std::chrono::milliseconds(1));
  EXPECT_EQ(s.code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(s.message().find("queue full"), std::string_view::npos) << s.message();
  ASSERT_NE(extra, nullptr);
  EXPECT_EQ(b->stats().refused, 1u);
  collector->release();
  EXPECT_EQ(collector->wait_for(3).size(), 3u);
}

TEST(Batcher, ExpiredRequestsAreAnsweredWithoutComputing) {
  const Model m = linear_model(4);
  BatcherOptions o;
  o.inline_max_compute = Nanos(0);
  auto b = Batcher::create(m, o, nullptr).value();
  auto collector = std::make_shared<Collector>();
  collector->hold_next();
  auto first = request_for(m, {1, 2, 3, 4}, 1);
  first->responder = collector;
  ASSERT_TRUE(b->submit(first).ok());
  collector->wait_holding();
  auto late = request_for(m, {1, 2, 3, 4}, 1);
  late->responder = collector;
  late->deadline = mono_now() + std::chrono::milliseconds(1);
  ASSERT_TRUE(b->submit(late).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  collector->release();
  auto done = collector->wait_for(2);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_TRUE(done[0]->status.ok());
  EXPECT_EQ(done[1]->status.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(b->stats().expired, 1u);
  EXPECT_EQ(b->stats().rows, 1u);  // only the first was computed
}

std::uint64_t total(const Histogram& h) {
  std::uint64_t n = 0;
  for (const std::uint64_t c : h.counts()) n += c;
  return n;
}

// A clock that moves `step` on every reading, so a batch "computes" for
// exactly one step (its start and end are consecutive readings while no
// other thread reads the clock): how slow a model is, without timing.
class TickingClock final : public Clock {
 public:
  explicit TickingClock(Nanos step) : step_(step.count()) {}
  [[nodiscard]] MonoTime now() const noexcept override {
    return MonoTime(
        Nanos(t_.fetch_add(step_.load(std::memory_order_relaxed), std::memory_order_relaxed)));
  }
  void set_step(Nanos step) { step_.store(step.count(), std::memory_order_relaxed); }

 private:
  mutable std::atomic<std::int64_t> t_{std::int64_t{1'000'000'000'000}};
  std::atomic<std::int64_t> step_;
};

// Waits until every worker has gone idle: a worker completes a batch's
// requests before it looks at the queue again, so a request submitted right
// after an answer may still find it busy.
void wait_idle(const Batcher& b) {
  const MonoTime deadline = mono_now() + std::chrono::seconds(10);
  while (b.stats().idle_workers < b.options().workers && mono_now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(b.stats().idle_workers, b.options().workers);
}

// Submits one request and waits for it, then for the workers to go idle;
// true when it was answered on this thread (an inline run).
bool submit_one(Batcher& b, const Model& m, const std::shared_ptr<Collector>& c,
                std::vector<std::unique_ptr<InferenceRequest>>& done) {
  auto r = request_for(m, {1, 2, 3, 4}, 1);
  r->responder = c;
  EXPECT_TRUE(b.submit(r).ok());
  auto got = c->wait_for(1);
  EXPECT_EQ(got.size(), 1u);
  for (auto& g : got) done.push_back(std::move(g));
  wait_idle(b);
  const auto threads = c->threads();
  return !threads.empty() && threads.back().second == std::this_thread::get_id();
}

// A cheap model's first batch runs on a worker (its cost is not known yet);
// once measured, a lone request runs on the submitting thread (no wake-up);
// with inline runs off, always on a worker.
TEST(Batcher, ALoneCheapRequestRunsInlineOnceMeasuredUnlessTurnedOff) {
  const Model m = linear_model(4);
  for (const bool inline_on : {true, false}) {
    TickingClock clock(std::chrono::microseconds(1));
    BatcherOptions o;
    o.clock = &clock;
    if (!inline_on) o.inline_max_compute = Nanos(0);
    auto metrics = std::make_shared<ModelMetrics>();
    auto b = Batcher::create(m, o, metrics).value();
    auto collector = std::make_shared<Collector>();
    std::vector<std::unique_ptr<InferenceRequest>> done;
    EXPECT_FALSE(submit_one(*b, m, collector, done)) << "the first batch is measured on a worker";
    EXPECT_EQ(submit_one(*b, m, collector, done), inline_on);
    EXPECT_EQ(submit_one(*b, m, collector, done), inline_on);
    EXPECT_EQ(b->stats().inline_batches, inline_on ? 2u : 0u) << "inline " << inline_on;
    // Both paths count alike: every batch, row and request.
    EXPECT_EQ(metrics->execution_count.load(), 3u);
    EXPECT_EQ(metrics->inference_count.load(), 3u);
    EXPECT_EQ(metrics->in_flight.load(), 0);
    EXPECT_EQ(total(metrics->compute_duration), 3u);
    EXPECT_EQ(total(metrics->queue_duration), 3u);
    EXPECT_EQ(total(metrics->batch_size), 3u);
    for (const auto& r : done) {
      ASSERT_TRUE(r->status.ok());
      EXPECT_EQ(r->compute_time, std::chrono::microseconds(1));
      expect_close(first_output(*r), reference(m, {1, 2, 3, 4}, 1),
                   "inline " + std::to_string(inline_on));
    }
  }
}

// A model slower than the inline budget never runs on the submitting thread,
// not even its first batch; one that turns slow stops after one slow batch.
TEST(Batcher, ASlowModelNeverRunsInline) {
  const Model m = linear_model(4);
  TickingClock clock(std::chrono::milliseconds(1));  // 20x the default 50 us budget
  BatcherOptions o;
  o.clock = &clock;
  auto b = Batcher::create(m, o, nullptr).value();
  auto collector = std::make_shared<Collector>();
  std::vector<std::unique_ptr<InferenceRequest>> done;
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(submit_one(*b, m, collector, done)) << i;
  EXPECT_EQ(b->stats().inline_batches, 0u);

  TickingClock turns(std::chrono::microseconds(1));
  o.clock = &turns;
  auto c = Batcher::create(m, o, nullptr).value();
  EXPECT_FALSE(submit_one(*c, m, collector, done));  // measured: 1 us a row
  EXPECT_TRUE(submit_one(*c, m, collector, done));
  turns.set_step(std::chrono::milliseconds(1));
  EXPECT_TRUE(submit_one(*c, m, collector, done));  // still thought cheap: measured slow now
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(submit_one(*c, m, collector, done)) << i;
  EXPECT_EQ(c->stats().inline_batches, 2u);
  for (const auto& r : done) EXPECT_TRUE(r->status.ok());
}

// A batch whose measured compute fits the budget (50 us at 20 us a row: 2
// rows) runs inline; a bigger one runs whole on the worker, not split; a
// request with more rows than fit never runs inline. Every request gets
// its own rows either way.
TEST(Batcher, ABatchOverTheInlineBudgetRunsWholeOnAWorker) {
  const Model m = linear_model(4);
  TickingClock clock(std::chrono::microseconds(20));
  BatcherOptions o;
  o.clock = &clock;
  auto metrics = std::make_shared<ModelMetrics>();
  auto b = Batcher::create(m, o, metrics).value();
  auto collector = std::make_shared<Collector>();
  std::vector<std::unique_ptr<InferenceRequest>> done;
  EXPECT_FALSE(submit_one(*b, m, collector, done));  // measured: 20 us a row
  int next_id = 0;
  auto enqueue_and_flush = [&](int n) {
    std::vector<int> ids;
    for (int i = 0; i < n; ++i, ++next_id) {
      auto r = request_for(m, {1, 2, 3, static_cast<float>(next_id)}, 1);
      r->id = std::to_string(next_id);
      r->responder = collector;
      EXPECT_TRUE(b->enqueue(r).ok());
    }
    b->flush();
    auto got = collector->wait_for(static_cast<std::size_t>(n));
    EXPECT_EQ(got.size(), static_cast<std::size_t>(n));
    wait_idle(*b);
    std::size_t here = 0;
    for (const auto& [id, thread] : collector->threads()) {
      if (!id.empty() && std::stoi(id) >= next_id - n) here += thread == std::this_thread::get_id();
    }
    for (const auto& r : got) {
      EXPECT_TRUE(r->status.ok());
      EXPECT_EQ(r->batch_size, static_cast<std::size_t>(n)) << "request " << r->id;
      const float id = static_cast<float>(std::stoi(r->id));
      expect_close(first_output(*r), reference(m, {1, 2, 3, id}, 1), "request " + r->id);
    }
    return here;
  };
  EXPECT_EQ(enqueue_and_flush(2), 2u);  // 2 rows x 20 us fit 50 us: inline
  EXPECT_EQ(b->stats().inline_batches, 1u);
  EXPECT_EQ(enqueue_and_flush(5), 0u);  // 5 rows do not: one batch on the worker
  EXPECT_EQ(b->stats().inline_batches, 1u);
  EXPECT_EQ(metrics->execution_count.load(), 3u);
  EXPECT_EQ(metrics->inference_count.load(), 8u);
  EXPECT_EQ(total(metrics->queue_duration), 8u);
  EXPECT_EQ(metrics->in_flight.load(), 0);

  auto big = request_for(m, std::vector<float>(4 * 3, 1.0f), 3);
  big->responder = collector;
  ASSERT_TRUE(b->submit(big).ok());
  EXPECT_EQ(collector->wait_for(1).size(), 1u);
  EXPECT_EQ(b->stats().inline_batches, 1u);
}

// A request whose deadline passed is answered deadline_exceeded by an
// inline run too, without being computed.
TEST(Batcher, AnInlineRunAnswersExpiredRequestsWithoutComputing) {
  const Model m = linear_model(4);
  FakeClock clock;
  BatcherOptions o;
  o.clock = &clock;
  auto b = Batcher::create(m, o, nullptr).value();
  auto collector = std::make_shared<Collector>();
  std::vector<std::unique_ptr<InferenceRequest>> done;
  EXPECT_FALSE(submit_one(*b, m, collector, done));  // measured (0 us on a fake clock)
  auto late = request_for(m, {1, 2, 3, 4}, 1);
  late->responder = collector;
  late->deadline = clock.now() + std::chrono::milliseconds(1);
  ASSERT_TRUE(b->enqueue(late).ok());
  clock.advance(std::chrono::milliseconds(2));
  b->flush();
  auto got = collector->wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(collector->threads().back().second, std::this_thread::get_id()) << "answered inline";
  EXPECT_EQ(got[0]->status.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(b->stats().expired, 1u);
  EXPECT_EQ(b->stats().rows, 1u);  // only the first was computed
  EXPECT_EQ(b->stats().inline_batches, 1u);
}

// enqueue() starts nothing; flush() runs what was enqueued together as one batch.
TEST(Batcher, EnqueuedRequestsRunTogetherOnFlush) {
  const Model m = linear_model(4);
  auto b = Batcher::create(m, {}, nullptr).value();
  auto collector = std::make_shared<Collector>();
  for (int i = 0; i < 5; ++i) {
    auto r = request_for(m, {1, 2, 3, static_cast<float>(i)}, 1);
    r->responder = collector;
    ASSERT_TRUE(b->enqueue(r).ok());
  }
  EXPECT_EQ(b->stats().queued, 5u);
  EXPECT_EQ(b->stats().requests, 0u);
  b->flush();
  auto done = collector->wait_for(5);
  ASSERT_EQ(done.size(), 5u);
  for (const auto& r : done) EXPECT_EQ(r->batch_size, 5u);
  EXPECT_EQ(b->stats().batches, 1u);
}

TEST(Batcher, BadInputIsRefusedWithWhereAndWhat) {
  const Model m = linear_model(4);
  BatcherOptions o;
  o.max_batch = 8;
  auto b = Batcher::create(m, o, nullptr).value();
  const std::string in = m.inputs()[0].name;
  auto expect_error = [&](std::unique_ptr<InferenceRequest> r, std::string_view fragment) {
    const Status s = b->submit(r);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.to_string();
    EXPECT_NE(s.message().find(fragment), std::string_view::npos) << s.message();
    EXPECT_NE(r, nullptr);
  };
  expect_error(request_for(m, std::vector<float>(7, 1), 1), "shape [1, 7], expected [N, 4]");
  expect_error(request_for(m, std::vector<float>(4 * 9, 1), 9), "9 rows exceed the max batch");
  {
    auto r = request_for(m, {1, 2, 3, 4}, 1);
    r->inputs[0].name = "nope";
    expect_error(std::move(r), "unknown input 'nope'");
  }
  {
    auto r = request_for(m, {1, 2, 3, 4}, 1);
    r->inputs[0].dtype = DType::kI64;
    expect_error(std::move(r), "datatype INT64, expected FP32 or FP64");
  }
  {
    auto r = request_for(m, {1, 2, 3, 4}, 1);
    r->inputs[0].data = r->inputs[0].data.first(12);
    expect_error(std::move(r), "12 bytes of data");
  }
  {
    auto r = request_for(m, {1, 2, 3, 4}, 1);
    r->requested_outputs = {"nope"};
    expect_error(std::move(r), "unknown output 'nope'");
  }
  {
    auto r = std::make_unique<InferenceRequest>();
    expect_error(std::move(r), "missing input '" + in + "'");
  }
  EXPECT_EQ(b->stats().requests, 0u);
}

TEST(Batcher, Float64InputsAreConvertedOnGather) {
  const Model m = linear_model(4);
  auto b = Batcher::create(m, {}, nullptr).value();
  auto collector = std::make_shared<Collector>();
  auto r = std::make_unique<InferenceRequest>();
  InputTensor& in = r->inputs.emplace_back();
  in.name = m.inputs()[0].name;
  in.dtype = DType::kF64;
  in.shape = Shape{1, 4};
  const double values[] = {0.5, -1, 2, 3.25};
  in.owned.resize(sizeof(values));
  std::memcpy(in.owned.data(), values, sizeof(values));
  in.data = in.owned;
  r->responder = collector;
  ASSERT_TRUE(b->submit(r).ok());
  auto done = collector->wait_for(1);
  ASSERT_EQ(done.size(), 1u);
  expect_close(first_output(*done[0]), reference(m, {0.5f, -1, 2, 3.25f}, 1), "f64 row");
}

TEST(Batcher, ShutdownAnswersEverythingQueued) {
  const Model m = linear_model(4);
  auto b = Batcher::create(m, {}, nullptr).value();
  auto collector = std::make_shared<Collector>();
  for (int i = 0; i < 100; ++i) {
    auto r = request_for(m, {1, 2, 3, 4}, 1);
    r->responder = collector;
    ASSERT_TRUE(b->submit(r).ok());
  }
  b->shutdown();
  EXPECT_EQ(collector->wait_for(100).size(), 100u);
  auto after = request_for(m, {1, 2, 3, 4}, 1);
  EXPECT_EQ(b->submit(after).code(), ErrorCode::kClosed);
}

// A completion that destroys the batcher that called it (the last owner of
// a served model can be a request finishing on a worker thread).
class DropsTheBatcher final : public Responder {
 public:
  std::unique_ptr<Batcher> batcher;
  std::atomic<bool> done{false};
  std::atomic<bool> inline_run{false};
  std::thread::id submitter = std::this_thread::get_id();
  void complete(std::unique_ptr<InferenceRequest> r) override {
    r.reset();
    inline_run = std::this_thread::get_id() == submitter;
    batcher.reset();  // ~Batcher on its own worker thread, or inside submit()
    done = true;
  }
};

TEST(Batcher, ACompletionMayDestroyTheBatcher) {
  const Model m = linear_model(4);
  // Inline: the completion runs inside submit() on this thread; off: on the
  // batcher's own worker thread.
  for (const bool inline_on : {true, false}) {
    BatcherOptions o;
    if (!inline_on) o.inline_max_compute = Nanos(0);
    auto responder = std::make_shared<DropsTheBatcher>();
    responder->batcher = Batcher::create(m, o, nullptr).value();
    Batcher* raw = responder->batcher.get();
    {  // a first batch, on the worker, measures the model: the next may run inline
      auto warm = request_for(m, {1, 2, 3, 4}, 1);
      auto collector = std::make_shared<Collector>();
      warm->responder = collector;
      ASSERT_TRUE(raw->submit(warm).ok());
      ASSERT_EQ(collector->wait_for(1).size(), 1u);
      wait_idle(*raw);
    }
    auto r = request_for(m, {1, 2, 3, 4}, 1);
    r->responder = responder;
    ASSERT_TRUE(raw->submit(r).ok());
    const MonoTime deadline = mono_now() + std::chrono::seconds(10);
    while (!responder->done && mono_now() < deadline) std::this_thread::yield();
    EXPECT_TRUE(responder->done) << "inline " << inline_on;
    if (inline_on) {
      EXPECT_TRUE(responder->inline_run) << "the completion ran inside submit()";
    }
  }
}

}  // namespace
}  // namespace myelin::serve
