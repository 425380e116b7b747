#include "src/loop/task_queue.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace myelin::detail {
namespace {

std::size_t run_all(TaskQueue& q) {
  std::size_t total = 0;
  while (std::size_t n = q.consume(1000, [](TaskQueue::Queued& t) {
    t();
    return true;
  }))
    total += n;
  return total;
}

TEST(TaskQueue, FifoAcrossManyBlocks) {
  TaskQueue q;
  std::vector<int> order;
  const int n = static_cast<int>(TaskQueue::kBlockCap) * 5 + 17;
  for (int i = 0; i < n; ++i) {
    Task t([&order, i] { order.push_back(i); });
    ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
  }
  EXPECT_TRUE(q.has_claimed());
  EXPECT_EQ(run_all(q), static_cast<std::size_t>(n));
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(order[i], i);
  EXPECT_FALSE(q.has_claimed());
  EXPECT_FALSE(q.head_ready());
}

TEST(TaskQueue, BlocksAreRecycledNotReallocated) {
  TaskQueue q;
  int hits = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 1000; ++i) {
      Task t([&hits] { ++hits; });
      ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
    }
    run_all(q);
  }
  EXPECT_EQ(hits, 200 * 1000);
  // 1000 queued tasks need at most 5 blocks; 200 rounds must reuse them.
  EXPECT_LE(q.blocks_allocated(), 6u);
}

TEST(TaskQueue, CloseRejectsLaterPushesAndKeepsEarlierOnes) {
  TaskQueue q;
  int hits = 0;
  Task a([&hits] { ++hits; });
  ASSERT_EQ(q.push(a), TaskQueue::PushResult::kOk);
  q.close();
  EXPECT_TRUE(q.closed());
  Task b([&hits] { hits += 100; });
  EXPECT_EQ(q.push(b), TaskQueue::PushResult::kClosed);
  EXPECT_TRUE(b);  // a refused task is left with the caller
  EXPECT_EQ(run_all(q), 1u);
  EXPECT_EQ(hits, 1);
}

TEST(TaskQueue, DestructorDestroysUnrunTasks) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  {
    TaskQueue q;
    for (int i = 0; i < 600; ++i) {
      Task t([token] { (void)token; });
      ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
    }
    token.reset();
    EXPECT_FALSE(watch.expired());
  }
  EXPECT_TRUE(watch.expired());
}

// A callable of 48 bytes (two units) whose third word sits where the second
// unit's seq would be.
struct Wide {
  std::uint64_t w[5];
  int* hits;
  void operator()() const { ++*hits; }
};
static_assert(sizeof(Wide) == 48);

TEST(TaskQueue, SmallAndWideTasksInterleaveInOrderAcrossBlocks) {
  TaskQueue q;
  std::vector<int> order;
  int hits = 0;
  const int n = static_cast<int>(TaskQueue::kBlockCap) * 4 + 3;
  for (int i = 0; i < n; ++i) {
    // Runs of 1, 2 and 3 wide tasks between small ones hit every pad case.
    if (i % 4 != 0) {
      Task t([&order, i] { order.push_back(i); });
      ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
      EXPECT_FALSE(t);  // moved out
    } else {
      Task t([&order, i, pad = std::array<std::uint64_t, 4>{}] {
        (void)pad;
        order.push_back(i);
      });
      ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
    }
    if (i % 7 == 3) {
      Task w(Wide{{1, 2, 3, 4, 5}, &hits});
      ASSERT_EQ(q.push(w), TaskQueue::PushResult::kOk);
    }
  }
  run_all(q);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(order[i], i);
  EXPECT_EQ(hits, (n + 3) / 7);
  EXPECT_FALSE(q.has_claimed());
}

// The second unit of a wide record held callable bytes. Two laps later the
// same unit can start a small record; had those bytes equalled that record's
// ticket + 1, the consumer would have taken them for a ready record and run
// garbage. The consumer zeroes that word.
TEST(TaskQueue, StaleCallableBytesNeverLookLikeAReadyRecord) {
  TaskQueue q;
  constexpr std::uint64_t kLap = TaskQueue::kLap;
  int hits = 0;
  auto small = [&] {
    Task t([&hits] { ++hits; });
    ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
  };
  // Lap 0, block A: one small record, then wide records filling the block.
  small();
  for (std::uint64_t first = 1; first + 1 < TaskQueue::kBlockCap; first += 2) {
    const std::uint64_t second = first + 1;
    // Blocks alternate A, B, A: this unit's ticket two laps on, plus one.
    Task t(Wide{{0, 0, 2 * kLap + second + 1, 0, 0}, &hits});
    ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
  }
  run_all(q);
  // Lap 1, block B.
  for (std::uint64_t i = 0; i < TaskQueue::kBlockCap; ++i) small();
  run_all(q);
  ASSERT_EQ(q.blocks_allocated(), 2u);  // the rotation the poison assumes
  // Lap 2, block A again: two small records; the head then rests on unit 2.
  small();
  small();
  const int before = hits;
  EXPECT_EQ(run_all(q), 2u);
  EXPECT_EQ(hits, before + 2);
  EXPECT_FALSE(q.head_ready());
  EXPECT_FALSE(q.has_claimed());
}

