// BlockingChannel: a Session driven by the calling thread, which parks in
// Stream::wait while the peer is slow.
#include <thread>

#include "myelin/secure/channel.h"

namespace myelin::secure {

Result<std::unique_ptr<BlockingChannel>> BlockingChannel::handshake(
    std::unique_ptr<net::Stream> stream, SessionConfig config, Nanos timeout) {
  if (!stream) return invalid_argument("BlockingChannel: no stream");
  config.handshake_timeout = std::min(config.handshake_timeout, timeout);
  std::unique_ptr<BlockingChannel> ch(new BlockingChannel(std::move(stream)));
  MYELIN_ASSIGN_OR_RETURN(ch->session_, Session::create(std::move(config), ch.get()));
  ch->session_->set_record_sink(ch.get());
  const MonoTime deadline = mono_now() + timeout;
  ch->handshake_deadline_ = deadline;
  ch->handshaking_ = true;
  MYELIN_RETURN_IF_ERROR(ch->session_->start(mono_now()));
  while (!ch->session_->established()) {
    MYELIN_RETURN_IF_ERROR(ch->write_out(deadline));
    if (ch->session_->state() == SessionState::kClosed) return ch->session_->close_reason();
    MYELIN_RETURN_IF_ERROR(ch->read_some(deadline));
    if (ch->session_->state() == SessionState::kClosed) {
      (void)ch->write_out(deadline);  // deliver our opaque Close, if any
      return ch->session_->close_reason();
    }
  }
  MYELIN_RETURN_IF_ERROR(ch->write_out(deadline));
  ch->handshaking_ = false;
  return ch;
}

BlockingChannel::~BlockingChannel() = default;

void BlockingChannel::on_message(std::span<const std::byte> message) {
  ++delivered_;
  if (sink_ != nullptr) {
    (*sink_)(message);
  } else {
    copies_.emplace_back(message.begin(), message.end());
  }
}

Status BlockingChannel::write_out(MonoTime deadline) {
  for (;;) {
    auto out = session_->output();
    if (out.empty()) return ok_status();
    MYELIN_ASSIGN_OR_RETURN(net::IoResult r, stream_->write(out));
    if (r.would_block) {
      MYELIN_RETURN_IF_ERROR(stream_->wait(kIoWritable, deadline));
      continue;
    }
    session_->consume_output(r.bytes);
  }
}

Status BlockingChannel::read_some(MonoTime deadline) {
  // A read that would block spins for a while before the thread parks in
  // Stream::wait() (kHandshakeSpin during the handshake, kStreamSpin while
  // bytes are flowing): a parked thread takes a scheduler wake-up (tens of
  // µs on a VM) to see the peer's next bytes, and its peer pays for waking
  // it. During the handshake the read itself is retried, which takes each
  // small message in the same system call that sees it. While a stream
  // flows, the spin watches readiness instead: retried reads would take the
  // socket's lock as fast as the peer's bytes arrive, and on loopback TCP
  // that contention cost both sides more kernel time than the wake-ups it
  // saved. The yield between tries hands the core to the peer if it needs
  // it.
  const Nanos spin = handshaking_ ? kHandshakeSpin : flowing_ ? kStreamSpin : Nanos::zero();
  const MonoTime spin_end =
      spin > Nanos::zero() ? std::min(deadline, mono_now() + spin) : MonoTime::min();
  for (;;) {
    // A stream that lends its memory: records are opened where they arrived.
    if (const std::span<std::byte> lent = stream_->read_window(); !lent.empty()) {
      flowing_ = true;
      Result<std::size_t> used = session_->receive_in_place(lent, mono_now());
      stream_->consume_read(used ? *used : lent.size());
      (void)write_out(deadline);
      return used.error();
    }
    auto buf = session_->input_buffer(handshaking_ ? kHandshakeReadBytes : kReadBytes);
    MYELIN_ASSIGN_OR_RETURN(net::IoResult r, stream_->read(buf));
    if (r.eof) {
      MYELIN_RETURN_IF_ERROR(session_->on_eof(mono_now()));
      return closed("secure channel: peer closed the stream");
    }
    if (r.would_block) {
      if (handshaking_ && mono_now() < spin_end) {
        std::this_thread::yield();
      } else if (mono_now() < spin_end) {
        while (!stream_->ready_now(kIoReadable) && mono_now() < spin_end) {
          std::this_thread::yield();
        }
      } else {
        flowing_ = false;
        MYELIN_RETURN_IF_ERROR(stream_->wait(kIoReadable, deadline));
      }
      continue;
    }
    flowing_ = true;
    Status s = session_->commit_input(r.bytes, mono_now());
    // A Pong, a Close in answer to a Close or a failure notice may be due.
    (void)write_out(deadline);
    return s;
  }
}

Status BlockingChannel::send(std::span<const std::byte> message, Nanos timeout) {
  const std::span<const std::byte> parts[1] = {message};
  return send_parts(parts, timeout);
}

Status BlockingChannel::send_parts(std::span<const std::span<const std::byte>> parts,
                                   Nanos timeout) {
  const MonoTime deadline = mono_now() + timeout;
  MYELIN_RETURN_IF_ERROR(seal(parts, deadline));
  return write_out(deadline);
}

Status BlockingChannel::queue(std::span<const std::byte> message, Nanos timeout) {
  const std::span<const std::byte> parts[1] = {message};
  const MonoTime deadline = mono_now() + timeout;
  coalescing_ = message.size() < kCoalesceBytes;
  Status sealed = seal(parts, deadline);
  coalescing_ = false;
  MYELIN_RETURN_IF_ERROR(sealed);
  if (session_->output().size() >= kCoalesceBytes) return write_out(deadline);
  return ok_status();
}

Status BlockingChannel::seal(std::span<const std::span<const std::byte>> parts, MonoTime deadline) {
  // A long message is written record by record as it is sealed, so the
  // peer opens one record while the next is sealed here.
  const std::function<Status()> drain = [this, deadline] { return write_out(deadline); };
  seal_deadline_ = deadline;
  Status s = session_->send_parts(parts, mono_now(), drain, kDrainBytes);
  seal_deadline_ = MonoTime::min();
  return s;
}

std::span<std::byte> BlockingChannel::reserve(std::size_t n) {
  if (coalescing_) return {};
  std::span<std::byte> room = stream_->write_window();
  // Full of records the peer has not opened yet: waiting for it costs less
  // than queueing a copy, which would also reach the peer in pieces.
  if (room.size() < n && stream_->wait_window(n, seal_deadline_)) room = stream_->write_window();
  return room;
}

Status BlockingChannel::flush(Nanos timeout) { return write_out(mono_now() + timeout); }

Result<std::size_t> BlockingChannel::receive(
    const std::function<void(std::span<const std::byte>)>& fn, Nanos timeout) {
  const MonoTime deadline = mono_now() + timeout;
  const Status written = write_out(deadline);  // queued output: the peer may be waiting for it
  std::size_t handed = 0;
  while (!copies_.empty()) {  // messages that arrived during a receive_copy()
    fn(copies_.front());
    copies_.pop_front();
    ++handed;
  }
  if (handed > 0) return handed;
  MYELIN_RETURN_IF_ERROR(written);
  sink_ = &fn;
  const std::size_t before = delivered_;
  Status s;
  while (delivered_ == before && s.ok()) {
    if (session_->state() == SessionState::kClosed) {
      s = session_->close_reason().ok() ? closed("secure channel: closed")
                                        : session_->close_reason();
      break;
    }
    s = read_some(deadline);
  }
  sink_ = nullptr;
  if (delivered_ != before) return delivered_ - before;
  return s;
}

Result<std::vector<std::byte>> BlockingChannel::receive_copy(Nanos timeout) {
  const MonoTime deadline = mono_now() + timeout;
  const Status written = write_out(deadline);
  if (copies_.empty()) MYELIN_RETURN_IF_ERROR(written);
  while (copies_.empty()) {
    if (session_->state() == SessionState::kClosed) {
      return session_->close_reason().ok() ? closed("secure channel: closed")
                                           : session_->close_reason();
    }
    MYELIN_RETURN_IF_ERROR(read_some(deadline));
  }
  std::vector<std::byte> m = std::move(copies_.front());
  copies_.pop_front();
  return m;
}

Status BlockingChannel::close(Nanos timeout) {
  MYELIN_RETURN_IF_ERROR(session_->close(CloseCode::kNormal, mono_now()));
  MYELIN_RETURN_IF_ERROR(write_out(mono_now() + timeout));
  return stream_->shutdown_write();
}

}  // namespace myelin::secure
