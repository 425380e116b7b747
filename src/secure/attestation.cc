#include "myelin/secure/attestation.h"

#include <cstring>
#include <utility>

#include "src/secure/crypto.h"
#include "src/secure/wire.h"

namespace myelin::secure {

using detail::equal_ct;

std::vector<std::byte> to_bytes(std::string_view text) {
  std::vector<std::byte> out(text.size());
  if (!text.empty()) std::memcpy(out.data(), text.data(), text.size());
  return out;
}

Status MeasurementPolicy::check(const VerifiedEvidence& evidence) const {
  for (const Rule& rule : rules) {
    const Measurement* found = nullptr;
    for (const Measurement& m : evidence.measurements) {
      if (m.name == rule.name) {
        found = &m;
        break;
      }
    }
    if (found == nullptr) {
      return authentication_failed("attestation policy: measurement '" + rule.name +
                                   "' missing from " + evidence.kind + " evidence of '" +
                                   evidence.identity + "'");
    }
    bool match = false;
    // Every allowed value is compared, so timing does not reveal which one matched.
    for (const auto& allowed : rule.allowed) match = equal_ct(found->value, allowed) || match;
    if (!match) {
      return authentication_failed("attestation policy: measurement '" + rule.name + "' of '" +
                                   evidence.identity + "' (" + std::to_string(found->value.size()) +
                                   " bytes) matches none of the " +
                                   std::to_string(rule.allowed.size()) + " allowed values");
    }
  }
  return ok_status();
}

// Mock evidence (section 6):
//   "MOCK" || u8 id_len || identity || u8 n ||
//   n x (u8 name_len || name || u16 value_len || value) ||
//   32 report_data || 32 HMAC-SHA256(mock_key, everything before)
MockProvider::MockProvider(std::vector<std::byte> key, std::string identity,
                           std::vector<Measurement> measurements)
    : key_(std::move(key)),
      identity_(std::move(identity)),
      measurements_(std::move(measurements)) {}

Status MockProvider::attest(std::span<const std::byte, 32> report_data,
                            std::vector<std::byte>& evidence) const {
  if (identity_.size() > 255 || measurements_.size() > 255) {
    return invalid_argument("mock provider: identity or measurement list too long");
  }
  evidence.clear();
  // resize + memcpy rather than insert(): GCC 12 misreports insert() of a
  // short literal as an overflow (-Warray-bounds false positive).
  auto put = [&](const void* p, std::size_t n) {
    const std::size_t at = evidence.size();
    evidence.resize(at + n);
    if (n != 0) std::memcpy(evidence.data() + at, p, n);
  };
  auto put_u8 = [&](std::size_t v) { evidence.push_back(std::byte(v)); };
  put("MOCK", 4);
  put_u8(identity_.size());
  put(identity_.data(), identity_.size());
  put_u8(measurements_.size());
  for (const Measurement& m : measurements_) {
    if (m.name.size() > 255 || m.value.size() > 65535) {
      return invalid_argument("mock provider: measurement '" + m.name + "' too long");
    }
    put_u8(m.name.size());
    put(m.name.data(), m.name.size());
    put_u8(m.value.size() >> 8);
    put_u8(m.value.size() & 0xff);
    put(m.value.data(), m.value.size());
  }
  put(report_data.data(), 32);
  std::array<std::byte, 32> mac;
  MYELIN_RETURN_IF_ERROR(detail::hmac_sha256(key_, {evidence}, mac));
  put(mac.data(), mac.size());
  if (evidence.size() > detail::kMaxEvidence) {
    return invalid_argument("mock provider: evidence larger than 65,536 bytes");
  }
  return ok_status();
}

MockVerifier::MockVerifier(std::vector<std::byte> key) : key_(std::move(key)) {}

Result<VerifiedEvidence> MockVerifier::verify(std::span<const std::byte> ev,
                                              std::span<const std::byte, 32> expected) const {
  // Authenticate first, parse second: nothing in unauthenticated bytes is
  // trusted, not even a length.
  if (ev.size() < 4 + 1 + 1 + 32 + 32 || std::memcmp(ev.data(), "MOCK", 4) != 0) {
    return authentication_failed("mock evidence: bad magic or too short (" +
                                 std::to_string(ev.size()) + " bytes)");
  }
  const std::size_t body = ev.size() - 32;
  std::array<std::byte, 32> mac;
  MYELIN_RETURN_IF_ERROR(detail::hmac_sha256(key_, {ev.first(body)}, mac));
  if (!equal_ct(mac, ev.subspan(body))) {
    return authentication_failed("mock evidence: HMAC does not verify (wrong key or altered)");
  }
  if (!equal_ct(ev.subspan(body - 32, 32), expected)) {
    return authentication_failed(
        "mock evidence: report_data mismatch (evidence not bound to this handshake)");
  }
  VerifiedEvidence out;
  out.kind = "mock";
  std::size_t pos = 4;
  const std::size_t end = body - 32;
  auto need = [&](std::size_t n) { return end - pos >= n; };
  auto u8 = [&]() { return std::to_integer<std::size_t>(ev[pos++]); };
  const std::size_t id_len = u8();
  if (!need(id_len + 1)) return authentication_failed("mock evidence: truncated identity");
  out.identity.assign(reinterpret_cast<const char*>(ev.data() + pos), id_len);
  pos += id_len;
  const std::size_t n = u8();
  for (std::size_t i = 0; i < n; ++i) {
    if (!need(1)) return authentication_failed("mock evidence: truncated measurement");
    const std::size_t name_len = u8();
    if (!need(name_len + 2)) return authentication_failed("mock evidence: truncated name");
    Measurement m;
    m.name.assign(reinterpret_cast<const char*>(ev.data() + pos), name_len);
    pos += name_len;
    const std::size_t value_len = detail::get_u16(ev.data() + pos);
    pos += 2;
    if (!need(value_len)) return authentication_failed("mock evidence: truncated value");
    m.value.assign(ev.data() + pos, ev.data() + pos + value_len);
    pos += value_len;
    out.measurements.push_back(std::move(m));
  }
  if (pos != end) return authentication_failed("mock evidence: trailing bytes");
  return out;
}

Status NoneProvider::attest(std::span<const std::byte, 32>,
                            std::vector<std::byte>& evidence) const {
  evidence.clear();
  return ok_status();
}

Result<VerifiedEvidence> NoneVerifier::verify(std::span<const std::byte> evidence,
                                              std::span<const std::byte, 32>) const {
  if (!evidence.empty()) return authentication_failed("none verifier: unexpected evidence");
  return VerifiedEvidence{"none", "", {}};
}

}  // namespace myelin::secure
