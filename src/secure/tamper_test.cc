// Flip each byte of each handshake message and of a record: the handshake
// must fail or the channel close with a clear status; never a crash, never a
// message accepted.
#include <gtest/gtest.h>

#include "src/secure/test_util.h"

namespace myelin::secure {
namespace {

using testing::Pair;
using testing::World;

std::vector<std::byte> take(Session& s) {
  std::vector<std::byte> out(s.output().begin(), s.output().end());
  s.consume_output(out.size());
  return out;
}

// Drives a handshake, flipping byte `index` of handshake message `which`
// (1, 2 or 3) on its way, then lets both sides run to their end the way a
// transport would: remaining bytes are delivered, a side whose peer closed
// sees end-of-stream, and time runs past every timeout.
void run_tampered(int which, std::size_t index, std::size_t* size_out) {
  World w;
  Pair p(w.initiator(Mode::kMutual, Mode::kMutual), w.responder(Mode::kMutual, Mode::kMutual));
  ASSERT_TRUE(p.r->start(p.now).ok());
  ASSERT_TRUE(p.i->start(p.now).ok());
  Session* from = p.i.get();
  Session* to = p.r.get();
  for (int msg = 1; msg <= 3; ++msg) {
    auto bytes = take(*from);
    if (bytes.empty()) break;
    if (msg == which) {
      *size_out = bytes.size();
      if (index >= bytes.size()) return;
      bytes[index] ^= std::byte{0x01};
    }
    if (to->state() != SessionState::kClosed) (void)to->receive(bytes, p.now);
    std::swap(from, to);
  }
  // Let any Close travel, then end-of-stream for whoever is still open.
  testing::pump(*p.i, *p.r, p.now);
  for (int round = 0; round < 2; ++round) {
    if (p.r->state() == SessionState::kClosed && p.i->state() != SessionState::kClosed) {
      (void)p.i->on_eof(p.now);
    }
    if (p.i->state() == SessionState::kClosed && p.r->state() != SessionState::kClosed) {
      (void)p.r->on_eof(p.now);
    }
  }
  const MonoTime later = p.now + std::chrono::seconds(120);
  (void)p.i->tick(later);
  (void)p.r->tick(later);
  // If either side still believes it is established, it must not be able to
  // get a message accepted.
  if (p.i->established()) (void)p.i->send(to_bytes("x"), later);
  if (p.r->established()) (void)p.r->send(to_bytes("y"), later);
  testing::pump(*p.i, *p.r, later);

  SCOPED_TRACE("message " + std::to_string(which) + " byte " + std::to_string(index));
  EXPECT_TRUE(p.rh.messages.empty());
  EXPECT_TRUE(p.ih.messages.empty());
  EXPECT_EQ(p.i->state(), SessionState::kClosed);
  EXPECT_EQ(p.r->state(), SessionState::kClosed);
  // At least one side saw the failure itself, with a precise local reason.
  const bool i_err = !p.i->close_reason().ok();
  const bool r_err = !p.r->close_reason().ok();
  EXPECT_TRUE(i_err || r_err);
  EXPECT_FALSE(p.rh.established && p.ih.established && !i_err && !r_err);
}

TEST(Tamper, EveryByteOfEveryHandshakeMessage) {
  for (int which = 1; which <= 3; ++which) {
    std::size_t size = 1;
    for (std::size_t i = 0; i < size; ++i) {
      run_tampered(which, i, &size);
      if (::testing::Test::HasFailure()) return;
    }
    EXPECT_GT(size, 16u) << "message " << which << " was never sent";
  }
}

TEST(Tamper, EveryByteOfARecord) {
  World w;
  std::size_t size = 1;
  for (std::size_t index = 0; index < size; ++index) {
    Pair p(w.initiator(Mode::kMutual, Mode::kMutual), w.responder(Mode::kMutual, Mode::kMutual));
    p.handshake();
    ASSERT_TRUE(p.i->send(to_bytes("a tensor, say"), p.now).ok());
    auto rec = take(*p.i);
    size = rec.size();
    rec[index] ^= std::byte{0x80};
    const Status s = p.r->receive(rec, p.now);
    if (p.r->state() != SessionState::kClosed) {
      // Only a grown length can leave the responder waiting; the stream then ends.
      EXPECT_TRUE(s.ok());
      EXPECT_LT(index, 8u);
      (void)p.r->on_eof(p.now);
    } else {
      EXPECT_FALSE(s.ok());
    }
    SCOPED_TRACE("record byte " + std::to_string(index));
    EXPECT_TRUE(p.rh.messages.empty());
    EXPECT_EQ(p.r->state(), SessionState::kClosed);
    EXPECT_FALSE(p.r->close_reason().ok());
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(Tamper, BadRecordTagIsFinalAndReported) {
  World w;
  Pair p(w.initiator(Mode::kMutual, Mode::kMutual), w.responder(Mode::kMutual, Mode::kMutual));
  p.handshake();
  ASSERT_TRUE(p.i->send(to_bytes("one"), p.now).ok());
  auto rec = take(*p.i);
  rec.back() ^= std::byte{1};
  const Status s = p.r->receive(rec, p.now);
  EXPECT_EQ(s.code(), ErrorCode::kAuthenticationFailed);
  EXPECT_NE(s.message().find("record seq 0"), std::string_view::npos) << s.to_string();
  // The initiator receives Close(bad_record) and nothing more specific.
  testing::pump(*p.r, *p.i, p.now);
  EXPECT_NE(p.ih.reason.message().find("bad_record"), std::string_view::npos);
  // Even the correct record is refused now: the channel is closed for good.
  rec.back() ^= std::byte{1};
  EXPECT_EQ(p.r->receive(rec, p.now).code(), ErrorCode::kClosed);
  EXPECT_TRUE(p.rh.messages.empty());
}

}  // namespace
}  // namespace myelin::secure
