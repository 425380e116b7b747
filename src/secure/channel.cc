// SecureChannel: a Session driven by an EventLoop and a net::Stream.
#include "myelin/secure/channel.h"

#include <utility>

namespace myelin::secure {
namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerEvent = 16;  // then yield to other fds and tasks
// Sealed output written mid-message once this much waits (one default record).
constexpr std::size_t kDrainBytes = 64 * 1024;
// How long a closed channel waits for the peer's end of stream (or for room
// to write its last records) before it closes the stream anyway.
constexpr Nanos kLinger = std::chrono::seconds(1);
}  // namespace

Result<std::unique_ptr<SecureChannel>> SecureChannel::open(EventLoop& loop,
                                                           std::unique_ptr<net::Stream> stream,
                                                           SessionConfig config,
                                                           ChannelCallbacks callbacks,
                                                           Nanos tick_period) {
  if (!stream) return invalid_argument("SecureChannel::open: no stream");
  std::unique_ptr<SecureChannel> ch(
      new SecureChannel(loop, std::move(stream), std::move(callbacks)));
  MYELIN_ASSIGN_OR_RETURN(ch->session_, Session::create(std::move(config), ch.get()));
  ch->session_->set_record_sink(ch.get());
  SecureChannel* self = ch.get();
  MYELIN_RETURN_IF_ERROR(
      ch->stream_->watch(loop, kIoReadable, [self](std::uint32_t ev) { self->on_io(ev); }));
  MYELIN_ASSIGN_OR_RETURN(ch->tick_timer_, loop.schedule_every(tick_period, [self] {
    if (self->session_closed_) return;
    (void)self->session_->tick(mono_now());
    self->flush();
  }));
  MYELIN_RETURN_IF_ERROR(ch->session_->start(mono_now()));
  ch->flush();
  return ch;
}

SecureChannel::~SecureChannel() {
  if (tick_timer_ != 0) (void)loop_.cancel(tick_timer_);
  if (linger_timer_ != 0) (void)loop_.cancel(linger_timer_);
  if (stream_) stream_->close();
}

Status SecureChannel::send(std::span<const std::byte> message) {
  const std::span<const std::byte> parts[1] = {message};
  return send_parts(parts);
}

Status SecureChannel::send_parts(std::span<const std::span<const std::byte>> parts) {
  // A long message leaves record by record while the rest is sealed, as far
  // as the stream takes it without blocking, so the peer opens the first
  // records meanwhile; what the stream does not take waits for flush().
  const std::function<Status()> drain = [this] { return write_some(); };
  MYELIN_RETURN_IF_ERROR(session_->send_parts(parts, mono_now(), drain, kDrainBytes));
  flush();
  return ok_status();
}

Status SecureChannel::close() {
  MYELIN_RETURN_IF_ERROR(session_->close(CloseCode::kNormal, mono_now()));
  flush();
  return ok_status();
}

void SecureChannel::on_established(const SessionInfo& info) {
  if (cb_.on_established) cb_.on_established(info);
}
void SecureChannel::on_message(std::span<const std::byte> message) {
  if (cb_.on_message) cb_.on_message(message);
}
void SecureChannel::on_closed(const Status& reason) {
  session_closed_ = true;
  if (!closed_reported_) {
    closed_reported_ = true;
    if (cb_.on_closed) cb_.on_closed(reason);
  }
}

Status SecureChannel::write_some() {
  // One non-blocking attempt; whatever does not fit leaves with the rest of
  // the output, and a write error surfaces in the flush() that follows.
  if (!stream_) return ok_status();
  auto out = session_->output();
  auto r = stream_->write(out);
  if (r && !r->would_block) session_->consume_output(r->bytes);
  return ok_status();
}

void SecureChannel::on_io(std::uint32_t events) {
  if (!stream_) return;
  if ((events & (kIoReadable | kIoError | kIoHangup)) != 0) on_readable();
  if (stream_) flush();
}

void SecureChannel::on_readable() {
  for (int i = 0; i < kReadsPerEvent && stream_; ++i) {
    if (session_closed_) {
      // Draining after the session closed: wait for the peer's end of
      // stream. The session may have just queued the answer to the peer's
      // Close (section 5.5) in this same read, so end of stream only marks
      // the peer done; flush() writes what is left, then finishes.
      std::byte scratch[4096];
      auto r = stream_->read(scratch);
      if (!r) return finish_stream();
      if (r->eof) {
        peer_eof_ = true;
        return;
      }
      if (r->would_block) return;
      continue;
    }
    // A stream that lends its memory: records are opened where they arrived.
    if (const std::span<std::byte> lent = stream_->read_window(); !lent.empty()) {
      Result<std::size_t> used = session_->receive_in_place(lent, mono_now());
      // A failed write inside the call may have closed the stream.
      if (stream_) stream_->consume_read(used ? *used : lent.size());
      continue;
    }
    auto buf = session_->input_buffer(kReadChunk);
    auto r = stream_->read(buf);
    if (!r) {
      (void)session_->on_eof(mono_now());
      return finish_stream();
    }
    if (r->eof) {
      peer_eof_ = true;
      (void)session_->on_eof(mono_now());
      return;  // flush() then finishes the stream
    }
    if (r->would_block) return;
    (void)session_->commit_input(r->bytes, mono_now());
  }
}

void SecureChannel::flush() {
  while (stream_) {
    auto out = session_->output();
    if (out.empty()) break;
    auto r = stream_->write(out);
    if (!r) {
      session_->consume_output(out.size());
      (void)session_->on_eof(mono_now());
      return finish_stream();
    }
    if (r->would_block) {
      // Once the peer's end of stream is in, readable stays set: watch only
      // for room, and bound the wait for a peer that no longer reads.
      (void)stream_->set_interest(peer_eof_ ? kIoWritable : kIoReadable | kIoWritable);
      if (session_closed_) start_linger();
      return;
    }
    session_->consume_output(r->bytes);
  }
  if (!stream_) return;
  if (session_closed_ && !write_shut_) {
    // Everything, the final Close included, is written: half-close, then
    // linger for the peer's end of stream.
    write_shut_ = true;
    (void)stream_->shutdown_write();
  }
  if (session_closed_ && peer_eof_) return finish_stream();
  (void)stream_->set_interest(kIoReadable);
  if (session_closed_) start_linger();
}

void SecureChannel::start_linger() {
  if (linger_timer_ != 0) return;
  auto t = loop_.schedule(kLinger, [this] {
    linger_timer_ = 0;
    finish_stream();
  });
  if (t) linger_timer_ = *t;
}

void SecureChannel::finish_stream() {
  if (!stream_) return;
  stream_->close();
  stream_.reset();
  if (tick_timer_ != 0) (void)loop_.cancel(tick_timer_);
  tick_timer_ = 0;
  if (linger_timer_ != 0) (void)loop_.cancel(linger_timer_);
  linger_timer_ = 0;
  if (!session_closed_) (void)session_->on_eof(mono_now());
  if (cb_.on_finished) cb_.on_finished();
}

}  // namespace myelin::secure
