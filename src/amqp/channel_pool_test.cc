// The channel pool against the private RabbitMQ node: many threads sharing
// one connection, exhaustion, replacement of channels the broker closed.
#include "myelin/amqp/channel_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "src/amqp/broker_test_util.h"

// GCC 12 warns about designated initializers that leave members to their
// defaults ({.exclusive = true}); that is exactly how the options are meant
// to be written.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace myelin::amqp {
namespace {

using testing::connect_or_fail;
using testing::unique_name;
using namespace std::chrono_literals;

TEST(ChannelPool, AHundredThreadsShareTwentyChannelsOnOneConnection) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto pool = ChannelPool::create(c, {.size = 20, .confirm_window = 256});
  ASSERT_TRUE(pool) << pool.error().to_string();
  const std::string q = unique_name("pool");
  {
    auto lease = (*pool)->acquire();
    ASSERT_TRUE(lease) << lease.error().to_string();
    ASSERT_TRUE((*lease)->queue_declare(q, {.auto_delete = false}).get());
  }
  constexpr int kThreads = 100;
  constexpr int kPerThread = 50;
  std::atomic<int> confirmed{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto lease = (*pool)->acquire(10s);
        if (!lease) {
          errors.fetch_add(1);
          continue;
        }
        auto f = (*lease)->publish("", q, Message{{}, std::to_string(t * kPerThread + i)},
                                   PublishOptions{});
        lease->reset();  // back to the pool before the confirm arrives
        if (f.get().ok()) {
          confirmed.fetch_add(1);
        } else {
          errors.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(confirmed.load(), kThreads * kPerThread);
  const auto stats = (*pool)->stats();
  EXPECT_LE(stats.open, 20u);
  EXPECT_EQ(stats.in_use, 0u);
  EXPECT_EQ(stats.acquired, static_cast<std::uint64_t>(kThreads * kPerThread + 1));
  auto lease = (*pool)->acquire();
  ASSERT_TRUE(lease);
  auto info = (*lease)->queue_declare(q, {.passive = true}).get();
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->message_count, static_cast<std::uint32_t>(kThreads * kPerThread));
  auto deleted = (*lease)->queue_delete(q).get();
  ASSERT_TRUE(deleted);
  EXPECT_EQ(*deleted, static_cast<std::uint32_t>(kThreads * kPerThread));
}

TEST(ChannelPool, ExhaustionTimesOutCleanly) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto pool = ChannelPool::create(c, {.size = 2, .open_eagerly = 2});
  ASSERT_TRUE(pool) << pool.error().to_string();
  auto a = (*pool)->acquire();
  auto b = (*pool)->acquire();
  ASSERT_TRUE(a && b);
  EXPECT_NE((*a)->id(), (*b)->id());
  auto none = (*pool)->try_acquire();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kResourceExhausted);
  const MonoTime t0 = mono_now();
  auto late = (*pool)->acquire(150ms);
  const Nanos took = mono_now() - t0;
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code(), ErrorCode::kDeadlineExceeded) << late.error().to_string();
  EXPECT_GE(took, 140ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ((*pool)->stats().timed_out, 1u);

  // A release wakes a waiter.
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);
    a->reset();
  });
  auto woken = (*pool)->acquire(5s);
  releaser.join();
  ASSERT_TRUE(woken) << woken.error().to_string();
  EXPECT_EQ((*pool)->stats().in_use, 2u);
}

TEST(ChannelPool, AChannelClosedByTheBrokerIsReplacedNotReused) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto pool = ChannelPool::create(c, {.size = 1});
  ASSERT_TRUE(pool);
  std::uint16_t broken_id = 0;
  {
    auto lease = (*pool)->acquire();
    ASSERT_TRUE(lease);
    broken_id = (*lease)->id();
    auto r = (*lease)->queue_declare(unique_name("missing"), {.passive = true}).get();
    ASSERT_FALSE(r);
    EXPECT_FALSE((*lease)->is_open());
  }
  auto lease = (*pool)->acquire();
  ASSERT_TRUE(lease) << lease.error().to_string();
  EXPECT_TRUE((*lease)->is_open());
  EXPECT_EQ(lease->epoch(), c->epoch());
  const std::string q = unique_name("after");
  EXPECT_TRUE((*lease)->queue_declare(q, {.exclusive = true}).get());
  EXPECT_EQ((*pool)->stats().replaced, 1u);
  (void)broken_id;
}

TEST(ChannelPool, LeasesMoveAndReleaseExactlyOnce) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto pool = ChannelPool::create(c, {.size = 1});
  ASSERT_TRUE(pool);
  auto lease = (*pool)->acquire();
  ASSERT_TRUE(lease);
  ChannelPool::Lease moved = std::move(*lease);
  EXPECT_FALSE(*lease);  // the moved-from lease is empty
  EXPECT_TRUE(moved);
  lease->reset();  // releasing an empty lease does nothing
  EXPECT_EQ((*pool)->stats().in_use, 1u);
  moved.reset();
  moved.reset();
  EXPECT_EQ((*pool)->stats().in_use, 0u);
  EXPECT_TRUE((*pool)->try_acquire());
}

// Issue 22, finding 4: from a publish callback (the loop thread) with the
// pool exhausted, acquire used to wait its whole timeout with the loop
// stalled (no heartbeats, no I/O). It must refuse at once instead.
TEST(ChannelPool, AcquireOnTheLoopThreadFailsFastInsteadOfBlocking) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto pool = ChannelPool::create(c, {.size = 1});
  ASSERT_TRUE(pool) << pool.error().to_string();
  auto held = (*pool)->acquire();  // exhausts the pool
  ASSERT_TRUE(held) << held.error().to_string();
  auto other = c->open_channel();
  ASSERT_TRUE(other) << other.error().to_string();
  struct Outcome {
    bool on_loop = false;
    Status acquire, try_acquire;
    Nanos took{0};
  };
  std::promise<Outcome> result;
  ChannelPool* p = pool->get();
  const Status st = (*other)->publish("", unique_name("nowhere"), Message{{}, "x"},
                                      [&, p, conn = c.get()](const Status&) {
                                        Outcome o;
                                        o.on_loop = conn->in_loop_thread();
                                        const MonoTime t0 = mono_now();
                                        auto a = p->acquire(3s);
                                        o.took = mono_now() - t0;
                                        o.acquire = a ? ok_status() : a.error();
                                        auto t = p->try_acquire();
                                        o.try_acquire = t ? ok_status() : t.error();
                                        result.set_value(std::move(o));
                                      });
  ASSERT_TRUE(st.ok()) << st.to_string();
  auto f = result.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  const Outcome o = f.get();
  EXPECT_TRUE(o.on_loop);
  EXPECT_EQ(o.acquire.code(), ErrorCode::kFailedPrecondition) << o.acquire.to_string();
  EXPECT_NE(o.acquire.message().find("loop thread"), std::string_view::npos)
      << o.acquire.to_string();
  EXPECT_LT(o.took, 100ms) << "acquire blocked the loop thread";
  EXPECT_EQ(o.try_acquire.code(), ErrorCode::kResourceExhausted) << o.try_acquire.to_string();
  EXPECT_TRUE(c->is_open());
}

}  // namespace
}  // namespace myelin::amqp
