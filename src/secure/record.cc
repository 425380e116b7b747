// The MSC1 record layer (docs/secure-channel.md section 5): sealing in place,
// strict sequence numbers, chunked messages, key update, ping and close.
#include <string>

#include "src/secure/session_core.h"

namespace myelin::secure::detail {
namespace {

// k' := Expand(k, "key update", "", 32)
Status next_key(Key32& key) {
  static constexpr char kInfo[] = "msc1 key update\0";  // label || u8(0)
  Key32 next;
  MYELIN_RETURN_IF_ERROR(
      hkdf_expand(key.span(), std::as_bytes(std::span(kInfo, sizeof(kInfo) - 1)), next.span()));
  key = std::move(next);  // the old key is wiped by the move
  return ok_status();
}

}  // namespace

// Seals `len` plaintext bytes, taken from `parts` starting at byte `offset`
// of their concatenation, as one record: into the sink's room when the
// output buffer is empty and the sink offers room for all of it, else
// appended to the output buffer. Header, ciphertext and tag are contiguous,
// so one write sends them.
Status SessionCore::seal_record(FrameType type, std::uint8_t flags,
                                std::span<const std::span<const std::byte>> parts,
                                std::size_t offset, std::size_t len) {
  if (send_.seq == UINT64_MAX) return internal_error("record: send sequence number exhausted");
  const std::size_t total = kHeaderSize + len + kAeadTagSize;
  std::span<std::byte> room;
  if (sink_ != nullptr && out_.empty()) room = sink_->reserve(total);
  const bool to_sink = room.size() >= total;
  std::byte* f = to_sink ? room.data() : out_.tail(total).data();
  encode_header({type, flags, static_cast<std::uint32_t>(len + kAeadTagSize), send_.seq}, f);
  Aead& aead = *send_.aead;
  MYELIN_RETURN_IF_ERROR(
      aead.seal_begin(record_nonce(send_.iv.span(), send_.seq), {f, kHeaderSize}));
  std::byte* out = f + kHeaderSize;
  std::size_t left = len;
  for (std::span<const std::byte> part : parts) {
    if (left == 0) break;
    if (offset >= part.size()) {
      offset -= part.size();
      continue;
    }
    const std::size_t n = std::min(left, part.size() - offset);
    MYELIN_RETURN_IF_ERROR(aead.seal_update(part.subspan(offset, n), out));
    out += n;
    left -= n;
    offset = 0;
  }
  MYELIN_RETURN_IF_ERROR(aead.seal_finish(std::span<std::byte, kTagSize>(out, kTagSize)));
  if (to_sink) {
    sink_->commit(total);
  } else {
    out_.commit(total);
  }
  ++send_.seq;
  ++send_.records_since_rekey;
  send_.bytes_since_rekey += len;
  ++stats_.records_sent;
  last_sent_ = now_;
  return ok_status();
}

Status SessionCore::seal_control(FrameType type, std::span<const std::byte> payload) {
  const std::span<const std::byte> parts[1] = {payload};
  MYELIN_RETURN_IF_ERROR(seal_record(type, 0, parts, 0, payload.size()));
  if (type == FrameType::kClose) return ok_status();
  return maybe_rekey_send();
}

Status SessionCore::maybe_rekey_send() {
  if (send_.records_since_rekey < config_.rekey_records &&
      send_.bytes_since_rekey < config_.rekey_bytes) {
    return ok_status();
  }
  const std::span<const std::byte> none[1] = {};
  MYELIN_RETURN_IF_ERROR(seal_record(FrameType::kKeyUpdate, 0, none, 0, 0));
  MYELIN_RETURN_IF_ERROR(next_key(send_.key));
  MYELIN_RETURN_IF_ERROR(send_.aead->rekey(send_.key.span()));
  send_.records_since_rekey = 0;
  send_.bytes_since_rekey = 0;
  ++stats_.key_updates_sent;
  return ok_status();
}

Status SessionCore::send_parts(std::span<const std::span<const std::byte>> parts, MonoTime now,
                               const std::function<Status()>* drain, std::size_t drain_bytes) {
  if (state_ != SessionState::kEstablished || close_sent_) {
    return state_ == SessionState::kClosed
               ? closed("secure session: send on a closed channel")
               : failed_precondition("secure session: send before the handshake completed");
  }
  now_ = now;
  std::size_t total = 0;
  for (auto p : parts) total += p.size();
  const std::size_t chunk = peer_max_record_;
  std::size_t offset = 0;
  do {
    const std::size_t n = std::min(chunk, total - offset);
    const bool more = offset + n < total;
    Status s = seal_record(FrameType::kData, more ? kFlagMore : 0, parts, offset, n);
    if (s.ok()) s = maybe_rekey_send();
    if (s.ok() && more && drain != nullptr && out_.readable().size() >= drain_bytes) s = (*drain)();
    if (!s.ok()) return fail(std::move(s), CloseCode::kInternalError, false);
    offset += n;
  } while (offset < total);
  ++stats_.messages_sent;
  return ok_status();
}

Status SessionCore::on_record(const FrameHeader& h, std::span<std::byte> frame, MonoTime now) {
  // check_header already enforced type, flags, length bounds and seq == expect.
  const std::size_t ct_len = h.length - kAeadTagSize;
  std::byte* ct = frame.data() + kHeaderSize;
  // A chunk of a long message is opened straight into the reassembly buffer
  // (one pass over the bytes instead of opening in place and copying). The
  // bytes count only once the tag verifies; a failure leaves them uncommitted.
  // Over max_message, the in-place path below reports it after authentication.
  const bool chunk = h.type == FrameType::kData && (reassembling_ || (h.flags & kFlagMore) != 0) &&
                     reassembly_.size() + ct_len <= config_.max_message;
  std::byte* pt_out = chunk ? reassembly_.tail(ct_len).data() : ct;
  Aead& aead = *recv_.aead;
  Status s = aead.open_begin(record_nonce(recv_.iv.span(), h.seq), {frame.data(), kHeaderSize});
  if (s.ok()) s = aead.open_update({ct, ct_len}, pt_out);
  if (s.ok()) s = aead.open_finish(std::span<const std::byte, kTagSize>(ct + ct_len, kTagSize));
  if (!s.ok()) {
    return fail(authentication_failed("record seq " + std::to_string(h.seq) + " (type " +
                                      std::to_string(static_cast<unsigned>(h.type)) +
                                      "): " + std::string(s.message())),
                CloseCode::kBadRecord, true);
  }
  ++recv_.seq;
  ++stats_.records_received;
  last_received_ = now;
  const std::span<const std::byte> pt(ct, ct_len);
  switch (h.type) {
    case FrameType::kData: {
      const bool more = (h.flags & kFlagMore) != 0;
      if (!reassembling_ && !more) {
        if (pt.size() > config_.max_message) break;  // reported below
        ++stats_.messages_received;
        handler_->on_message(pt);
        return ok_status();
      }
      if (!chunk) {
        return fail(resource_exhausted("record seq " + std::to_string(h.seq) +
                                       ": message exceeds max_message " +
                                       std::to_string(config_.max_message) + " bytes"),
                    CloseCode::kMessageTooLarge, true);
      }
      reassembly_.commit(ct_len);
      reassembling_ = more;
      if (!more) {
        ++stats_.messages_received;
        handler_->on_message(reassembly_.readable());
        reassembly_.clear();  // keeps its capacity for the next large message
      }
      return ok_status();
    }
    case FrameType::kKeyUpdate:
      if (!pt.empty()) break;
      if (Status r = next_key(recv_.key); !r.ok())
        return fail(std::move(r), CloseCode::kInternalError, true);
      if (Status r = recv_.aead->rekey(recv_.key.span()); !r.ok()) {
        return fail(std::move(r), CloseCode::kInternalError, true);
      }
      ++stats_.key_updates_received;
      return ok_status();
    case FrameType::kPing:
      if (pt.size() != kPingPayload) break;
      if (Status r = seal_control(FrameType::kPong, pt); !r.ok()) {
        return fail(std::move(r), CloseCode::kInternalError, false);
      }
      return ok_status();
    case FrameType::kPong:
      if (pt.size() != kPingPayload) break;
      return ok_status();
    case FrameType::kClose: {
      if (pt.size() != kClosePayload) break;
      const std::uint16_t code = get_u16(pt.data());
      Status reason;
      if (code == static_cast<std::uint16_t>(CloseCode::kHandshakeFailure)) {
        reason = authentication_failed(
            "secure session: the peer rejected the handshake (its log has the reason)");
      } else if (code != 0) {
        reason = closed("secure session: peer closed with code " +
                        std::string(to_string(static_cast<CloseCode>(code))) + " (" +
                        std::to_string(code) + ")");
      }
      if (!close_sent_) {
        std::byte payload[kClosePayload];
        put_u16(payload, 0);
        if (seal_control(FrameType::kClose, payload).ok()) close_sent_ = true;
      }
      if (reason.ok()) {
        close_reason_ = ok_status();
        enter_state(SessionState::kClosed);
        send_.aead.reset();
        recv_.aead.reset();
        handler_->on_closed(close_reason_);
        return ok_status();
      }
      return fail(std::move(reason), CloseCode::kNormal, false);
    }
    default:
      break;
  }
  // A well-authenticated record with a malformed payload: the peer is broken.
  if (h.type == FrameType::kData) {
    return fail(resource_exhausted("record seq " + std::to_string(h.seq) + ": message of " +
                                   std::to_string(pt.size()) + " bytes exceeds max_message"),
                CloseCode::kMessageTooLarge, true);
  }
  return fail(protocol_error("record seq " + std::to_string(h.seq) + ": type " +
                             std::to_string(static_cast<unsigned>(h.type)) + " with a payload of " +
                             std::to_string(pt.size()) + " bytes"),
              CloseCode::kProtocolError, true);
}

}  // namespace myelin::secure::detail
