// The memory pipe behind duplex_pair(): ring wrap-around, back-pressure,
// the park/wake protocol across threads, and readiness on an EventLoop.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdint>
#include <future>
#include <numeric>
#include <thread>
#include <vector>

#include "myelin/net/ring_pool.h"
#include "myelin/net/stream.h"

namespace myelin::net {
namespace {

using Pair = std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>>;

Pair make(std::size_t capacity) {
  auto p = duplex_pair(capacity);
  EXPECT_TRUE(p) << p.error().to_string();
  return std::move(*p);
}

Pair make_pooled(std::size_t capacity, const std::shared_ptr<RingPool>& pool) {
  auto p = duplex_pair(capacity, Nanos(0), pool);
  EXPECT_TRUE(p) << p.error().to_string();
  return std::move(*p);
}

// Byte i of a test stream.
std::byte pattern(std::uint64_t i) { return std::byte(static_cast<std::uint8_t>((i * 131) >> 3)); }

TEST(MemoryPipe, CapacityOutOfRangeIsRejected) {
  auto zero = duplex_pair(0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(duplex_pair(std::size_t{2} << 30));
}

TEST(MemoryPipe, FullRingPushesBackAndWrapsAround) {
  auto [a, b] = make(4096);
  std::vector<std::byte> out(10000);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = pattern(i);
  auto w = a->write(out);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->bytes, 4096u);  // exactly the capacity, no more
  w = a->write({out.data() + 4096, 1});
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->would_block);
  EXPECT_EQ(a->wait(kIoWritable, mono_now() + std::chrono::milliseconds(10)).code(),
            ErrorCode::kDeadlineExceeded);

  std::vector<std::byte> in;
  std::size_t sent = 4096;
  std::byte buf[3000];
  while (in.size() < out.size()) {  // reads of 3000 against a 4096 ring wrap every time
    auto r = b->read(buf);
    ASSERT_TRUE(r);
    ASSERT_FALSE(r->eof);
    in.insert(in.end(), buf, buf + r->bytes);
    if (sent < out.size()) {
      w = a->write({out.data() + sent, out.size() - sent});
      ASSERT_TRUE(w);
      sent += w->bytes;
    }
  }
  EXPECT_EQ(in, out);
  auto r = b->read(buf);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->would_block);
}

TEST(MemoryPipe, WritevStopsAtTheRoomLeft) {
  auto [a, b] = make(4096);
  std::vector<std::byte> x(3000, std::byte{1}), y(3000, std::byte{2});
  const iovec iov[2] = {{x.data(), x.size()}, {y.data(), y.size()}};
  auto w = a->writev(iov);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->bytes, 4096u);
  std::vector<std::byte> buf(8192);
  auto r = b->read(buf);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->bytes, 4096u);
  EXPECT_EQ(buf[2999], std::byte{1});
  EXPECT_EQ(buf[3000], std::byte{2});
  EXPECT_EQ(buf[4095], std::byte{2});
}

// A ring of a page or more is mapped twice, so windows run past the wrap
// in one piece; the bytes written through a window read back in order.
TEST(MemoryPipe, WindowsLendTheRingAcrossTheWrap) {
  constexpr std::size_t kCap = 64 * 1024;
  auto [a, b] = make(kCap);
  std::span<std::byte> w = a->write_window();
  ASSERT_EQ(w.size(), kCap);
  for (std::size_t i = 0; i < 40000; ++i) w[i] = pattern(i);
  a->commit_write(40000);
  std::span<std::byte> r = b->read_window();
  ASSERT_EQ(r.size(), 40000u);
  b->consume_read(40000);
  w = a->write_window();  // starts at 40000, wraps at 65536
  ASSERT_EQ(w.size(), kCap);
  for (std::size_t i = 0; i < 50000; ++i) w[i] = pattern(40000 + i);
  a->commit_write(50000);
  EXPECT_EQ(a->write_window().size(), kCap - 50000);
  r = b->read_window();
  ASSERT_EQ(r.size(), 50000u);
  for (std::size_t i = 0; i < r.size(); ++i) ASSERT_EQ(r[i], pattern(40000 + i)) << i;
  std::vector<std::byte> copy(50000);  // read() sees the same bytes
  auto got = b->read(copy);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->bytes, 50000u);
  for (std::size_t i = 0; i < copy.size(); ++i) ASSERT_EQ(copy[i], pattern(40000 + i)) << i;
  EXPECT_TRUE(b->read_window().empty());
  EXPECT_FALSE(a->wait_window(kCap + 1, mono_now()));  // never fits: no wait
}

