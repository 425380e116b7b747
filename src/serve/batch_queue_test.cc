// The batch-forming rule (docs/serving.md, "The batcher"), on a fake clock.
#include "src/serve/batch_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace myelin::serve::detail {
namespace {

using std::chrono::microseconds;
using Reqs = std::vector<std::unique_ptr<InferenceRequest>>;

std::unique_ptr<InferenceRequest> req(std::size_t rows, std::string id,
                                      MonoTime deadline = MonoTime::max()) {
  auto r = std::make_unique<InferenceRequest>();
  r->rows = rows;
  r->id = std::move(id);
  r->deadline = deadline;
  return r;
}

void push(BatchQueue& q, FakeClock& clock, std::unique_ptr<InferenceRequest> r) {
  ASSERT_TRUE(q.push(r, clock.now()));
  ASSERT_EQ(r, nullptr);
}

std::vector<std::string> ids(const Reqs& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r->id);
  return out;
}

TEST(BatchQueue, TakesEverythingQueuedUpToMaxRows) {
  FakeClock clock;
  BatchQueue q(16);
  for (int i = 0; i < 5; ++i) push(q, clock, req(1, std::to_string(i)));
  Reqs batch, expired;
  q.take(clock.now(), 3, microseconds(500), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_TRUE(expired.empty());
  batch.clear();
  q.take(clock.now(), 3, microseconds(500), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"3", "4"}));
  EXPECT_TRUE(q.empty());
}

// next_batch_rows() predicts the rows take() forms: same max_rows and delay
// rules (the head always counts), and it takes nothing.
TEST(BatchQueue, NextBatchRowsIsWhatTakeWouldForm) {
  FakeClock clock;
  BatchQueue q(16);
  EXPECT_EQ(q.next_batch_rows(8, microseconds(500)), 0u);
  push(q, clock, req(9, "big"));  // over max_rows alone: still the whole head
  EXPECT_EQ(q.next_batch_rows(8, microseconds(500)), 9u);
  Reqs batch, expired;
  q.take(clock.now(), 8, microseconds(500), batch, expired);
  ASSERT_EQ(ids(batch), (std::vector<std::string>{"big"}));
  batch.clear();
  push(q, clock, req(2, "a"));
  push(q, clock, req(3, "b"));
  clock.advance(microseconds(600));  // "c" arrives after the delay: next batch
  push(q, clock, req(1, "c"));
  EXPECT_EQ(q.next_batch_rows(8, microseconds(500)), 5u);
  EXPECT_EQ(q.next_batch_rows(4, microseconds(500)), 2u);
  EXPECT_EQ(q.size(), 3u);
  q.take(clock.now(), 8, microseconds(500), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"a", "b"}));
}

TEST(BatchQueue, ALoneRequestIsTakenAtOnce) {
  FakeClock clock;
  BatchQueue q(4);
  push(q, clock, req(1, "a"));
  Reqs batch, expired;
  q.take(clock.now(), 64, microseconds(500), batch, expired);  // no waiting for company
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"a"}));
}

TEST(BatchQueue, BatchStaysOpenForMaxDelayAfterItsHead) {
  FakeClock clock;
  BatchQueue q(16);
  push(q, clock, req(1, "head"));
  clock.advance(microseconds(300));
  push(q, clock, req(1, "within"));
  clock.advance(microseconds(200));  // exactly max_delay after the head: still in
  push(q, clock, req(1, "edge"));
  clock.advance(microseconds(1));
  push(q, clock, req(1, "late"));
  Reqs batch, expired;
  q.take(clock.now(), 64, microseconds(500), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"head", "within", "edge"}));
  batch.clear();
  q.take(clock.now(), 64, microseconds(500), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"late"}));
}

TEST(BatchQueue, ZeroDelayBatchesOnlySimultaneousArrivals) {
  FakeClock clock;
  BatchQueue q(16);
  push(q, clock, req(1, "a"));
  push(q, clock, req(1, "b"));
  clock.advance(microseconds(1));
  push(q, clock, req(1, "c"));
  Reqs batch, expired;
  q.take(clock.now(), 64, microseconds(0), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"a", "b"}));
}

TEST(BatchQueue, RowsNotRequestsFillABatch) {
  FakeClock clock;
  BatchQueue q(16);
  push(q, clock, req(40, "a"));
  push(q, clock, req(30, "b"));  // 70 > 64: next batch
  push(q, clock, req(20, "c"));
  Reqs batch, expired;
  q.take(clock.now(), 64, microseconds(500), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"a"}));
  batch.clear();
  q.take(clock.now(), 64, microseconds(500), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"b", "c"}));
}

TEST(BatchQueue, ExpiredRequestsAreSetAsideNotBatched) {
  FakeClock clock;
  BatchQueue q(16);
  const MonoTime soon = clock.now() + microseconds(100);
  push(q, clock, req(1, "expires", soon));
  push(q, clock, req(1, "fine"));
  push(q, clock, req(1, "expires too", soon));
  clock.advance(microseconds(101));
  Reqs batch, expired;
  q.take(clock.now(), 64, microseconds(500), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"fine"}));
  EXPECT_EQ(ids(expired), (std::vector<std::string>{"expires", "expires too"}));
}

TEST(BatchQueue, RefusesWhenFullAndKeepsTheRequestWithTheCaller) {
  FakeClock clock;
  BatchQueue q(2);
  push(q, clock, req(1, "a"));
  push(q, clock, req(1, "b"));
  auto c = req(1, "c");
  EXPECT_FALSE(q.push(c, clock.now()));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->id, "c");
  Reqs batch, expired;
  q.take(clock.now(), 1, microseconds(500), batch, expired);
  EXPECT_TRUE(q.push(c, clock.now()));  // room again; the ring wraps
  batch.clear();
  q.take(clock.now(), 64, microseconds(500), batch, expired);
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"b", "c"}));
}

}  // namespace
}  // namespace myelin::serve::detail
