// SessionCore: the state behind myelin::secure::Session.
//
// handshake.cc holds the three handshake messages and the key schedule,
// record.cc the record layer (seal, open, chunking, key update, liveness),
// session.cc the public wrapper, frame dispatch and the state machine's one
// place of change (enter_state). Everything here runs on the session's
// single driving thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "myelin/secure/session.h"
#include "src/secure/byte_buffer.h"
#include "src/secure/crypto.h"
#include "src/secure/wire.h"

namespace myelin::secure::detail {

// One direction of the record layer.
struct Direction {
  std::optional<Aead> aead;
  Key32 key;  // kept for the next key update, wiped on update
  Iv12 iv;
  std::uint64_t seq = 0;
  std::uint64_t records_since_rekey = 0;
  std::uint64_t bytes_since_rekey = 0;
};

// Handshake secrets: wiped (by their destructors) when the handshake ends.
struct HandshakeSecrets {
  std::optional<X25519KeyPair> ephemeral;
  // The initiator derived the keys below from message 2's clear part while
  // the rest of the message was still on its way; the e_r and H(T2c) it used.
  bool early_tried = false;  // once per handshake, whatever the outcome
  bool derived_early = false;
  std::array<std::byte, 32> early_peer{};
  Digest early_h_t2c{};
  Key32 prk;
  Key32 khs_r, khs_i, kfin_r, kfin_i;
  Iv12 ivhs_r, ivhs_i;
};

class SessionCore {
 public:
  SessionCore(SessionConfig config, SessionHandler* handler)
      : config_(std::move(config)), handler_(handler) {}

  Status start(MonoTime now);
  Status process_input(MonoTime now);
  Result<std::size_t> receive_in_place(std::span<std::byte> bytes, MonoTime now,
                                       std::size_t budget);
  Status on_eof(MonoTime now);
  Status send_parts(std::span<const std::span<const std::byte>> parts, MonoTime now,
                    const std::function<Status()>* drain = nullptr, std::size_t drain_bytes = 0);
  Status close(CloseCode code, MonoTime now);
  Status tick(MonoTime now);
  [[nodiscard]] MonoTime next_deadline() const noexcept;

  SessionConfig config_;
  SessionHandler* handler_;
  SessionState state_ = SessionState::kStart;
  SessionInfo info_;
  SessionStats stats_;
  Status close_reason_;
  ByteBuffer in_;
  ByteBuffer out_;
  RecordSink* sink_ = nullptr;

 private:
  // --- session.cc ---
  void enter_state(SessionState next);
  // Ends the session with `reason` (logged locally) after queuing Close(code)
  // when `send_close`; returns `reason` so callers can `return fail(...)`.
  Status fail(Status reason, CloseCode code, bool send_close);
  Status handle_frame(const FrameHeader& h, std::span<std::byte> frame, MonoTime now);
  Status check_header(const FrameHeader& h, std::uint16_t reserved) const;
  // Handles the complete frames at the front of `bytes`, stopping once they
  // add up to `budget` bytes; `used` counts the bytes they took (a partial
  // frame at the end is left).
  Status process_frames(std::span<std::byte> bytes, std::size_t budget, std::size_t& used,
                        MonoTime now);

  // --- handshake.cc ---
  Status send_hello();
  Status on_hello(std::span<const std::byte> frame);
  Status on_response(std::span<std::byte> frame);
  Status on_finish(const FrameHeader& h, std::span<std::byte> frame);
  Status draw_handshake_random();  // e and the nonce: from the pool, else fresh
  void agree_early(std::span<const std::byte> partial_response);
  Status derive_handshake_keys(std::span<const std::byte, 32> e_peer, const Digest& h_t2c);
  Status derive_traffic_keys();
  Status attest(std::span<const std::byte, 32> report_data, std::vector<std::byte>& evidence);
  Status verify_peer(std::span<const std::byte> evidence, std::span<const std::byte, 32> expected);
  Status handshake_close_and_fail(Status reason);
  void finish_handshake();

  // --- record.cc ---
  Status seal_record(FrameType type, std::uint8_t flags,
                     std::span<const std::span<const std::byte>> parts, std::size_t offset,
                     std::size_t len);
  Status seal_control(FrameType type, std::span<const std::byte> payload);
  Status open_record(const FrameHeader& h, std::span<std::byte> frame,
                     std::span<std::byte>& plaintext);
  Status on_record(const FrameHeader& h, std::span<std::byte> frame, MonoTime now);
  Status maybe_rekey_send();

  HandshakeSecrets hs_;
  std::vector<std::byte> transcript_;
  std::vector<std::byte> evidence_scratch_;
  std::array<std::byte, 32> nonce_{};
  Mode min_mode_ = Mode::kNone;
  std::uint32_t peer_max_record_ = 0;
  // Close sent before traffic keys existed, under a handshake key.
  bool close_sent_ = false;
  bool peer_rejected_ = false;

  Direction send_;
  Direction recv_;
  ByteBuffer reassembly_;  // a long message's chunks, opened straight into it
  bool reassembling_ = false;
  std::uint64_t ping_counter_ = 0;

  MonoTime now_{};  // the time passed to the call being processed
  MonoTime started_{};
  MonoTime last_received_{};
  MonoTime last_sent_{};
};

}  // namespace myelin::secure::detail
