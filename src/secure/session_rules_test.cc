// Behaviour that docs/secure-channel.md states in answer to questions an
// independent implementer asked (issue 23): whose max_record limits a
// sender, how KeyUpdate is counted, which Close code a failure sends, end of
// stream after our own Close, and the size limit of message 3.
#include <gtest/gtest.h>

#include "myelin/secure/session.h"
#include "src/secure/test_util.h"
#include "src/secure/wire.h"

namespace myelin::secure {
namespace {

using testing::Pair;
using testing::pump;
using testing::World;

std::vector<std::byte> bytes_of(std::size_t n) { return std::vector<std::byte>(n, std::byte{7}); }

// Section 5.3: a sender chunks to the max_record its peer announced, not to
// its own.
TEST(SessionRules, SenderChunksToThePeersMaxRecord) {
  World w;
  SessionConfig ic = w.initiator(Mode::kMutual, Mode::kMutual);
  ic.max_record = 1024;  // the initiator accepts small records only
  Pair p(std::move(ic), w.responder(Mode::kMutual, Mode::kMutual));
  p.handshake();
  ASSERT_TRUE(p.r->established());
  ASSERT_TRUE(p.r->send(bytes_of(3000), p.now).ok());  // 1024 + 1024 + 952
  ASSERT_TRUE(p.i->send(bytes_of(3000), p.now).ok());  // one record: the responder takes 65,536
  pump(*p.i, *p.r, p.now);
  EXPECT_EQ(p.r->stats().records_sent, 3u);
  EXPECT_EQ(p.i->stats().records_sent, 1u);
  ASSERT_EQ(p.ih.messages.size(), 1u);
  EXPECT_EQ(p.ih.messages[0].size(), 3000u);
}

// Section 5.4: with rekey_records = N, each key seals N records and then the
// KeyUpdate; the KeyUpdate does not count towards the next N.
TEST(SessionRules, KeyUpdateIsNotCountedAmongRekeyRecords) {
  World w;
  SessionConfig ic = w.initiator(Mode::kMutual, Mode::kMutual);
  ic.rekey_records = 3;
  Pair p(std::move(ic), w.responder(Mode::kMutual, Mode::kMutual));
  p.handshake();
  for (int n = 0; n < 7; ++n) ASSERT_TRUE(p.i->send(bytes_of(10), p.now).ok());
  pump(*p.i, *p.r, p.now);
  EXPECT_EQ(p.i->stats().key_updates_sent, 2u);  // after data records 3 and 6
  EXPECT_EQ(p.i->stats().records_sent, 9u);      // 7 Data + 2 KeyUpdate
  EXPECT_EQ(p.r->stats().key_updates_received, 2u);
  EXPECT_EQ(p.rh.messages.size(), 7u);
}

// Section 5.5: once a side has sent its Close, end of stream is not an
// error, whether or not the peer's Close came first.
TEST(SessionRules, EndOfStreamAfterOurOwnCloseIsNotAnError) {
  World w;
  Pair p(w.initiator(Mode::kMutual, Mode::kMutual), w.responder(Mode::kMutual, Mode::kMutual));
  p.handshake();
  ASSERT_TRUE(p.i->close(CloseCode::kNormal, p.now).ok());
  EXPECT_TRUE(p.i->on_eof(p.now).ok());
  EXPECT_TRUE(p.ih.closed);
  EXPECT_TRUE(p.ih.reason.ok()) << p.ih.reason.to_string();
  EXPECT_TRUE(p.i->close_reason().ok());
}

// Section 5.5: the Close code each record-layer failure sends, as the peer
// reports it.
TEST(SessionRules, EachFailureSendsItsCloseCode) {
  struct Case {
    const char* what;
    void (*spoil)(std::vector<std::byte>&);
    const char* code;
  };
  const Case cases[] = {
      {"tag", [](std::vector<std::byte>& r) { r.back() ^= std::byte{1}; }, "bad_record"},
      {"seq", [](std::vector<std::byte>& r) { r[15] = std::byte{9}; }, "protocol_error"},
      {"reserved", [](std::vector<std::byte>& r) { r[2] = std::byte{1}; }, "protocol_error"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    World w;
    Pair p(w.initiator(Mode::kMutual, Mode::kMutual), w.responder(Mode::kMutual, Mode::kMutual));
    p.handshake();
    ASSERT_TRUE(p.i->send(bytes_of(40), p.now).ok());
    std::vector<std::byte> rec(p.i->output().begin(), p.i->output().end());
    p.i->consume_output(rec.size());
    c.spoil(rec);
    EXPECT_FALSE(p.r->receive(rec, p.now).ok());
    pump(*p.r, *p.i, p.now);
    ASSERT_TRUE(p.ih.closed);
    EXPECT_NE(p.ih.reason.message().find(c.code), std::string_view::npos)
        << p.ih.reason.to_string();
  }
}

// Section 4.3: message 3 is a handshake frame, so its limit is the
// handshake limit of 66,560 body bytes, not the responder's max_record.
TEST(SessionRules, FinishIsBoundedByTheHandshakeLimitNotMaxRecord) {
  for (const std::uint32_t length : {66'560u, 66'561u}) {
    World w;
    SessionConfig rc = w.responder(Mode::kMutual, Mode::kMutual);
    rc.max_record = 1024;
    Pair p(w.initiator(Mode::kMutual, Mode::kMutual), std::move(rc));
    ASSERT_TRUE(p.r->start(p.now).ok());
    ASSERT_TRUE(p.i->start(p.now).ok());
    std::vector<std::byte> hello(p.i->output().begin(), p.i->output().end());
    ASSERT_TRUE(p.r->receive(hello, p.now).ok());
    ASSERT_EQ(p.r->state(), SessionState::kAwaitFinish);
    p.r->consume_output(p.r->output().size());  // message 2, not delivered
    std::byte header[detail::kHeaderSize];
    detail::encode_header({detail::FrameType::kFinish, 0, length, 0}, header);
    const Status s = p.r->receive(header, p.now);
    if (length == 66'560u) {
      EXPECT_TRUE(s.ok()) << s.to_string();  // waits for the body
      EXPECT_EQ(p.r->state(), SessionState::kAwaitFinish);
    } else {
      EXPECT_EQ(s.code(), ErrorCode::kProtocolError);
      EXPECT_NE(s.message().find("66560"), std::string_view::npos) << s.to_string();
      EXPECT_TRUE(p.r->output().empty()) << "no Close: the responder has no key for one yet";
    }
  }
}

}  // namespace
}  // namespace myelin::secure
