// Session: the public wrapper, frame dispatch and the state machine.
#include "myelin/secure/session.h"

#include <algorithm>
#include <string>

#include "src/secure/session_core.h"

namespace myelin::secure {

std::string_view to_string(Role role) noexcept {
  return role == Role::kInitiator ? "initiator" : "responder";
}

std::string_view to_string(Mode mode) noexcept {
  switch (mode) {
    case Mode::kNone:
      return "none";
    case Mode::kResponder:
      return "responder";
    case Mode::kMutual:
      return "mutual";
  }
  return "unknown";
}

std::string_view to_string(Suite suite) noexcept {
  switch (suite) {
    case Suite::kChaCha20Poly1305:
      return "chacha20-poly1305";
    case Suite::kAes256Gcm:
      return "aes-256-gcm";
  }
  return "unknown";
}

std::string_view to_string(CloseCode code) noexcept {
  switch (code) {
    case CloseCode::kNormal:
      return "normal";
    case CloseCode::kProtocolError:
      return "protocol_error";
    case CloseCode::kBadRecord:
      return "bad_record";
    case CloseCode::kHandshakeFailure:
      return "handshake_failure";
    case CloseCode::kTimeout:
      return "timeout";
    case CloseCode::kMessageTooLarge:
      return "message_too_large";
    case CloseCode::kInternalError:
      return "internal_error";
  }
  return "unknown";
}

std::string_view to_string(SessionState state) noexcept {
  switch (state) {
    case SessionState::kStart:
      return "start";
    case SessionState::kAwaitResponse:
      return "await_response";
    case SessionState::kAwaitFinish:
      return "await_finish";
    case SessionState::kEstablished:
      return "established";
    case SessionState::kClosed:
      return "closed";
  }
  return "unknown";
}

namespace {

Status validate(const SessionConfig& c, const SessionHandler* handler) {
  if (handler == nullptr) return invalid_argument("secure session: handler is null");
  if (c.min_mode > c.max_mode || c.max_mode > Mode::kMutual) {
    return invalid_argument("secure session: min_mode must be <= max_mode <= mutual");
  }
  if (c.suites.empty() || c.suites.size() > detail::kMaxSuitesOffered) {
    return invalid_argument("secure session: offer 1..8 suites");
  }
  for (std::size_t i = 0; i < c.suites.size(); ++i) {
    if (c.suites[i] != Suite::kChaCha20Poly1305 && c.suites[i] != Suite::kAes256Gcm) {
      return invalid_argument("secure session: unknown suite");
    }
    if (std::count(c.suites.begin(), c.suites.end(), c.suites[i]) != 1) {
      return invalid_argument("secure session: duplicate suite");
    }
  }
  if (c.max_record < detail::kMinMaxRecord || c.max_record > detail::kMaxMaxRecord) {
    return invalid_argument("secure session: max_record must be in [1024, 16777216], got " +
                            std::to_string(c.max_record));
  }
  if (c.rekey_records == 0 || c.rekey_bytes == 0 || c.max_message == 0) {
    return invalid_argument("secure session: rekey_records, rekey_bytes, max_message must be > 0");
  }
  const bool i_attest =
      c.role == Role::kResponder ? c.max_mode >= Mode::kResponder : c.max_mode == Mode::kMutual;
  const bool peer_attests =
      c.role == Role::kResponder ? c.max_mode == Mode::kMutual : c.max_mode >= Mode::kResponder;
  if (i_attest && c.provider == nullptr) {
    return invalid_argument("secure session: " + std::string(to_string(c.role)) +
                            " with max_mode " + std::string(to_string(c.max_mode)) +
                            " needs an attestation provider");
  }
  if (peer_attests && c.verifier == nullptr) {
    return invalid_argument("secure session: " + std::string(to_string(c.role)) +
                            " with max_mode " + std::string(to_string(c.max_mode)) +
                            " needs an attestation verifier");
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<Session>> Session::create(SessionConfig config, SessionHandler* handler) {
  MYELIN_RETURN_IF_ERROR(validate(config, handler));
  auto core = std::make_unique<detail::SessionCore>(std::move(config), handler);
  return std::unique_ptr<Session>(new Session(std::move(core)));
}

Session::Session(std::unique_ptr<detail::SessionCore> core) : core_(std::move(core)) {}
Session::~Session() = default;

Status Session::start(MonoTime now) { return core_->start(now); }
std::span<std::byte> Session::input_buffer(std::size_t min_space) {
  return core_->in_.tail(min_space);
}
Status Session::commit_input(std::size_t n, MonoTime now) {
  core_->in_.commit(n);
  return core_->process_input(now);
}
Status Session::receive(std::span<const std::byte> bytes, MonoTime now) {
  if (core_->state_ == SessionState::kClosed) return closed("secure session: closed");
  core_->in_.append(bytes);
  return core_->process_input(now);
}
Result<std::size_t> Session::receive_in_place(std::span<std::byte> bytes, MonoTime now,
                                              std::size_t budget) {
  return core_->receive_in_place(bytes, now, budget);
}
Status Session::on_eof(MonoTime now) { return core_->on_eof(now); }
std::span<const std::byte> Session::output() const noexcept { return core_->out_.readable(); }
void Session::consume_output(std::size_t n) noexcept { core_->out_.consume(n); }
void Session::set_record_sink(RecordSink* sink) noexcept { core_->sink_ = sink; }
Status Session::send(std::span<const std::byte> message, MonoTime now) {
  const std::span<const std::byte> parts[1] = {message};
  return core_->send_parts(parts, now);
}
Status Session::send_parts(std::span<const std::span<const std::byte>> parts, MonoTime now) {
  return core_->send_parts(parts, now);
}
Status Session::send_parts(std::span<const std::span<const std::byte>> parts, MonoTime now,
                           const std::function<Status()>& drain, std::size_t drain_bytes) {
  return core_->send_parts(parts, now, &drain, drain_bytes);
}
Status Session::close(CloseCode code, MonoTime now) { return core_->close(code, now); }
Status Session::tick(MonoTime now) { return core_->tick(now); }
MonoTime Session::next_deadline() const noexcept { return core_->next_deadline(); }
SessionState Session::state() const noexcept { return core_->state_; }
const SessionInfo& Session::info() const noexcept { return core_->info_; }
const SessionStats& Session::stats() const noexcept { return core_->stats_; }
const Status& Session::close_reason() const noexcept { return core_->close_reason_; }

namespace detail {

void SessionCore::enter_state(SessionState next) { state_ = next; }

Status SessionCore::fail(Status reason, CloseCode code, bool send_close) {
  if (state_ == SessionState::kClosed) return reason;
  if (send_close && state_ == SessionState::kEstablished && !close_sent_) {
    std::byte payload[kClosePayload];
    put_u16(payload, static_cast<std::uint16_t>(code));
    if (seal_control(FrameType::kClose, payload).ok()) close_sent_ = true;
  }
  close_reason_ = reason;
  enter_state(SessionState::kClosed);
  // Nothing is accepted or sent after a failure: drop the keys now.
  send_.aead.reset();
  recv_.aead.reset();
  send_.key.wipe();
  recv_.key.wipe();
  hs_ = HandshakeSecrets{};
  in_.clear();
  handler_->on_closed(reason);
  return reason;
}

Status SessionCore::start(MonoTime now) {
  if (state_ != SessionState::kStart || started_ != MonoTime{}) {
    return failed_precondition("secure session: start() called twice");
  }
  started_ = now;
  last_received_ = now;
  last_sent_ = now;
  if (config_.role == Role::kInitiator) return send_hello();
  return ok_status();
}

Status SessionCore::check_header(const FrameHeader& h, std::uint16_t reserved) const {
  const auto type = static_cast<unsigned>(h.type);
  if (reserved != 0) return protocol_error("frame header: reserved field is not 0");
  if ((h.flags & ~kFlagMore) != 0) {
    return protocol_error("frame header: unknown flags 0x" + std::to_string(h.flags));
  }
  if ((h.flags & kFlagMore) != 0 && h.type != FrameType::kData) {
    return protocol_error("frame header: MORE flag on frame type " + std::to_string(type));
  }
  if (state_ == SessionState::kEstablished) {
    if (type < 0x10 || type > 0x14) {
      return protocol_error("record: unexpected frame type " + std::to_string(type));
    }
    if (h.length < kAeadTagSize || h.length > config_.max_record + kAeadTagSize) {
      return protocol_error("record seq " + std::to_string(h.seq) + ": length " +
                            std::to_string(h.length) + " outside [16, max_record + 16 = " +
                            std::to_string(config_.max_record + kAeadTagSize) + "]");
    }
    if (h.seq != recv_.seq) {
      return protocol_error("record seq " + std::to_string(h.seq) + ", expected " +
                            std::to_string(recv_.seq) + " (gap, replay or reorder)");
    }
    return ok_status();
  }
  FrameType want = FrameType::kHello;
  if (state_ == SessionState::kStart && config_.role == Role::kInitiator) {
    return protocol_error("handshake: bytes received before start()");
  }
  if (state_ == SessionState::kAwaitResponse) want = FrameType::kResponse;
  if (state_ == SessionState::kAwaitFinish) want = FrameType::kFinish;
  const bool close_in_finish = state_ == SessionState::kAwaitFinish && h.type == FrameType::kClose;
  if (h.type != want && !close_in_finish) {
    return protocol_error("handshake: frame type " + std::to_string(type) + " in state " +
                          std::string(to_string(state_)));
  }
  if (h.seq != 0) return protocol_error("handshake: frame with non-zero seq");
  if (h.length > kMaxHandshakeBody) {
    return protocol_error("handshake: frame length " + std::to_string(h.length) +
                          " above the limit 66560");
  }
  return ok_status();
}

Status SessionCore::process_frames(std::span<std::byte> bytes, std::size_t budget,
                                   std::size_t& used, MonoTime now) {
  now_ = now;
  used = 0;
  while (state_ != SessionState::kClosed && used < budget && bytes.size() - used >= kHeaderSize) {
    std::byte* const at = bytes.data() + used;
    std::uint16_t reserved = 0;
    const FrameHeader h = decode_header(at, &reserved);
    if (Status s = check_header(h, reserved); !s.ok()) {
      const CloseCode code = state_ == SessionState::kEstablished ? CloseCode::kProtocolError
                                                                  : CloseCode::kHandshakeFailure;
      return fail(std::move(s), code, true);
    }
    const std::size_t frame_size = kHeaderSize + h.length;
    if (bytes.size() - used < frame_size) {
      if (h.type == FrameType::kResponse) agree_early({at, bytes.size() - used});
      break;
    }
    Status s = handle_frame(h, {at, frame_size}, now);
    used += frame_size;
    MYELIN_RETURN_IF_ERROR(s);
  }
  return ok_status();
}

Status SessionCore::process_input(MonoTime now) {
  std::size_t used = 0;
  Status s = process_frames({in_.data(), in_.size()}, SIZE_MAX, used, now);
  if (state_ != SessionState::kClosed) in_.consume(used);  // fail() emptied it
  return s;
}

Result<std::size_t> SessionCore::receive_in_place(std::span<std::byte> bytes, MonoTime now,
                                                  std::size_t budget) {
  if (state_ == SessionState::kClosed) return closed("secure session: closed");
  std::size_t used = 0;
  if (in_.empty()) {
    MYELIN_RETURN_IF_ERROR(process_frames(bytes, budget, used, now));
    if (used > 0 || state_ == SessionState::kClosed) return used;
  }
  // A frame began in receive(), or only the start of one is here: it and
  // what follows continue in the input buffer.
  in_.append(bytes.subspan(used));
  MYELIN_RETURN_IF_ERROR(process_input(now));
  return bytes.size();
}

Status SessionCore::handle_frame(const FrameHeader& h, std::span<std::byte> frame, MonoTime now) {
  switch (state_) {
    case SessionState::kStart:
      return on_hello(frame);
    case SessionState::kAwaitResponse:
      return on_response(frame);
    case SessionState::kAwaitFinish:
      return on_finish(h, frame);
    case SessionState::kEstablished:
      return on_record(h, frame, now);
    case SessionState::kClosed:
      return closed("secure session: closed");
  }
  return internal_error("secure session: bad state");
}

Status SessionCore::on_eof(MonoTime) {
  if (state_ == SessionState::kClosed) return ok_status();
  return fail(closed("secure session: stream ended in state " + std::string(to_string(state_)) +
                     " without a Close"),
              CloseCode::kProtocolError, false);
}

Status SessionCore::close(CloseCode code, MonoTime) {
  if (state_ == SessionState::kClosed) return ok_status();
  if (code == CloseCode::kNormal) {
    if (state_ == SessionState::kEstablished && !close_sent_) {
      std::byte payload[kClosePayload];
      put_u16(payload, 0);
      MYELIN_RETURN_IF_ERROR(seal_control(FrameType::kClose, payload));
      close_sent_ = true;
    }
    close_reason_ = ok_status();
    enter_state(SessionState::kClosed);
    send_.aead.reset();
    recv_.aead.reset();
    hs_ = HandshakeSecrets{};
    handler_->on_closed(ok_status());
    return ok_status();
  }
  (void)fail(closed("secure session: closed locally with code " + std::string(to_string(code))),
             code, true);
  return ok_status();
}

Status SessionCore::tick(MonoTime now) {
  switch (state_) {
    case SessionState::kClosed:
      return ok_status();
    case SessionState::kEstablished:
      if (now - last_received_ >= config_.idle_timeout) {
        return fail(deadline_exceeded("secure session: nothing received for " +
                                      std::to_string((now - last_received_).count() / 1000000) +
                                      " ms (idle timeout)"),
                    CloseCode::kTimeout, true);
      }
      if (now - last_sent_ >= config_.heartbeat) {
        std::byte ping[kPingPayload];
        put_u64(ping, ++ping_counter_);
        MYELIN_RETURN_IF_ERROR(seal_control(FrameType::kPing, ping));
        last_sent_ = now;
      }
      return ok_status();
    default:
      if (started_ != MonoTime{} && now - started_ >= config_.handshake_timeout) {
        return fail(deadline_exceeded("secure session: handshake timed out in state " +
                                      std::string(to_string(state_))),
                    CloseCode::kTimeout, false);
      }
      return ok_status();
  }
}

MonoTime SessionCore::next_deadline() const noexcept {
  switch (state_) {
    case SessionState::kClosed:
      return MonoTime::max();
    case SessionState::kEstablished:
      return std::min(last_received_ + config_.idle_timeout, last_sent_ + config_.heartbeat);
    default:
      return started_ == MonoTime{} ? MonoTime::max() : started_ + config_.handshake_timeout;
  }
}

}  // namespace detail
}  // namespace myelin::secure
