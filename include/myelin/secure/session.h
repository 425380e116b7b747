// Session: the sans-I/O core of an MSC1 secure channel (docs/secure-channel.md).
//
// A Session runs the handshake and the record layer for one end of one
// connection, and touches no socket and no clock: bytes from the peer go in
// through input_buffer()/commit_input() (or receive()), bytes for the peer
// come out of output()/consume_output(), and every call that can make a
// time-based decision takes `now`. Transports (secure/channel.h) and tests
// move the bytes; fuzzers feed it anything.
//
// Events go to a SessionHandler, called synchronously from inside the call
// that caused them. A handler may call send() and close() from its
// callbacks. A message handed to on_message() lives only during the call.
//
// Every failure is final: the session sends at most a Close with a generic
// code (the peer never learns which check failed), moves to kClosed, and
// reports the precise reason to the handler's on_closed() and as the Status
// of the call. Keys are wiped as soon as they are no longer needed.
//
// Steady state allocates nothing: records are sealed in place into a reused
// output buffer (or straight into transport memory, through a RecordSink)
// and opened in place in the reused input buffer (or where the transport
// holds them, through receive_in_place); a message that fits one record is
// delivered without a copy.
//
// Not thread-safe: one session is driven by one thread at a time.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/secure/attestation.h"
#include "myelin/secure/key_pool.h"

namespace myelin::secure {

namespace detail {
class SessionCore;
}  // namespace detail

enum class Role : std::uint8_t { kInitiator, kResponder };

// Ordered from weakest to strongest; the values are the wire ids.
enum class Mode : std::uint8_t { kNone = 0, kResponder = 1, kMutual = 2 };

enum class Suite : std::uint16_t { kChaCha20Poly1305 = 1, kAes256Gcm = 2 };

enum class CloseCode : std::uint16_t {
  kNormal = 0,
  kProtocolError = 1,
  kBadRecord = 2,
  kHandshakeFailure = 3,
  kTimeout = 4,
  kMessageTooLarge = 5,
  kInternalError = 6,
};

// kStart: created (responder: waiting for Hello). kAwaitResponse: initiator
// sent Hello. kAwaitFinish: responder sent Response. kEstablished: traffic
// keys in use. kClosed: final; output() may still hold a last Close to send.
enum class SessionState : std::uint8_t {
  kStart,
  kAwaitResponse,
  kAwaitFinish,
  kEstablished,
  kClosed
};

std::string_view to_string(Role role) noexcept;
std::string_view to_string(Mode mode) noexcept;
std::string_view to_string(Suite suite) noexcept;
std::string_view to_string(CloseCode code) noexcept;
std::string_view to_string(SessionState state) noexcept;

struct SessionConfig {
  Role role = Role::kInitiator;
  // The modes this side accepts. Mode kNone must be named explicitly: the
  // defaults require the responder to attest.
  Mode min_mode = Mode::kResponder;
  Mode max_mode = Mode::kMutual;
  // Preference order (the initiator's order decides).
  std::vector<Suite> suites = {Suite::kChaCha20Poly1305, Suite::kAes256Gcm};

  // Largest record plaintext this side accepts (announced to the peer).
  std::uint32_t max_record = 65536;
  // Largest message this side accepts (local limit, not announced).
  std::uint64_t max_message = std::uint64_t{1} << 30;
  // Send KeyUpdate after this many records or plaintext bytes in one direction.
  std::uint64_t rekey_records = std::uint64_t{1} << 20;
  std::uint64_t rekey_bytes = std::uint64_t{1} << 34;

  Nanos handshake_timeout = std::chrono::seconds(10);
  Nanos idle_timeout = std::chrono::seconds(60);
  Nanos heartbeat = std::chrono::seconds(15);

  // Borrowed; must outlive the session. `provider` is needed when this side
  // may have to attest (responder with max_mode >= kResponder, initiator with
  // max_mode == kMutual); `verifier` when the peer may have to.
  const AttestationProvider* provider = nullptr;
  const AttestationVerifier* verifier = nullptr;
  MeasurementPolicy policy;

  // Borrowed, optional, shared by any number of sessions: where the ephemeral
  // X25519 key comes from. Null (or an empty pool) means it is generated
  // inside the handshake, on its critical path.
  KeyPool* key_pool = nullptr;
};

struct SessionInfo {
  Mode mode = Mode::kNone;
  Suite suite = Suite::kChaCha20Poly1305;
  std::array<std::byte, 16> session_id{};
  // What the peer proved, when the mode required it to attest.
  std::optional<VerifiedEvidence> peer;
  std::uint32_t peer_max_record = 0;
};

struct SessionStats {
  std::uint64_t records_sent = 0;
  std::uint64_t records_received = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t key_updates_sent = 0;
  std::uint64_t key_updates_received = 0;
  // Initiator: the X25519 agreement ran on message 2's clear part, while the
  // sealed rest was still on its way (section 4.2 of the protocol doc).
  bool agreed_early = false;
};

class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  virtual void on_established(const SessionInfo& /*info*/) {}
  // One complete application message.
  virtual void on_message(std::span<const std::byte> message) = 0;
  // The session ended: ok for a normal close by either side, else why.
  virtual void on_closed(const Status& /*reason*/) {}
  // output() holds bytes the peer can act on before this side starts a long
  // computation: today the clear part of message 2, queued before the
  // responder's X25519 agreement, so the initiator's agreement can run at the
  // same time (docs/secure-channel.md section 4.2). A driver that writes them
  // now saves the handshake one agreement's latency; one that does nothing
  // sends them with the rest. May call output() and consume_output() only;
  // an error ends the session.
  virtual Status on_early_output() { return ok_status(); }
};