std::size_t push_counting(TaskQueue& q, int n, int& hits) {
  for (int i = 0; i < n; ++i) {
    Task t([&hits] { ++hits; });
    if (q.push(t) != TaskQueue::PushResult::kOk) return static_cast<std::size_t>(i);
  }
  return static_cast<std::size_t>(n);
}

std::size_t consume_once(TaskQueue& q, std::size_t max) {
  return q.consume(max, [](TaskQueue::Queued& t) {
    t();
    return true;
  });
}

TEST(TaskQueue, PacingDrainsAStoppedProducersBatchInOneCallWithoutASlip) {
  for (int n : {2, 10, static_cast<int>(TaskQueue::kChaseLag) * 4}) {
    TaskQueue q(std::chrono::microseconds(20));
    int hits = 0;
    ASSERT_EQ(push_counting(q, n, hits), static_cast<std::size_t>(n));
    // The second record makes the consumer look at the tail; it does not
    // move (nobody is submitting), so nothing waits out a slip and nothing
    // is left behind for a later call.
    EXPECT_EQ(consume_once(q, 100000), static_cast<std::size_t>(n)) << n;
    EXPECT_EQ(hits, n);
    EXPECT_EQ(q.slips(), 0u) << n;
    EXPECT_FALSE(q.head_ready());
  }
}

// Runs a producer thread that submits groups of 8 tasks a few pauses apart
// (the consumer, chasing a group, finds a record ready right after running
// one and, while it looks at the tail, sees it move) and consumes on this
// thread while keep_consuming() holds; then stops the producer and drains.
// The producer stays at most 4096 tasks ahead. Returns false if a task was
// lost, ran twice or ran out of order.
bool consume_grouped_producer(TaskQueue& q, const std::function<bool()>& keep_consuming) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> pushed{0};
  std::atomic<std::uint64_t> consumed{0};
  std::uint64_t ran = 0;  // the consumer's (this thread's), like the tasks
  bool in_order = true;
  std::thread producer([&] {
    std::uint64_t i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (i - consumed.load(std::memory_order_relaxed) > 4096) {
        std::this_thread::yield();
        continue;
      }
      for (int k = 0; k < 8; ++k, ++i) {
        Task t([&ran, &in_order, i] {
          if (ran != i) in_order = false;
          ++ran;
        });
        while (q.push(t) != TaskQueue::PushResult::kOk) {
        }
      }
      pushed.store(i, std::memory_order_release);
      for (int p = 0; p < 4; ++p) cpu_relax();
    }
  });
  while (keep_consuming()) {
    consume_once(q, 64);
    consumed.store(ran, std::memory_order_relaxed);
  }
  stop.store(true, std::memory_order_relaxed);
  producer.join();
  const std::uint64_t total = pushed.load(std::memory_order_acquire);
  while (ran < total && consume_once(q, 100000) > 0) {
  }
  return in_order && ran == total && !q.head_ready();
}

TEST(TaskQueue, PacingWaitsForAProducerThatIsStillSubmitting) {
  TaskQueue q(std::chrono::microseconds(20));
  const MonoTime deadline = mono_now() + std::chrono::seconds(20);
  EXPECT_TRUE(consume_grouped_producer(q, [&] { return q.slips() == 0 && mono_now() < deadline; }));
  EXPECT_GT(q.slips(), 0u);
}

TEST(TaskQueue, ZeroSlipTurnsPacingOff) {
  TaskQueue q{Nanos(0)};
  const MonoTime end = mono_now() + std::chrono::milliseconds(200);
  EXPECT_TRUE(consume_grouped_producer(q, [&] { return mono_now() < end; }));
  EXPECT_EQ(q.slips(), 0u);
}

TEST(TaskQueue, ConcurrentProducersKeepPerProducerOrder) {
  TaskQueue q;
  constexpr int kProducers = 4;
  constexpr int kEach = 20000;
  std::vector<int> last(kProducers, -1);
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        Task t([&, p, i] {
          if (last[p] + 1 != i) ok = false;
          last[p] = i;
        });
        while (q.push(t) != TaskQueue::PushResult::kOk) {
        }
      }
    });
  }
  std::size_t total = 0;
  while (total < static_cast<std::size_t>(kProducers) * kEach) total += run_all(q);
  for (auto& t : threads) t.join();
  EXPECT_TRUE(ok);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(last[p], kEach - 1);
}

}  // namespace
}  // namespace myelin::detail
