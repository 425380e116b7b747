// The handshake in each mode, mode negotiation, the record layer's rules
// (strict sequence numbers, chunking, key update, liveness, close).
#include "myelin/secure/session.h"

#include <gtest/gtest.h>

#include <numeric>

#include "src/secure/test_util.h"

namespace myelin::secure {
namespace {

using testing::Pair;
using testing::pump;
using testing::World;

std::vector<std::byte> pattern(std::size_t n, unsigned seed = 1) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::byte((i * 131 + seed) & 0xff);
  return v;
}

void expect_working(Pair& p) {
  ASSERT_TRUE(p.i->established());
  ASSERT_TRUE(p.r->established());
  const auto a = pattern(100, 3);
  const auto b = pattern(200, 5);
  ASSERT_TRUE(p.i->send(a, p.now).ok());
  ASSERT_TRUE(p.r->send(b, p.now).ok());
  pump(*p.i, *p.r, p.now);
  ASSERT_EQ(p.rh.messages.size(), 1u);
  ASSERT_EQ(p.ih.messages.size(), 1u);
  EXPECT_EQ(p.rh.messages[0], a);
  EXPECT_EQ(p.ih.messages[0], b);
}

TEST(Handshake, MutualModeBothSidesAgree) {
  World w;
  Pair p(w.initiator(Mode::kResponder, Mode::kMutual),
         w.responder(Mode::kResponder, Mode::kMutual));
  p.handshake();
  ASSERT_TRUE(p.ih.established && p.rh.established);
  EXPECT_EQ(p.ih.info.mode, Mode::kMutual);
  EXPECT_EQ(p.rh.info.mode, Mode::kMutual);
  EXPECT_EQ(p.ih.info.session_id, p.rh.info.session_id);
  EXPECT_NE(p.ih.info.session_id, (std::array<std::byte, 16>{}));
  ASSERT_TRUE(p.ih.info.peer.has_value());
  ASSERT_TRUE(p.rh.info.peer.has_value());
  EXPECT_EQ(p.ih.info.peer->identity, "server");
  EXPECT_EQ(p.rh.info.peer->identity, "client");
  expect_working(p);
}

TEST(Handshake, ResponderOnlyModeWithUnattestedInitiator) {
  World w;
  SessionConfig ic = w.initiator(Mode::kResponder, Mode::kResponder);
  ic.provider = nullptr;  // a host client: no provider at all
  Pair p(std::move(ic), w.responder(Mode::kResponder, Mode::kMutual));
  p.handshake();
  EXPECT_EQ(p.ih.info.mode, Mode::kResponder);
  EXPECT_TRUE(p.ih.info.peer.has_value());
  EXPECT_FALSE(p.rh.info.peer.has_value());
  EXPECT_EQ(p.ih.info.session_id, p.rh.info.session_id);
  expect_working(p);
}

TEST(Handshake, NoneModeWhenBothAskExplicitly) {
  World w;
  SessionConfig ic;
  ic.role = Role::kInitiator;
  ic.min_mode = ic.max_mode = Mode::kNone;
  SessionConfig rc;
  rc.role = Role::kResponder;
  rc.min_mode = rc.max_mode = Mode::kNone;
  Pair p(std::move(ic), std::move(rc));
  p.handshake();
  EXPECT_EQ(p.ih.info.mode, Mode::kNone);
  EXPECT_EQ(p.ih.info.session_id, p.rh.info.session_id);
  expect_working(p);
}

TEST(Handshake, AesGcmSuiteWhenPreferred) {
  World w;
  SessionConfig ic = w.initiator(Mode::kMutual, Mode::kMutual);
  ic.suites = {Suite::kAes256Gcm, Suite::kChaCha20Poly1305};
  Pair p(std::move(ic), w.responder(Mode::kMutual, Mode::kMutual));
  p.handshake();
  EXPECT_EQ(p.ih.info.suite, Suite::kAes256Gcm);
  expect_working(p);
}

TEST(Handshake, DefaultConfigRefusesModeNone) {
  World w;
  SessionConfig ic;  // default min_mode: responder
  ic.max_mode = Mode::kResponder;
  ic.verifier = &w.verifier;
  SessionConfig rc;
  rc.role = Role::kResponder;
  rc.min_mode = rc.max_mode = Mode::kNone;
  Pair p(std::move(ic), std::move(rc));
  p.handshake();
  EXPECT_FALSE(p.ih.established);
  EXPECT_FALSE(p.rh.established);
  EXPECT_TRUE(p.rh.closed);
  EXPECT_NE(p.rh.reason.message().find("no common mode"), std::string_view::npos)
      << p.rh.reason.to_string();
}

TEST(Handshake, UnattestedInitiatorRejectedByMutualOnlyResponder) {
  World w;
  SessionConfig ic = w.initiator(Mode::kResponder, Mode::kResponder);
  ic.provider = nullptr;
  Pair p(std::move(ic), w.responder(Mode::kMutual, Mode::kMutual));
  p.handshake();
  EXPECT_FALSE(p.ih.established);
  EXPECT_FALSE(p.rh.established);
  EXPECT_EQ(p.rh.reason.code(), ErrorCode::kAuthenticationFailed);
}

TEST(Handshake, WrongResponderMeasurementRejectedByInitiator) {
  World w;
  SessionConfig ic = w.initiator(Mode::kResponder, Mode::kMutual);
  ic.policy.rules = {{"code", {to_bytes("server-v2"), to_bytes("server-v3")}}};
  Pair p(std::move(ic), w.responder(Mode::kResponder, Mode::kMutual));
  p.handshake();
  EXPECT_FALSE(p.ih.established);
  EXPECT_FALSE(p.rh.established);
  EXPECT_TRUE(p.ih.closed && p.rh.closed);
  // Precise locally, opaque on the wire: the responder only learns "rejected".
  EXPECT_NE(p.ih.reason.message().find("measurement 'code'"), std::string_view::npos);
  EXPECT_NE(p.rh.reason.message().find("rejected"), std::string_view::npos)
      << p.rh.reason.to_string();
  EXPECT_EQ(p.rh.reason.message().find("code'"), std::string_view::npos);
}

TEST(Handshake, WrongInitiatorMeasurementRejectedByResponder) {
  World w;
  SessionConfig rc = w.responder(Mode::kMutual, Mode::kMutual);
  rc.policy.rules = {{"code", {to_bytes("client-v9")}}};
  Pair p(w.initiator(Mode::kMutual, Mode::kMutual), std::move(rc));
  p.handshake();
  EXPECT_FALSE(p.rh.established);
  EXPECT_TRUE(p.rh.closed);
  EXPECT_NE(p.rh.reason.message().find("measurement 'code'"), std::string_view::npos);
  // The initiator believed it was done after message 3, then got the opaque Close.
  EXPECT_TRUE(p.ih.closed);
  EXPECT_EQ(p.ih.reason.code(), ErrorCode::kAuthenticationFailed);
  EXPECT_NE(p.ih.reason.message().find("rejected the handshake"), std::string_view::npos);
}

TEST(Handshake, WrongMockKeyRejected) {
  World w;
  MockVerifier other(to_bytes("another-key"));
  SessionConfig ic = w.initiator(Mode::kResponder, Mode::kMutual);
  ic.verifier = &other;
  Pair p(std::move(ic), w.responder(Mode::kResponder, Mode::kMutual));
  p.handshake();
  EXPECT_FALSE(p.ih.established);
  EXPECT_NE(p.ih.reason.message().find("HMAC"), std::string_view::npos);
}

TEST(Handshake, WorksWhenBytesArriveOneAtATime) {
  World w;
  Pair p(w.initiator(Mode::kMutual, Mode::kMutual), w.responder(Mode::kMutual, Mode::kMutual));
  ASSERT_TRUE(p.r->start(p.now).ok());
  ASSERT_TRUE(p.i->start(p.now).ok());
  for (int round = 0; round < 10; ++round) {
    for (auto [from, to] : {std::pair{p.i.get(), p.r.get()}, std::pair{p.r.get(), p.i.get()}}) {
      std::vector<std::byte> bytes(from->output().begin(), from->output().end());
      from->consume_output(bytes.size());
      for (std::byte b : bytes) ASSERT_TRUE(to->receive({&b, 1}, p.now).ok());
    }
  }
  expect_working(p);
}

TEST(Handshake, ConfigNeedsProviderAndVerifier) {
  testing::Recorder h;
  SessionConfig rc;
  rc.role = Role::kResponder;  // default modes need a provider
  EXPECT_EQ(Session::create(rc, &h).error().code(), ErrorCode::kInvalidArgument);
  SessionConfig ic;  // default initiator needs a verifier
  EXPECT_EQ(Session::create(ic, &h).error().code(), ErrorCode::kInvalidArgument);
  ic.min_mode = ic.max_mode = Mode::kNone;
  ic.max_record = 100;
  EXPECT_EQ(Session::create(ic, &h).error().code(), ErrorCode::kInvalidArgument);
}

TEST(Handshake, TimesOut) {
  World w;
  Pair p(w.initiator(Mode::kMutual, Mode::kMutual), w.responder(Mode::kMutual, Mode::kMutual));
  ASSERT_TRUE(p.i->start(p.now).ok());
  EXPECT_EQ(p.i->next_deadline(), p.now + std::chrono::seconds(10));
  ASSERT_TRUE(p.i->tick(p.now + std::chrono::seconds(9)).ok());
  EXPECT_EQ(p.i->tick(p.now + std::chrono::seconds(10)).code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(p.i->state(), SessionState::kClosed);
}

// --- records ---------------------------------------------------------------------

struct Established : ::testing::Test {
  World w;
  Pair p{w.initiator(Mode::kMutual, Mode::kMutual), w.responder(Mode::kMutual, Mode::kMutual)};
  void SetUp() override {
    p.handshake();
    ASSERT_TRUE(p.i->established() && p.r->established());
  }
  // Seals `m` at the initiator and returns the wire bytes without delivering.
  std::vector<std::byte> sealed(std::span<const std::byte> m) {
    EXPECT_TRUE(p.i->send(m, p.now).ok());
    std::vector<std::byte> out(p.i->output().begin(), p.i->output().end());
    p.i->consume_output(out.size());
    return out;
  }
};

TEST_F(Established, LargeMessageIsChunkedAndReassembled) {
  const auto big = pattern(1'000'000, 9);
  ASSERT_TRUE(p.i->send(big, p.now).ok());
  EXPECT_EQ(p.i->stats().records_sent, (1'000'000 + 65535) / 65536);
  pump(*p.i, *p.r, p.now);
  ASSERT_EQ(p.rh.messages.size(), 1u);
  EXPECT_EQ(p.rh.messages[0], big);
}

// Frames handed over in place are opened where they lie, up to the budget;
// what is not taken (past the budget, a partial frame) is the caller's.
TEST_F(Established, ReceiveInPlaceTakesWholeFramesUpToTheBudget) {
  const auto a = pattern(1000, 1), b = pattern(2000, 2), c = pattern(3000, 3);
  std::vector<std::byte> wire = sealed(a);
  const std::size_t first = wire.size();
  for (const auto* m : {&b, &c}) {
    const auto more = sealed(*m);
    wire.insert(wire.end(), more.begin(), more.end());
  }
  std::vector<std::byte> lent(wire.begin(), wire.end() - 10);  // c's frame is cut short
  auto used = p.r->receive_in_place(lent, p.now, 1);
  ASSERT_TRUE(used) << used.error().to_string();
  EXPECT_EQ(*used, first);  // the budget stops after the first frame
  used = p.r->receive_in_place(std::span(lent).subspan(first), p.now);
  ASSERT_TRUE(used);
  EXPECT_EQ(*used, wire.size() - first - (3000 + 32));  // b's frame, not c's partial one
  ASSERT_EQ(p.rh.messages.size(), 2u);
  EXPECT_EQ(p.rh.messages[1], b);
  // The partial frame goes to receive(); its rest completes it there.
  ASSERT_TRUE(p.r->receive(std::span(lent).subspan(first + *used), p.now).ok());
  ASSERT_TRUE(p.r->receive(std::span(wire).last(10), p.now).ok());
  ASSERT_EQ(p.rh.messages.size(), 3u);
  EXPECT_EQ(p.rh.messages[2], c);
}

// Offered only the start of a frame, the session copies it in and takes it
// all; the rest, offered in place, completes it there.
TEST_F(Established, ReceiveInPlaceCopiesInAFrameThatHasOnlyBegun) {
  const auto m = pattern(5000, 6);
  auto wire = sealed(m);
  auto used = p.r->receive_in_place(std::span(wire).first(100), p.now);
  ASSERT_TRUE(used);
  EXPECT_EQ(*used, 100u);
  EXPECT_TRUE(p.rh.messages.empty());
  used = p.r->receive_in_place(std::span(wire).subspan(100), p.now);
  ASSERT_TRUE(used);
  EXPECT_EQ(*used, wire.size() - 100);
  ASSERT_EQ(p.rh.messages.size(), 1u);
  EXPECT_EQ(p.rh.messages[0], m);
}

TEST_F(Established, TamperedFrameInPlaceClosesTheSession) {
  auto wire = sealed(pattern(500, 4));
  wire[30] ^= std::byte{1};
  auto used = p.r->receive_in_place(wire, p.now);
  ASSERT_FALSE(used);
  EXPECT_EQ(used.error().code(), ErrorCode::kAuthenticationFailed);
  EXPECT_EQ(p.r->state(), SessionState::kClosed);
  EXPECT_TRUE(p.rh.messages.empty());
}

// Records go to the sink only while output() is empty and only when it
// offers room for the whole record; bytes stay in order either way.
TEST_F(Established, RecordSinkTakesWholeRecordsInOrder) {
  struct Sink : RecordSink {
    std::vector<std::byte> room = std::vector<std::byte>(8192);
    std::vector<std::byte> got;
    std::size_t offer = 8192;
    std::span<std::byte> reserve(std::size_t) override { return {room.data(), offer}; }
    void commit(std::size_t n) override { got.insert(got.end(), room.begin(), room.begin() + n); }
  } sink;
  p.i->set_record_sink(&sink);
  const auto a = pattern(1000, 1), b = pattern(5000, 2), c = pattern(10, 3);
  ASSERT_TRUE(p.i->send(a, p.now).ok());
  EXPECT_EQ(sink.got.size(), 1000u + 32);
  EXPECT_TRUE(p.i->output().empty());
  sink.offer = 100;  // too small for b's record: it queues in output()
  ASSERT_TRUE(p.i->send(b, p.now).ok());
  sink.offer = 8192;  // c must follow b, so it queues too
  ASSERT_TRUE(p.i->send(c, p.now).ok());
  EXPECT_EQ(sink.got.size(), 1000u + 32);
  EXPECT_EQ(p.i->output().size(), 5000u + 32 + 10 + 32);
  std::vector<std::byte> wire = sink.got;
  wire.insert(wire.end(), p.i->output().begin(), p.i->output().end());
  ASSERT_TRUE(p.r->receive(wire, p.now).ok());
  ASSERT_EQ(p.rh.messages.size(), 3u);
  EXPECT_EQ(p.rh.messages[0], a);
  EXPECT_EQ(p.rh.messages[1], b);
  EXPECT_EQ(p.rh.messages[2], c);
}

TEST_F(Established, EmptyMessageAndPartsConcatenate) {
  ASSERT_TRUE(p.i->send({}, p.now).ok());
  const auto a = pattern(70'000, 1), b = pattern(10, 2), c = pattern(65'536, 3);
  const std::span<const std::byte> parts[] = {a, {}, b, c};
  ASSERT_TRUE(p.i->send_parts(parts, p.now).ok());
  pump(*p.i, *p.r, p.now);
  ASSERT_EQ(p.rh.messages.size(), 2u);
  EXPECT_TRUE(p.rh.messages[0].empty());
  std::vector<std::byte> joined = a;
  joined.insert(joined.end(), b.begin(), b.end());
  joined.insert(joined.end(), c.begin(), c.end());
  EXPECT_EQ(p.rh.messages[1], joined);
}

TEST_F(Established, ReplayClosesTheChannel) {
  const auto rec = sealed(pattern(50));
  ASSERT_TRUE(p.r->receive(rec, p.now).ok());
  const Status s = p.r->receive(rec, p.now);
  EXPECT_EQ(s.code(), ErrorCode::kProtocolError);
  EXPECT_NE(s.message().find("record seq 0, expected 1"), std::string_view::npos) << s.to_string();
  EXPECT_EQ(p.r->state(), SessionState::kClosed);
  EXPECT_EQ(p.rh.messages.size(), 1u);
  // The responder told the initiator (opaquely) and the initiator closes too.
  pump(*p.r, *p.i, p.now);
  EXPECT_TRUE(p.ih.closed);
  EXPECT_EQ(p.ih.reason.code(), ErrorCode::kClosed);
  EXPECT_NE(p.ih.reason.message().find("protocol_error"), std::string_view::npos);
}

TEST_F(Established, ReorderAndDropClose) {
  const auto r0 = sealed(pattern(10));
  const auto r1 = sealed(pattern(11));
  EXPECT_EQ(p.r->receive(r1, p.now).code(), ErrorCode::kProtocolError);  // reorder / drop of r0
  EXPECT_EQ(p.r->state(), SessionState::kClosed);
  EXPECT_EQ(p.r->receive(r0, p.now).code(), ErrorCode::kClosed);  // closed for good
  EXPECT_TRUE(p.rh.messages.empty());
}

TEST_F(Established, TruncatedStreamCloses) {
  const auto rec = sealed(pattern(100));
  ASSERT_TRUE(p.r->receive(std::span(rec).first(rec.size() - 1), p.now).ok());
  EXPECT_TRUE(p.rh.messages.empty());
  EXPECT_EQ(p.r->on_eof(p.now).code(), ErrorCode::kClosed);
  EXPECT_TRUE(p.rh.messages.empty());
  EXPECT_EQ(p.r->state(), SessionState::kClosed);
}

TEST_F(Established, OversizeRecordRejectedFromItsHeader) {
  auto rec = sealed(pattern(100));
  // Claim a record larger than max_record + 16: rejected before it is buffered.
  rec[4] = std::byte{0x01};
  const Status s = p.r->receive(std::span(rec).first(16), p.now);
  EXPECT_EQ(s.code(), ErrorCode::kProtocolError);
  EXPECT_NE(s.message().find("length"), std::string_view::npos);
}

TEST_F(Established, MessageLargerThanMaxMessageCloses) {
  World w2;
  SessionConfig rc = w2.responder(Mode::kMutual, Mode::kMutual);
  rc.max_message = 100'000;
  Pair q(w2.initiator(Mode::kMutual, Mode::kMutual), std::move(rc));
  q.handshake();
  ASSERT_TRUE(q.i->send(pattern(150'000), q.now).ok());
  pump(*q.i, *q.r, q.now);
  EXPECT_TRUE(q.rh.messages.empty());
  EXPECT_EQ(q.rh.reason.code(), ErrorCode::kResourceExhausted);
  EXPECT_TRUE(q.ih.closed);
  EXPECT_NE(q.ih.reason.message().find("message_too_large"), std::string_view::npos);
}

TEST(KeyUpdate, AfterConfiguredRecordsAndBytes) {
  World w;
  SessionConfig ic = w.initiator(Mode::kMutual, Mode::kMutual);
  ic.rekey_records = 3;
  SessionConfig rc = w.responder(Mode::kMutual, Mode::kMutual);
  rc.rekey_bytes = 5000;
  Pair p(std::move(ic), std::move(rc));
  p.handshake();
  for (int n = 0; n < 10; ++n) {
    ASSERT_TRUE(p.i->send(pattern(100, n), p.now).ok());
    ASSERT_TRUE(p.r->send(pattern(1000, n), p.now).ok());
    pump(*p.i, *p.r, p.now);
  }
  EXPECT_EQ(p.i->stats().key_updates_sent, 3u);  // after records 3, 6, 9
  EXPECT_EQ(p.r->stats().key_updates_received, 3u);
  EXPECT_EQ(p.r->stats().key_updates_sent, 2u);  // after 5000 and 10000 bytes
  EXPECT_EQ(p.i->stats().key_updates_received, 2u);
  ASSERT_EQ(p.rh.messages.size(), 10u);
  EXPECT_EQ(p.rh.messages[9], pattern(100, 9));
  EXPECT_EQ(p.ih.messages[9], pattern(1000, 9));
}

TEST_F(Established, HeartbeatAndIdleTimeout) {
  const MonoTime t0 = p.now;
  EXPECT_EQ(p.i->next_deadline(), t0 + std::chrono::seconds(15));
  ASSERT_TRUE(p.i->tick(t0 + std::chrono::seconds(15)).ok());  // sends a Ping
  EXPECT_EQ(p.i->stats().records_sent, 1u);
  pump(*p.i, *p.r, t0 + std::chrono::seconds(15));  // the responder answers with Pong
  EXPECT_EQ(p.r->stats().records_sent, 1u);
  EXPECT_EQ(p.i->stats().records_received, 1u);
  EXPECT_TRUE(p.rh.messages.empty());
  // The responder hears nothing more for 60 s after the Ping: idle timeout.
  const Status s = p.r->tick(t0 + std::chrono::seconds(75));
  EXPECT_EQ(s.code(), ErrorCode::kDeadlineExceeded);
  pump(*p.r, *p.i, t0 + std::chrono::seconds(75));
  EXPECT_NE(p.ih.reason.message().find("timeout"), std::string_view::npos);
}

TEST_F(Established, CleanCloseInBothDirections) {
  ASSERT_TRUE(p.i->send(pattern(10), p.now).ok());
  ASSERT_TRUE(p.i->close(CloseCode::kNormal, p.now).ok());
  EXPECT_EQ(p.i->send(pattern(1), p.now).code(), ErrorCode::kClosed);
  pump(*p.i, *p.r, p.now);
  EXPECT_EQ(p.rh.messages.size(), 1u);  // data sent before Close still arrives
  EXPECT_TRUE(p.rh.closed && p.ih.closed);
  EXPECT_TRUE(p.rh.reason.ok());
  EXPECT_TRUE(p.ih.reason.ok());
}

TEST(Names, ToString) {
  EXPECT_EQ(to_string(SessionState::kAwaitFinish), "await_finish");
  EXPECT_EQ(to_string(CloseCode::kBadRecord), "bad_record");
  EXPECT_EQ(to_string(Mode::kMutual), "mutual");
  EXPECT_EQ(to_string(Suite::kAes256Gcm), "aes-256-gcm");
}

}  // namespace
}  // namespace myelin::secure

namespace myelin::secure {
namespace {

// docs/secure-channel.md section 9: the Hello example, byte for byte.
TEST(WireFormat, HelloMatchesTheDocumentedExample) {
  testing::World w;
  testing::Recorder h;
  auto s = Session::create(w.initiator(Mode::kResponder, Mode::kMutual), &h);
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->start(mono_now()).ok());
  const auto out = (*s)->output();
  ASSERT_EQ(out.size(), 93u);
  const auto want =
      testing::hex("01000000 0000004d 0000000000000000 0001 02 0001 0002 01 02 00010000");
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out[i], want[i]) << "byte " << i;
}

}  // namespace
}  // namespace myelin::secure