// A ring smaller than a page is one block: windows stop at its end, and
// waiting for a window that cannot fit before the end fails at once.
TEST(MemoryPipe, SmallRingWindowsStopAtTheWrap) {
  auto [a, b] = make(1024);
  ASSERT_EQ(a->write(std::vector<std::byte>(1000)).value().bytes, 1000u);
  std::vector<std::byte> sink(1000);
  ASSERT_EQ(b->read(sink).value().bytes, 1000u);
  EXPECT_EQ(a->write_window().size(), 24u);
  EXPECT_FALSE(a->wait_window(100, mono_now() + std::chrono::seconds(5)));
  EXPECT_TRUE(a->wait_window(24, mono_now()));
}

// A writer waiting for room wakes when the reader hands bytes back, and
// stops waiting when the reader goes away.
TEST(MemoryPipe, WaitWindowWakesOnReleaseAndStopsOnClose) {
  constexpr std::size_t kCap = 64 * 1024;
  auto [a, b] = make(kCap);
  a->commit_write(a->write_window().size());  // full
  // The close waits for the writer to have taken the released room: on a
  // loaded machine a fixed sleep let it come first (the writer then saw a
  // closed stream, not the room).
  std::promise<void> took_room;
  std::thread reader([&b, taken = took_room.get_future()] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // usually parked by now
    b->consume_read(8192);
    (void)taken.wait_for(std::chrono::seconds(10));  // bounded: the writer may have failed
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    b->close();
  });
  EXPECT_TRUE(a->wait_window(8192, mono_now() + std::chrono::seconds(10)));
  EXPECT_EQ(a->write_window().size(), 8192u);
  a->commit_write(8192);
  took_room.set_value();
  EXPECT_FALSE(a->wait_window(4096, mono_now() + std::chrono::seconds(10)));
  reader.join();
  EXPECT_TRUE(a->write_window().empty());
}

TEST(MemoryPipe, IoAfterCloseIsAnErrorNotACrash) {
  auto [a, b] = make(4096);
  a->close();
  a->close();  // twice is fine
  std::byte buf[8];
  EXPECT_FALSE(a->read(buf));
  EXPECT_FALSE(a->write(buf));
  EXPECT_FALSE(a->wait(kIoReadable, mono_now()).ok());
  ASSERT_TRUE(b->shutdown_write().ok());
  auto w = b->write(buf);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find("duplex:b"), std::string_view::npos);
}

// A pooled pipe's rings are recycled when it closes: a fresh mapping would
// fault every page in again (and be unmapped on close), which cost about
// 80 µs per connection on this VM.
TEST(MemoryPipe, ClosedPipesLeaveTheirRingsWarmForTheNext) {
  constexpr std::size_t kCap = 256 * 1024;
  auto pool = RingPool::create();
  std::vector<std::byte> buf(kCap);
  const auto pass = [&buf](Stream& from, Stream& to) {  // touches every page of one ring
    auto w = from.write(buf);
    ASSERT_TRUE(w);
    ASSERT_EQ(w->bytes, buf.size());
    auto r = to.read(buf);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->bytes, buf.size());
  };
  const auto cycle = [&pass, &pool] {
    auto [a, b] = make_pooled(kCap, pool);
    pass(*a, *b);
    pass(*b, *a);
  };
  cycle();
  const auto faults = [] {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
  };
  const long before = faults();
  constexpr int kCycles = 20;
  for (int i = 0; i < kCycles; ++i) cycle();
  const long fresh = kCycles * 2 * static_cast<long>(kCap / 4096);  // if nothing were reused
  EXPECT_LT(faults() - before, fresh / 10) << "of " << fresh << " for fresh rings";
}