// Where sealed records can go instead of output(): memory of the transport
// itself (net::Stream::write_window), so each record is sealed where it is
// sent from and no copy of its bytes follows. reserve(n) offers room (less
// than n, or none, declines); commit(n) sends the first n bytes of it.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual std::span<std::byte> reserve(std::size_t n) = 0;
  virtual void commit(std::size_t n) = 0;
};

class Session {
 public:
  // Checks the configuration (modes, providers, limits). `handler` is
  // borrowed and must outlive the session.
  static Result<std::unique_ptr<Session>> create(SessionConfig config, SessionHandler* handler);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts the handshake clock; the initiator also queues its Hello.
  Status start(MonoTime now);

  // Input, zero-copy: read up to the returned span's size into it, then
  // commit how many bytes arrived. commit_input processes every complete
  // frame and returns the error that closed the session, if one did.
  std::span<std::byte> input_buffer(std::size_t min_space = 16384);
  Status commit_input(std::size_t n, MonoTime now);
  // Input, copying: the same for bytes that are somewhere else already.
  Status receive(std::span<const std::byte> bytes, MonoTime now);
  // Input, in place, for a transport that lends its own memory
  // (net::Stream::read_window): complete frames at the front of `bytes` are
  // handled where they lie (opened in place, a message delivered from
  // there, so the session may overwrite them during the call), until they
  // add up to at least `budget` bytes; the default lets a transport take
  // back room in steps while the rest is opened. Returns how many bytes it
  // took; the rest (a partial frame, or frames past the budget) stays the
  // caller's, to offer again with more behind it. When `bytes` starts with
  // no complete frame, or a frame that began in receive() is still
  // incomplete, everything is taken and copied in, as receive() would.
  // Fails as receive() does.
  Result<std::size_t> receive_in_place(std::span<std::byte> bytes, MonoTime now,
                                       std::size_t budget = 32 * 1024);

  // The stream ended (peer closed its write half).
  Status on_eof(MonoTime now);

  // Bytes to write to the peer, in order.
  [[nodiscard]] std::span<const std::byte> output() const noexcept;
  void consume_output(std::size_t n) noexcept;
  // Borrowed (null to stop): records sealed while output() is empty go to
  // the sink when it offers room for all of the record, so bytes stay in
  // order; the rest queue in output() as usual. Handshake messages always
  // queue in output().
  void set_record_sink(RecordSink* sink) noexcept;

  // Sends one message (chunked into records of at most the peer's
  // max_record). Fails unless established. `parts` are concatenated: a
  // message can be sealed straight from several buffers (headers + tensor
  // data) without first copying them together.
  Status send(std::span<const std::byte> message, MonoTime now);
  Status send_parts(std::span<const std::span<const std::byte>> parts, MonoTime now);
  // The same, for a driver that writes while a long message is sealed:
  // `drain` runs between records whenever at least `drain_bytes` of output
  // wait, and may call output()/consume_output() (nothing else). Writing
  // record k while record k+1 is sealed lets the peer open k meanwhile,
  // instead of the whole message being sealed before its first byte moves.
  // An error from `drain` ends the session (the message is cut short).
  Status send_parts(std::span<const std::span<const std::byte>> parts, MonoTime now,
                    const std::function<Status()>& drain, std::size_t drain_bytes);

  // Sends Close(code) (when keys exist) and ends the session.
  Status close(CloseCode code, MonoTime now);

  // Timeouts and heartbeats; call at or after next_deadline().
  Status tick(MonoTime now);
  [[nodiscard]] MonoTime next_deadline() const noexcept;

  [[nodiscard]] SessionState state() const noexcept;
  [[nodiscard]] bool established() const noexcept { return state() == SessionState::kEstablished; }
  [[nodiscard]] const SessionInfo& info() const noexcept;
  [[nodiscard]] const SessionStats& stats() const noexcept;
  // Why the session closed (ok while open or after a normal close).
  [[nodiscard]] const Status& close_reason() const noexcept;

 private:
  explicit Session(std::unique_ptr<detail::SessionCore> core);
  std::unique_ptr<detail::SessionCore> core_;
};

}  // namespace myelin::secure
