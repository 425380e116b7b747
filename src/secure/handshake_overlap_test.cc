// The handshake's latency features: ephemeral keys from a KeyPool, and
// message 2 split around the responder's agreement (docs/secure-channel.md
// section 4.2) so the initiator can agree while the responder does.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "myelin/secure/key_pool.h"
#include "src/secure/crypto.h"
#include "src/secure/test_util.h"
#include "src/secure/wire.h"

namespace myelin::secure {
namespace {

using testing::Pair;
using testing::Recorder;
using testing::World;

TEST(KeyPool, RefillsToCapacityAndHandsOutEachKeyOnce) {
  KeyPool pool(3);
  EXPECT_EQ(pool.available(), 0u);
  auto added = pool.refill();
  ASSERT_TRUE(added.has_value()) << added.error().to_string();
  EXPECT_EQ(*added, 3u);
  EXPECT_EQ(pool.available(), 3u);
  EXPECT_EQ(*pool.refill(), 0u);  // already full

  auto a = pool.take();
  auto b = pool.take();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(std::memcmp(a->key.public_key().data(), b->key.public_key().data(), 32), 0);
  EXPECT_NE(a->nonce, b->nonce);
  EXPECT_EQ(pool.available(), 1u);
  EXPECT_EQ(*pool.refill(1), 1u);
  EXPECT_EQ(pool.available(), 2u);
  (void)pool.take();
  (void)pool.take();
  EXPECT_EQ(pool.take(), nullptr);
  const KeyPoolStats st = pool.stats();
  EXPECT_EQ(st.generated, 4u);
  EXPECT_EQ(st.taken, 4u);
  EXPECT_EQ(st.misses, 1u);
}

TEST(KeyPool, ConcurrentRefillsNeverOverfill) {
  KeyPool pool(8);
  std::thread t1([&] { (void)pool.refill(); });
  std::thread t2([&] { (void)pool.refill(); });
  t1.join();
  t2.join();
  EXPECT_EQ(pool.available(), 8u);
  EXPECT_EQ(pool.stats().generated, 8u);
}

TEST(KeyPool, HandshakeTakesBothKeysFromThePoolAndFallsBackWhenEmpty) {
  World w;
  KeyPool pool(2);
  ASSERT_TRUE(pool.refill().has_value());
  auto ic = w.initiator(Mode::kMutual, Mode::kMutual);
  auto rc = w.responder(Mode::kMutual, Mode::kMutual);
  ic.key_pool = &pool;
  rc.key_pool = &pool;
  {
    Pair p(ic, rc);
    p.handshake();
    ASSERT_TRUE(p.i->established());
    ASSERT_TRUE(p.r->established());
    EXPECT_EQ(p.i->info().session_id, p.r->info().session_id);
  }
  EXPECT_EQ(pool.stats().taken, 2u);
  EXPECT_EQ(pool.available(), 0u);
  // Empty pool: the keys are generated inline and the handshake still works.
  Pair q(ic, rc);
  q.handshake();
  EXPECT_TRUE(q.i->established());
  EXPECT_TRUE(q.r->established());
  EXPECT_EQ(pool.stats().misses, 2u);
}

// Records what the session had queued when it asked for an early write, and
// writes it (consumes it) as a real driver would.
struct EarlyWriter : Recorder {
  Session* session = nullptr;
  std::vector<std::vector<std::byte>> early;
  Status on_early_output() override {
    auto out = session->output();
    early.emplace_back(out.begin(), out.end());
    session->consume_output(out.size());
    return ok_status();
  }
};

struct SplitResponse : ::testing::Test {
  World w;
  Recorder ih;
  EarlyWriter rh;
  std::unique_ptr<Session> i, r;
  MonoTime now = MonoTime(std::chrono::seconds(100));

  void SetUp() override {
    auto ir = Session::create(w.initiator(Mode::kMutual, Mode::kMutual), &ih);
    auto rr = Session::create(w.responder(Mode::kMutual, Mode::kMutual), &rh);
    ASSERT_TRUE(ir && rr);
    i = std::move(*ir);
    r = std::move(*rr);
    rh.session = r.get();
    ASSERT_TRUE(r->start(now).ok());
    ASSERT_TRUE(i->start(now).ok());
    std::vector<std::byte> hello(i->output().begin(), i->output().end());
    i->consume_output(hello.size());
    ASSERT_TRUE(r->receive(hello, now).ok());
    ASSERT_EQ(rh.early.size(), 1u);
  }
  // Message 2's sealed rest, queued after the early write.
  std::vector<std::byte> rest() {
    std::vector<std::byte> out(r->output().begin(), r->output().end());
    r->consume_output(out.size());
    return out;
  }
};

TEST_F(SplitResponse, EarlyBytesAreExactlyHeaderAndClearPart) {
  const std::vector<std::byte>& head = rh.early[0];
  ASSERT_EQ(head.size(), detail::kHeaderSize + detail::kResponseClearSize);
  EXPECT_EQ(head[0], std::byte{0x02});  // Response
  const std::vector<std::byte> tail = rest();
  const std::uint32_t length = detail::get_u32(head.data() + 4);
  EXPECT_EQ(head.size() + tail.size(), detail::kHeaderSize + length);
}

TEST_F(SplitResponse, InitiatorAgreesOnTheClearPartThenCompletes) {
  ASSERT_TRUE(i->receive(rh.early[0], now).ok());
  EXPECT_EQ(i->state(), SessionState::kAwaitResponse);
  ASSERT_TRUE(i->receive(rest(), now).ok());
  EXPECT_TRUE(i->established());
  EXPECT_TRUE(i->stats().agreed_early);
  testing::pump(*i, *r, now);
  ASSERT_TRUE(r->established());
  EXPECT_EQ(i->info().session_id, r->info().session_id);
}

TEST_F(SplitResponse, MessageTwoInOnePieceAgreesOnArrival) {
  std::vector<std::byte> whole = rh.early[0];
  const std::vector<std::byte> tail = rest();
  whole.insert(whole.end(), tail.begin(), tail.end());
  ASSERT_TRUE(i->receive(whole, now).ok());
  EXPECT_TRUE(i->established());
  EXPECT_FALSE(i->stats().agreed_early);
}

TEST_F(SplitResponse, TamperedKeyInTheClearPartFailsAfterTheEarlyAgreement) {
  std::vector<std::byte> head = rh.early[0];
  head[detail::kHeaderSize + 7] ^= std::byte{0x01};  // first byte of e_r
  ASSERT_TRUE(i->receive(head, now).ok());           // only the agreement ran so far
  EXPECT_FALSE(i->receive(rest(), now).ok());
  EXPECT_EQ(i->state(), SessionState::kClosed);
  EXPECT_TRUE(ih.closed);
  EXPECT_FALSE(ih.established);
}

TEST_F(SplitResponse, LowOrderKeyInTheClearPartIsRejectedWithItsReason) {
  std::vector<std::byte> head = rh.early[0];
  std::memset(head.data() + detail::kHeaderSize + 7, 0, 32);  // e_r = 0: all-zero secret
  ASSERT_TRUE(i->receive(head, now).ok());
  const Status s = i->receive(rest(), now);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.to_string().find("Response"), std::string::npos) << s.to_string();
  EXPECT_EQ(i->state(), SessionState::kClosed);
}

}  // namespace
}  // namespace myelin::secure