// Two threads stream 32 MiB through a small ring in odd-sized pieces,
// parking in wait() whenever the ring is empty or full: nothing is lost,
// duplicated or reordered, and no wake-up is missed (a missed one hangs
// until the 10 s deadline and fails).
TEST(MemoryPipe, ThreadsStreamThroughASmallRingWithoutLosingAWakeUp) {
  auto [a, b] = make(8192);
  constexpr std::uint64_t kTotal = 32u << 20;
  const MonoTime deadline = mono_now() + std::chrono::seconds(10);
  std::thread writer([&, &a = a] {
    std::vector<std::byte> chunk(5003);
    std::uint64_t sent = 0;
    while (sent < kTotal) {
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(kTotal - sent, 1 + (sent * 7919) % chunk.size()));
      for (std::size_t i = 0; i < n; ++i) chunk[i] = pattern(sent + i);
      std::size_t off = 0;
      while (off < n) {
        auto w = a->write({chunk.data() + off, n - off});
        ASSERT_TRUE(w) << w.error().to_string();
        if (w->would_block) {
          ASSERT_TRUE(a->wait(kIoWritable, deadline).ok());
          continue;
        }
        off += w->bytes;
      }
      sent += n;
    }
    ASSERT_TRUE(a->shutdown_write().ok());
  });
  std::uint64_t got = 0;
  std::uint64_t mismatches = 0;
  std::vector<std::byte> buf(3001);
  for (;;) {
    auto r = b->read(buf);
    ASSERT_TRUE(r) << r.error().to_string();
    if (r->eof) break;
    if (r->would_block) {
      const Status s = b->wait(kIoReadable, deadline);
      ASSERT_TRUE(s.ok()) << s.to_string() << " after " << got << " bytes";
      continue;
    }
    for (std::size_t i = 0; i < r->bytes; ++i) mismatches += buf[i] != pattern(got + i);
    got += r->bytes;
  }
  writer.join();
  EXPECT_EQ(got, kTotal);
  EXPECT_EQ(mismatches, 0u);
}

