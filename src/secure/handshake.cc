// The MSC1 handshake (docs/secure-channel.md section 4): Hello, Response,
// Finish, and the key schedule.
#include <string>

#include "src/secure/session_core.h"

namespace myelin::secure::detail {
namespace {

using ByteSpan = std::span<const std::byte>;

ByteSpan str_bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

// Expand(prk, label, "", L) := HKDF-Expand(prk, "msc1 " || label || u8(0), L)
template <std::size_t N>
Status expand(HkdfExpander& prk, std::string_view label, Secret<N>& out) {
  std::byte info[64];
  const std::string_view prefix = "msc1 ";
  std::memcpy(info, prefix.data(), prefix.size());
  std::memcpy(info + prefix.size(), label.data(), label.size());
  info[prefix.size() + label.size()] = std::byte{0};  // len(context) = 0
  return prk.expand({info, prefix.size() + label.size() + 1}, out.span());
}

bool suite_known(std::uint16_t s) { return s == 1 || s == 2; }

Status handshake_failure(std::string what) { return authentication_failed("handshake: " + what); }

}  // namespace

Status SessionCore::draw_handshake_random() {
  static_assert(sizeof(HandshakeRandom::nonce) == kNonceRandomSize);
  auto use = [this](HandshakeRandom& r) {
    hs_.ephemeral.emplace(std::move(r.key));
    nonce_ = r.nonce;
  };
  if (config_.key_pool != nullptr) {
    if (std::unique_ptr<HandshakeRandom> pooled = config_.key_pool->take()) {
      use(*pooled);
      return ok_status();
    }
  }
  MYELIN_ASSIGN_OR_RETURN(HandshakeRandom fresh, HandshakeRandom::generate());
  use(fresh);
  return ok_status();
}

// The initiator holds the start of message 2: once its clear part is here,
// e_r and H(T2c) are known, so the agreement and the handshake keys need not
// wait for the sealed rest, which the responder is still computing (section
// 4.2). Nothing is checked here and a failure is not reported: on_response()
// validates the clear part, and repeats the derivation (and rejects with the
// reason) if this one did not complete.
void SessionCore::agree_early(std::span<const std::byte> partial_response) {
  if (hs_.early_tried || !hs_.ephemeral ||
      partial_response.size() < kHeaderSize + kResponseClearSize) {
    return;
  }
  hs_.early_tried = true;
  const std::span<const std::byte> clear(partial_response.data() + kHeaderSize, kResponseClearSize);
  const std::span<const std::byte, 32> e_r(clear.data() + 7, 32);
  const Digest h_t2c = sha256({transcript_, clear});  // T2c = T1 || clear
  if (!derive_handshake_keys(e_r, h_t2c).ok()) return;
  hs_.derived_early = true;
  std::memcpy(hs_.early_peer.data(), e_r.data(), 32);
  hs_.early_h_t2c = h_t2c;
}

Status SessionCore::derive_handshake_keys(std::span<const std::byte, 32> e_peer,
                                          const Digest& h_t2c) {
  if (hs_.derived_early) {
    // The same bytes agree_early() saw (a prefix of this very frame).
    if (std::memcmp(hs_.early_peer.data(), e_peer.data(), 32) != 0 || hs_.early_h_t2c != h_t2c) {
      return internal_error("message 2's clear part changed after the early agreement");
    }
    stats_.agreed_early = true;
    return ok_status();
  }
  MYELIN_ASSIGN_OR_RETURN(Key32 ss, hs_.ephemeral->agree(e_peer));
  MYELIN_RETURN_IF_ERROR(hkdf_extract(h_t2c, ss.span(), hs_.prk.span()));
  MYELIN_ASSIGN_OR_RETURN(HkdfExpander prk, HkdfExpander::create(hs_.prk.span()));
  MYELIN_RETURN_IF_ERROR(expand(prk, "r hs key", hs_.khs_r));
  MYELIN_RETURN_IF_ERROR(expand(prk, "r hs iv", hs_.ivhs_r));
  MYELIN_RETURN_IF_ERROR(expand(prk, "i hs key", hs_.khs_i));
  MYELIN_RETURN_IF_ERROR(expand(prk, "i hs iv", hs_.ivhs_i));
  MYELIN_RETURN_IF_ERROR(expand(prk, "r finished", hs_.kfin_r));
  MYELIN_RETURN_IF_ERROR(expand(prk, "i finished", hs_.kfin_i));
  hs_.ephemeral->erase();  // forward secrecy: the private key is no longer needed
  return ok_status();
}

Status SessionCore::derive_traffic_keys() {
  const Digest h_t3 = sha256({transcript_});
  Key32 master;
  MYELIN_RETURN_IF_ERROR(hkdf_extract(h_t3, hs_.prk.span(), master.span()));
  MYELIN_ASSIGN_OR_RETURN(HkdfExpander m, HkdfExpander::create(master.span()));
  Key32 k_i2r, k_r2i;
  Iv12 iv_i2r, iv_r2i;
  Secret<16> sid;
  MYELIN_RETURN_IF_ERROR(expand(m, "i2r key", k_i2r));
  MYELIN_RETURN_IF_ERROR(expand(m, "i2r iv", iv_i2r));
  MYELIN_RETURN_IF_ERROR(expand(m, "r2i key", k_r2i));
  MYELIN_RETURN_IF_ERROR(expand(m, "r2i iv", iv_r2i));
  MYELIN_RETURN_IF_ERROR(expand(m, "session id", sid));
  std::memcpy(info_.session_id.data(), sid.data(), 16);
  const bool initiator = config_.role == Role::kInitiator;
  send_.key = std::move(initiator ? k_i2r : k_r2i);
  send_.iv = std::move(initiator ? iv_i2r : iv_r2i);
  recv_.key = std::move(initiator ? k_r2i : k_i2r);
  recv_.iv = std::move(initiator ? iv_r2i : iv_i2r);
  const auto alg = static_cast<AeadAlg>(info_.suite);
  MYELIN_ASSIGN_OR_RETURN(Aead s, Aead::create(alg, send_.key.span()));
  MYELIN_ASSIGN_OR_RETURN(Aead r, Aead::create(alg, recv_.key.span()));
  send_.aead.emplace(std::move(s));
  recv_.aead.emplace(std::move(r));
  hs_ = HandshakeSecrets{};  // ss, prk, handshake keys: erased (section 4.4)
  return ok_status();
}

void SessionCore::finish_handshake() {
  transcript_.clear();
  transcript_.shrink_to_fit();
  evidence_scratch_.clear();
  evidence_scratch_.shrink_to_fit();
  info_.peer_max_record = peer_max_record_;
  last_received_ = now_;
  last_sent_ = now_;
  enter_state(SessionState::kEstablished);
  handler_->on_established(info_);
}

Status SessionCore::attest(std::span<const std::byte, 32> report_data,
                           std::vector<std::byte>& evidence) {
  Status s = config_.provider->attest(report_data, evidence);
  if (!s.ok()) return std::move(s).with_context("handshake: local attestation provider");
  if (evidence.size() > kMaxEvidence) {
    return internal_error("handshake: local evidence larger than 65,536 bytes");
  }
  return ok_status();
}

Status SessionCore::verify_peer(std::span<const std::byte> evidence,
                                std::span<const std::byte, 32> expected) {
  auto verified = config_.verifier->verify(evidence, expected);
  if (!verified) return std::move(verified).error().with_context("handshake: peer evidence");
  Status s = config_.policy.check(*verified);
  if (!s.ok()) return std::move(s).with_context("handshake: peer evidence");
  info_.peer = std::move(*verified);
  return ok_status();
}

// --- message 1 -----------------------------------------------------------------

Status SessionCore::send_hello() {
  MYELIN_RETURN_IF_ERROR(draw_handshake_random());
  const std::size_t n = config_.suites.size();
  const std::size_t body = hello_body_size(n);
  transcript_.assign(kHeaderSize + body, std::byte{0});
  std::byte* p = transcript_.data();
  encode_header({FrameType::kHello, 0, static_cast<std::uint32_t>(body), 0}, p);
  p += kHeaderSize;
  put_u16(p, kVersion);
  p[2] = std::byte(n);
  p += 3;
  for (Suite s : config_.suites) {
    put_u16(p, static_cast<std::uint16_t>(s));
    p += 2;
  }
  p[0] = std::byte(config_.min_mode);
  p[1] = std::byte(config_.max_mode);
  put_u32(p + 2, config_.max_record);
  p += 6;
  std::memcpy(p, hs_.ephemeral->public_key().data(), kPublicKeySize);
  std::memcpy(p + kPublicKeySize, nonce_.data(), kNonceRandomSize);
  out_.append(transcript_);
  enter_state(SessionState::kAwaitResponse);
  return ok_status();
}

// --- message 1 received, message 2 sent (responder) ---------------------------

Status SessionCore::on_hello(std::span<const std::byte> frame) {
  // No keys exist yet, so nothing can be sealed: failures close silently.
  auto reject = [&](std::string why) {
    return fail(handshake_failure("Hello: " + why), CloseCode::kHandshakeFailure, false);
  };
  const std::byte* b = frame.data() + kHeaderSize;
  const std::size_t len = frame.size() - kHeaderSize;
  if (len < hello_body_size(1))
    return reject("body of " + std::to_string(len) + " bytes too short");
  const std::uint16_t version = get_u16(b);
  if (version != kVersion) return reject("unsupported version " + std::to_string(version));
  const std::size_t n = std::to_integer<std::size_t>(b[2]);
  if (n < 1 || n > kMaxSuitesOffered) return reject(std::to_string(n) + " suites offered");
  if (len != hello_body_size(n)) {
    return reject("body is " + std::to_string(len) + " bytes, expected " +
                  std::to_string(hello_body_size(n)));
  }
  const std::byte* suites = b + 3;
  const std::byte* q = suites + 2 * n;
  const auto imin = std::to_integer<std::uint8_t>(q[0]);
  const auto imax = std::to_integer<std::uint8_t>(q[1]);
  const std::uint32_t max_record = get_u32(q + 2);
  const std::span<const std::byte, 32> e_i(q + 6, 32);
  if (imin > imax || imax > 2) {
    return reject("mode range [" + std::to_string(imin) + ", " + std::to_string(imax) + "]");
  }
  if (max_record < kMinMaxRecord || max_record > kMaxMaxRecord) {
    return reject("max_record " + std::to_string(max_record) + " out of range");
  }
  std::optional<Suite> suite;
  for (std::size_t i = 0; i < n && !suite; ++i) {
    const std::uint16_t s = get_u16(suites + 2 * i);
    if (!suite_known(s)) continue;  // unknown suites are skipped, not an error
    for (Suite mine : config_.suites) {
      if (static_cast<std::uint16_t>(mine) == s) suite = mine;
    }
  }
  if (!suite) return reject("no common suite");
  const int lo = std::max<int>(imin, static_cast<int>(config_.min_mode));
  const int hi = std::min<int>(imax, static_cast<int>(config_.max_mode));
  if (lo > hi) {
    return reject("no common mode: initiator offers [" + std::to_string(imin) + ", " +
                  std::to_string(imax) + "], this responder allows [" +
                  std::to_string(static_cast<int>(config_.min_mode)) + ", " +
                  std::to_string(static_cast<int>(config_.max_mode)) + "]");
  }
  const Mode mode = static_cast<Mode>(hi);  // the strongest common mode
  info_.suite = *suite;
  info_.mode = mode;
  peer_max_record_ = max_record;
  transcript_.assign(frame.begin(), frame.end());  // T1
  const std::size_t t1_size = transcript_.size();

  MYELIN_RETURN_IF_ERROR(draw_handshake_random());
  // Header and clear part first: neither depends on the agreement (the
  // evidence binds H(T2c) only), so they can leave before it runs.
  std::byte head[kHeaderSize + kResponseClearSize];
  std::byte* clear = head + kHeaderSize;
  put_u16(clear, static_cast<std::uint16_t>(*suite));
  clear[2] = std::byte(mode);
  put_u32(clear + 3, config_.max_record);
  std::memcpy(clear + 7, hs_.ephemeral->public_key().data(), kPublicKeySize);
  std::memcpy(clear + 7 + kPublicKeySize, nonce_.data(), kNonceRandomSize);
  const std::span<const std::byte> clear_span(clear, kResponseClearSize);
  const Digest h_t2c = sha256({transcript_, clear_span});  // T2c = T1 || clear

  std::vector<std::byte>& ev = evidence_scratch_;
  ev.clear();
  if (mode != Mode::kNone) {
    static constexpr std::string_view kLabel = "msc1 responder evidence";
    const Digest report_data = sha256({str_bytes(kLabel), h_t2c});
    if (Status s = attest(report_data, ev); !s.ok()) {
      return fail(std::move(s), CloseCode::kInternalError, false);
    }
  }
  const std::size_t inner = inner_size(ev.size());
  const std::size_t body = kResponseClearSize + inner + kAeadTagSize;
  encode_header({FrameType::kResponse, 0, static_cast<std::uint32_t>(body), 0}, head);
  out_.append(head);
  transcript_.insert(transcript_.end(), std::begin(head), std::end(head));
  if (Status s = handler_->on_early_output(); !s.ok()) {
    return fail(std::move(s).with_context("handshake: writing message 2's clear part"),
                CloseCode::kInternalError, false);
  }

  // The agreement. A failure here leaves message 2 cut short after its clear
  // part; the initiator then sees the stream end mid-frame.
  if (Status s = derive_handshake_keys(e_i, h_t2c); !s.ok()) return reject(s.to_string());
  std::byte ev_len[4];
  put_u32(ev_len, static_cast<std::uint32_t>(ev.size()));
  std::array<std::byte, 32> fin;
  const Digest fin_input = sha256({std::span(transcript_).first(t1_size), clear_span, ev_len, ev});
  MYELIN_RETURN_IF_ERROR(hmac_sha256(hs_.kfin_r.span(), {fin_input}, fin));

  // The sealed part: seal(inner2) in place in the output, header || clear as AAD.
  std::byte* pt = out_.tail(inner + kAeadTagSize).data();
  std::memcpy(pt, ev_len, 4);
  if (!ev.empty()) std::memcpy(pt + 4, ev.data(), ev.size());
  std::memcpy(pt + 4 + ev.size(), fin.data(), kFinishedSize);
  MYELIN_ASSIGN_OR_RETURN(Aead aead, Aead::create(static_cast<AeadAlg>(*suite), hs_.khs_r.span()));
  const auto nonce = record_nonce(hs_.ivhs_r.span(), 0);
  MYELIN_RETURN_IF_ERROR(aead.seal(nonce, head, {pt, inner}, pt,
                                   std::span<std::byte, kTagSize>(pt + inner, kTagSize)));
  transcript_.insert(transcript_.end(), pt, pt + inner + kAeadTagSize);  // T2
  out_.commit(inner + kAeadTagSize);
  enter_state(SessionState::kAwaitFinish);
  return ok_status();
}

// --- message 2 received, message 3 sent (initiator) ---------------------------

Status SessionCore::on_response(std::span<std::byte> frame) {
  bool keys = false;
  auto reject = [&](Status why) {
    if (keys) return handshake_close_and_fail(std::move(why));
    return fail(std::move(why), CloseCode::kHandshakeFailure, false);
  };
  const std::size_t len = frame.size() - kHeaderSize;
  if (len < kResponseClearSize + inner_size(0) + kAeadTagSize) {
    return reject(
        handshake_failure("Response: body of " + std::to_string(len) + " bytes too short"));
  }
  const std::byte* clear = frame.data() + kHeaderSize;
  const std::uint16_t suite = get_u16(clear);
  const auto mode = std::to_integer<std::uint8_t>(clear[2]);
  const std::uint32_t max_record = get_u32(clear + 3);
  bool offered = false;
  for (Suite s : config_.suites) offered = offered || static_cast<std::uint16_t>(s) == suite;
  if (!offered)
    return reject(
        handshake_failure("Response: suite " + std::to_string(suite) + " was not offered"));
  if (mode < static_cast<int>(config_.min_mode) || mode > static_cast<int>(config_.max_mode)) {
    return reject(handshake_failure("Response: mode " + std::to_string(mode) +
                                    " outside this initiator's range (downgrade?)"));
  }
  if (max_record < kMinMaxRecord || max_record > kMaxMaxRecord) {
    return reject(handshake_failure("Response: max_record out of range"));
  }
  info_.suite = static_cast<Suite>(suite);
  info_.mode = static_cast<Mode>(mode);
  peer_max_record_ = max_record;

  const std::span<const std::byte> clear_span(clear, kResponseClearSize);
  const Digest h_t2c = sha256({transcript_, clear_span});
  if (Status s = derive_handshake_keys(std::span<const std::byte, 32>(clear + 7, 32), h_t2c);
      !s.ok()) {
    return reject(handshake_failure("Response: " + s.to_string()));
  }
  keys = true;
  const std::size_t t1_size = transcript_.size();
  transcript_.insert(transcript_.end(), frame.begin(), frame.end());  // T2, ciphertext as sent

  std::byte* pt = frame.data() + kHeaderSize + kResponseClearSize;
  const std::size_t inner = len - kResponseClearSize - kAeadTagSize;
  MYELIN_ASSIGN_OR_RETURN(Aead aead, Aead::create(static_cast<AeadAlg>(suite), hs_.khs_r.span()));
  if (!aead.open(record_nonce(hs_.ivhs_r.span(), 0),
                 {frame.data(), kHeaderSize + kResponseClearSize}, {pt, inner}, pt,
                 std::span<const std::byte, kTagSize>(pt + inner, kTagSize))
           .ok()) {
    return reject(handshake_failure("Response: AEAD tag does not verify"));
  }
  const std::uint32_t ev_size = get_u32(pt);
  if (ev_size != inner - inner_size(0)) {
    return reject(handshake_failure("Response: evidence length " + std::to_string(ev_size) +
                                    " does not match the frame"));
  }
  const std::span<const std::byte> ev(pt + 4, ev_size);
  std::array<std::byte, 32> fin;
  const Digest fin_input =
      sha256({std::span(transcript_).first(t1_size), clear_span, {pt, 4 + ev_size}});
  MYELIN_RETURN_IF_ERROR(hmac_sha256(hs_.kfin_r.span(), {fin_input}, fin));
  if (!equal_ct(fin, {pt + 4 + ev_size, kFinishedSize})) {
    return reject(handshake_failure("Response: finished_r does not verify"));
  }
  if (info_.mode != Mode::kNone) {
    static constexpr std::string_view kLabel = "msc1 responder evidence";
    const Digest report_data = sha256({str_bytes(kLabel), h_t2c});
    if (Status s = verify_peer(ev, report_data); !s.ok()) return reject(std::move(s));
  } else if (!ev.empty()) {
    return reject(handshake_failure("Response: evidence present in mode none"));
  }

  // Message 3.
  const Digest h_t2 = sha256({transcript_});
  std::vector<std::byte>& my_ev = evidence_scratch_;
  my_ev.clear();
  if (info_.mode == Mode::kMutual) {
    static constexpr std::string_view kLabel = "msc1 initiator evidence";
    const Digest report_data = sha256({str_bytes(kLabel), h_t2});
    if (Status s = attest(report_data, my_ev); !s.ok()) return reject(std::move(s));
  }
  std::byte ev_len[4];
  put_u32(ev_len, static_cast<std::uint32_t>(my_ev.size()));
  const Digest fin3_input = sha256({transcript_, ev_len, my_ev});
  MYELIN_RETURN_IF_ERROR(hmac_sha256(hs_.kfin_i.span(), {fin3_input}, fin));
  const std::size_t inner3 = inner_size(my_ev.size());
  const std::size_t body = inner3 + kAeadTagSize;
  std::byte* f = out_.tail(kHeaderSize + body).data();
  encode_header({FrameType::kFinish, 0, static_cast<std::uint32_t>(body), 0}, f);
  std::byte* p3 = f + kHeaderSize;
  std::memcpy(p3, ev_len, 4);
  if (!my_ev.empty()) std::memcpy(p3 + 4, my_ev.data(), my_ev.size());
  std::memcpy(p3 + 4 + my_ev.size(), fin.data(), kFinishedSize);
  MYELIN_ASSIGN_OR_RETURN(Aead aead_i, Aead::create(static_cast<AeadAlg>(suite), hs_.khs_i.span()));
  MYELIN_RETURN_IF_ERROR(aead_i.seal(record_nonce(hs_.ivhs_i.span(), 0), {f, kHeaderSize},
                                     {p3, inner3}, p3,
                                     std::span<std::byte, kTagSize>(p3 + inner3, kTagSize)));
  transcript_.insert(transcript_.end(), f, f + kHeaderSize + body);  // T3
  out_.commit(kHeaderSize + body);
  MYELIN_RETURN_IF_ERROR(derive_traffic_keys());
  finish_handshake();
  return ok_status();
}

// The initiator rejects message 2 after deriving the handshake keys: it tells
// the responder with a Close(handshake_failure) sealed under khs_i, seq 0.
Status SessionCore::handshake_close_and_fail(Status reason) {
  if (config_.role == Role::kInitiator && state_ == SessionState::kAwaitResponse) {
    auto aead = Aead::create(static_cast<AeadAlg>(info_.suite), hs_.khs_i.span());
    if (aead) {
      std::byte* f = out_.tail(kHeaderSize + kClosePayload + kAeadTagSize).data();
      encode_header({FrameType::kClose, 0, kClosePayload + kAeadTagSize, 0}, f);
      put_u16(f + kHeaderSize, static_cast<std::uint16_t>(CloseCode::kHandshakeFailure));
      if (aead->seal(record_nonce(hs_.ivhs_i.span(), 0), {f, kHeaderSize},
                     {f + kHeaderSize, kClosePayload}, f + kHeaderSize,
                     std::span<std::byte, kTagSize>(f + kHeaderSize + kClosePayload, kTagSize))
              .ok()) {
        out_.commit(kHeaderSize + kClosePayload + kAeadTagSize);
        close_sent_ = true;
      }
    }
    return fail(std::move(reason), CloseCode::kHandshakeFailure, false);
  }
  // Responder after a valid Finish whose evidence fails: traffic keys exist
  // (the initiator already uses them), so the Close is an ordinary record.
  return fail(std::move(reason), CloseCode::kHandshakeFailure, true);
}

// --- message 3 received (responder) ---------------------------------------------

Status SessionCore::on_finish(const FrameHeader& h, std::span<std::byte> frame) {
  auto reject = [&](std::string why) {
    return fail(handshake_failure(std::move(why)), CloseCode::kHandshakeFailure, false);
  };
  const auto alg = static_cast<AeadAlg>(info_.suite);
  MYELIN_ASSIGN_OR_RETURN(Aead aead, Aead::create(alg, hs_.khs_i.span()));
  const std::size_t len = frame.size() - kHeaderSize;
  std::byte* pt = frame.data() + kHeaderSize;
  if (h.type == FrameType::kClose) {
    if (len == kClosePayload + kAeadTagSize &&
        aead.open(record_nonce(hs_.ivhs_i.span(), 0), {frame.data(), kHeaderSize},
                  {pt, kClosePayload}, pt,
                  std::span<const std::byte, kTagSize>(pt + kClosePayload, kTagSize))
            .ok()) {
      return fail(authentication_failed("handshake: the initiator rejected our Response (code " +
                                        std::to_string(get_u16(pt)) + "; its log has the reason)"),
                  CloseCode::kHandshakeFailure, false);
    }
    return reject("Close during the handshake does not verify");
  }
  if (len < inner_size(0) + kAeadTagSize) return reject("Finish: body too short");
  const std::size_t t2_size = transcript_.size();
  const Digest h_t2 = sha256({transcript_});
  transcript_.insert(transcript_.end(), frame.begin(), frame.end());  // T3
  const std::size_t inner = len - kAeadTagSize;
  if (!aead.open(record_nonce(hs_.ivhs_i.span(), 0), {frame.data(), kHeaderSize}, {pt, inner}, pt,
                 std::span<const std::byte, kTagSize>(pt + inner, kTagSize))
           .ok()) {
    return reject("Finish: AEAD tag does not verify");
  }
  const std::uint32_t ev_size = get_u32(pt);
  if (ev_size != inner - inner_size(0)) return reject("Finish: evidence length mismatch");
  const std::span<const std::byte> ev(pt + 4, ev_size);
  std::array<std::byte, 32> fin;
  const Digest fin_input = sha256({std::span(transcript_).first(t2_size), {pt, 4 + ev_size}});
  MYELIN_RETURN_IF_ERROR(hmac_sha256(hs_.kfin_i.span(), {fin_input}, fin));
  if (!equal_ct(fin, {pt + 4 + ev_size, kFinishedSize})) {
    return reject("Finish: finished_i does not verify");
  }
  // Message 3 is authentic: both sides hold the same T3, so the traffic keys
  // exist even if the evidence is then refused (the Close goes under them).
  Status evidence_ok;
  if (info_.mode == Mode::kMutual) {
    static constexpr std::string_view kLabel = "msc1 initiator evidence";
    const Digest report_data = sha256({str_bytes(kLabel), h_t2});
    evidence_ok = verify_peer(ev, report_data);
  } else if (!ev.empty()) {
    evidence_ok = handshake_failure("Finish: initiator evidence present in mode " +
                                    std::string(to_string(info_.mode)));
  }
  MYELIN_RETURN_IF_ERROR(derive_traffic_keys());
  if (!evidence_ok.ok()) {
    enter_state(SessionState::kEstablished);  // only so the Close is sealed as a record
    return handshake_close_and_fail(std::move(evidence_ok));
  }
  finish_handshake();
  return ok_status();
}

}  // namespace myelin::secure::detail
