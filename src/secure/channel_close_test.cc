// SecureChannel's close handshake (docs/secure-channel.md section 5.5) when
// the peer's Close and its end of stream reach the channel in one read.
//
// The initiator here is a bare Session driven by the test thread over the
// other end of the stream, so the test decides exactly which bytes are on
// the stream before the channel's loop looks at it: the loop is parked in a
// task while the initiator writes Close and shuts its write half, and only
// then released.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "myelin/secure/channel.h"
#include "src/secure/test_util.h"
#include "src/secure/wire.h"

namespace myelin::secure {
namespace {

using testing::World;

constexpr auto kWait = std::chrono::seconds(10);

// Writes all of `bytes` to `st` (waiting while it is full) or fails.
Status write_all(net::Stream& st, std::span<const std::byte> bytes, MonoTime deadline) {
  while (!bytes.empty()) {
    MYELIN_ASSIGN_OR_RETURN(net::IoResult r, st.write(bytes));
    if (r.would_block) {
      MYELIN_RETURN_IF_ERROR(st.wait(kIoWritable, deadline));
      continue;
    }
    bytes = bytes.subspan(r.bytes);
  }
  return ok_status();
}

// Reads everything until end of stream (or the deadline).
Result<std::vector<std::byte>> read_to_eof(net::Stream& st, MonoTime deadline) {
  std::vector<std::byte> all;
  std::byte buf[4096];
  for (;;) {
    MYELIN_ASSIGN_OR_RETURN(net::IoResult r, st.read(buf));
    if (r.eof) return all;
    if (r.would_block) {
      MYELIN_RETURN_IF_ERROR(st.wait(kIoReadable, deadline));
      continue;
    }
    all.insert(all.end(), buf, buf + r.bytes);
  }
}

// Runs the initiator's side of the handshake over `st` on this thread.
Status handshake(Session& s, net::Stream& st, MonoTime deadline) {
  MYELIN_RETURN_IF_ERROR(s.start(mono_now()));
  std::byte buf[16384];
  while (!s.established()) {
    MYELIN_RETURN_IF_ERROR(write_all(st, s.output(), deadline));
    s.consume_output(s.output().size());
    MYELIN_ASSIGN_OR_RETURN(net::IoResult r, st.read(buf));
    if (r.eof) return closed("handshake: stream ended");
    if (r.would_block) {
      MYELIN_RETURN_IF_ERROR(st.wait(kIoReadable, deadline));
      continue;
    }
    MYELIN_RETURN_IF_ERROR(s.receive({buf, r.bytes}, mono_now()));
  }
  // Message 3 (Finish) is still in the output.
  MYELIN_RETURN_IF_ERROR(write_all(st, s.output(), deadline));
  s.consume_output(s.output().size());
  return ok_status();
}

void close_and_eof_in_one_read(bool memory_pipe) {
  World w;
  auto loop_r = EventLoop::create();
  ASSERT_TRUE(loop_r);
  std::unique_ptr<EventLoop> loop = std::move(*loop_r);
  auto pair = memory_pipe ? net::duplex_pair() : net::socket_pair();
  ASSERT_TRUE(pair);
  std::unique_ptr<net::Stream> client = std::move(pair->first);

  std::promise<void> established;
  std::promise<Status> closed_with;
  ChannelCallbacks cb;
  cb.on_established = [&](const SessionInfo&) { established.set_value(); };
  cb.on_message = [](std::span<const std::byte>) {};
  cb.on_closed = [&](const Status& s) { closed_with.set_value(s); };
  auto ch = SecureChannel::open(*loop, std::move(pair->second),
                                w.responder(Mode::kResponder, Mode::kMutual), std::move(cb));
  ASSERT_TRUE(ch) << ch.error().to_string();
  ASSERT_TRUE(loop->start().ok());

  testing::Recorder rec;
  auto s = Session::create(w.initiator(Mode::kResponder, Mode::kMutual), &rec);
  ASSERT_TRUE(s);
  const MonoTime deadline = mono_now() + kWait;
  ASSERT_TRUE(handshake(**s, *client, deadline).ok());
  ASSERT_EQ(established.get_future().wait_for(kWait), std::future_status::ready);

  // Park the loop, then put Close and end of stream on the wire together.
  std::promise<void> parked;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(loop->submit([&parked, released] {
                    parked.set_value();
                    (void)released.wait_for(kWait);
                  })
                  .ok());
  ASSERT_EQ(parked.get_future().wait_for(kWait), std::future_status::ready);
  ASSERT_TRUE((*s)->close(CloseCode::kNormal, mono_now()).ok());
  ASSERT_TRUE(write_all(*client, (*s)->output(), deadline).ok());
  (*s)->consume_output((*s)->output().size());
  ASSERT_TRUE(client->shutdown_write().ok());
  release.set_value();

  // The channel answers with its own Close before it ends the stream.
  auto answer = read_to_eof(*client, deadline);
  ASSERT_TRUE(answer) << answer.error().to_string();
  ASSERT_EQ(answer->size(), detail::kHeaderSize + detail::kClosePayload + detail::kAeadTagSize)
      << "the channel ended the stream without answering the Close";
  EXPECT_EQ((*answer)[0], std::byte{static_cast<std::uint8_t>(detail::FrameType::kClose)});
  auto fut = closed_with.get_future();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(fut.get().ok());

  (void)loop->submit([&ch] { ch->reset(); });
  (void)loop->shutdown();
}

TEST(SecureChannelClose, CloseAndEndOfStreamInOneReadIsAnsweredOverSocketpair) {
  close_and_eof_in_one_read(false);
}

TEST(SecureChannelClose, CloseAndEndOfStreamInOneReadIsAnsweredOverMemoryPipe) {
  close_and_eof_in_one_read(true);
}

}  // namespace
}  // namespace myelin::secure