// On a loop the readiness is level-triggered like an fd's: a callback that
// reads only part of what waits is called again, writable interest fires
// once the peer makes room, and a stream destroyed inside its own callback
// is not touched again.
TEST(MemoryPipe, LoopReadinessIsLevelTriggered) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  auto [a, b] = make(4096);
  std::vector<std::byte> in;
  std::promise<void> all_in;
  constexpr std::size_t kBytes = 3000;
  ASSERT_TRUE(b->watch(**loop, kIoReadable, [&, &b = b](std::uint32_t ev) {
                 ASSERT_NE(ev & kIoReadable, 0u);
                 std::byte small[100];  // one small read per callback
                 auto r = b->read(small);
                 ASSERT_TRUE(r);
                 in.insert(in.end(), small, small + r->bytes);
                 if (in.size() == kBytes) all_in.set_value();
               }).ok());
  ASSERT_TRUE((*loop)->start().ok());
  std::vector<std::byte> out(kBytes);
  std::iota(reinterpret_cast<std::uint8_t*>(out.data()),
            reinterpret_cast<std::uint8_t*>(out.data() + out.size()), std::uint8_t{0});
  auto w = a->write(out);  // from this thread, while the loop runs
  ASSERT_TRUE(w);
  ASSERT_EQ(w->bytes, kBytes);
  ASSERT_EQ(all_in.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(in, out);

  // b stops reading; fill a's ring, then ask the loop to report when it is
  // writable again.
  std::promise<void> paused;
  (void)(*loop)->submit([&, &b = b] {
    ASSERT_TRUE(b->set_interest(0).ok());
    paused.set_value();
  });
  ASSERT_EQ(paused.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  std::vector<std::byte> fill(8192);
  w = a->write(fill);
  ASSERT_TRUE(w);
  ASSERT_EQ(w->bytes, 4096u);
  std::promise<void> writable;
  std::atomic<int> writable_calls{0};
  (void)(*loop)->submit([&, &a = a] {
    ASSERT_TRUE(a->watch(**loop, kIoWritable, [&, &a = a](std::uint32_t ev) {
                   if ((ev & kIoWritable) == 0) return;
                   if (writable_calls.fetch_add(1) == 0) writable.set_value();
                   a.reset();  // destroyed inside its own callback
                 }).ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(writable_calls.load(), 0);  // still full: no spurious readiness
  (void)(*loop)->submit([&, &b = b] {
    std::vector<std::byte> drain(1000);
    ASSERT_TRUE(b->read(drain));  // frees room on a's side
  });
  ASSERT_EQ(writable.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ASSERT_TRUE((*loop)->shutdown().ok());
  EXPECT_EQ(writable_calls.load(), 1);
}

// The ring pool is owned by its creator and injected (no process-wide
// cache): rings of closed pipes go back to the pool they came from.
TEST(RingPool, ClosedPipesGiveTheirRingsBackForThePipeAfter) {
  auto pool = RingPool::create();
  {
    auto pair = duplex_pair(4096, Nanos(0), pool);
    ASSERT_TRUE(pair) << pair.error().to_string();
    EXPECT_EQ(pool->cached_rings(), 0u);
  }
  EXPECT_EQ(pool->cached_rings(), 2u);
  EXPECT_EQ(pool->cached_bytes(), 2u * 4096);
  {
    auto other_size = duplex_pair(8192, Nanos(0), pool);  // no ring of its size waits
    ASSERT_TRUE(other_size);
    EXPECT_EQ(pool->cached_rings(), 2u);
    auto same_size = duplex_pair(4096, Nanos(0), pool);
    ASSERT_TRUE(same_size);
    EXPECT_EQ(pool->cached_rings(), 0u);
    EXPECT_EQ(pool->cached_bytes(), 0u);
  }
  EXPECT_EQ(pool->cached_rings(), 4u);
  EXPECT_EQ(pool->cached_bytes(), 2u * 4096 + 2u * 8192);
}

TEST(RingPool, KeepsNoMoreThanItsLimit) {
  auto pool = RingPool::create(4096);
  EXPECT_EQ(pool->max_cached_bytes(), 4096u);
  { ASSERT_TRUE(duplex_pair(4096, Nanos(0), pool)); }
  EXPECT_EQ(pool->cached_rings(), 1u);  // the second ring was over the limit: freed
  EXPECT_EQ(pool->cached_bytes(), 4096u);
}

TEST(RingPool, PipesWithoutAPoolShareNothing) {
  auto pool = RingPool::create();
  { ASSERT_TRUE(duplex_pair(4096, Nanos(0))); }
  EXPECT_EQ(pool->cached_rings(), 0u);
}

TEST(RingPool, AReusedRingShowsNoneOfTheEarlierPipesBytes) {
  auto pool = RingPool::create();
  {
    auto [a, b] = make_pooled(4096, pool);
    const std::vector<std::byte> junk(1000, std::byte{0x5a});
    auto w = a->write(junk);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->bytes, junk.size());  // left unread when the pipe closes
  }
  ASSERT_EQ(pool->cached_rings(), 2u);
  auto [a, b] = make_pooled(4096, pool);
  EXPECT_EQ(pool->cached_rings(), 0u);
  std::byte buf[64];
  auto r = b->read(buf);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->would_block);
  EXPECT_EQ(r->bytes, 0u);
  const std::byte fresh[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  ASSERT_TRUE(a->write(fresh));
  r = b->read(buf);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->bytes, 3u);
  EXPECT_EQ(buf[0], std::byte{1});
  EXPECT_EQ(buf[2], std::byte{3});
}

// A pipe may outlive every other reference to its pool: it keeps the pool
// alive and returns its rings there (ASan would catch a dangling pool).
TEST(RingPool, APipeOutlivesItsCreatorsReferenceToThePool) {
  auto pool = RingPool::create();
  std::weak_ptr<RingPool> watch = pool;
  auto [a, b] = make_pooled(4096, pool);
  pool.reset();
  EXPECT_FALSE(watch.expired());
  const std::byte one[1] = {std::byte{7}};
  ASSERT_TRUE(a->write(one));
  std::byte got[1];
  auto r = b->read(got);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bytes, 1u);
  a.reset();
  EXPECT_FALSE(watch.expired());  // b's pipe still holds the pool
  b.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(RingPool, ThreadsShareOnePool) {
  auto pool = RingPool::create(64 * 1024);
  auto churn = [&pool] {
    for (int i = 0; i < 300; ++i) {
      auto pair = duplex_pair(i % 2 == 0 ? 4096 : 16384, Nanos(0), pool);
      ASSERT_TRUE(pair);
      const std::byte x[1] = {std::byte{1}};
      ASSERT_TRUE(pair->first->write(x));
    }
  };
  std::thread t1(churn), t2(churn);
  t1.join();
  t2.join();
  EXPECT_LE(pool->cached_bytes(), 64u * 1024);
  EXPECT_GE(pool->cached_rings(), 2u);
}

}  // namespace
}  // namespace myelin::net
