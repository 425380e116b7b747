// PolicyVerifier (include/myelin/secure/attestation_policy.h): the channel
// verifier that runs the SEV-SNP or TDX verifier a policy accepts, then the
// policy's measurement rules.
#include <cstring>
#include <filesystem>

#include "myelin/secure/attestation_policy.h"
#include "src/secure/attestation/x509.h"

namespace myelin::secure {
namespace {

std::uint32_t le32(std::span<const std::byte> b, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v |= std::to_integer<std::uint32_t>(b[at + i]) << (8 * i);
  return v;
}

std::string_view evidence_name(Platform p) {
  return p == Platform::kSevSnp ? "an SEV-SNP report" : "a TDX quote";
}

std::string accepted_list(const AttestationPolicy& policy) {
  std::string out;
  for (Platform p : policy.platforms) {
    if (!out.empty()) out += ", ";
    out += to_string(p);
  }
  return out;
}

}  // namespace

std::optional<Platform> detect_platform(std::span<const std::byte> evidence) noexcept {
  if (evidence.size() >= tdx::kHeaderSize && (le32(evidence, 0) & 0xFFFFu) == 4 &&
      le32(evidence, 4) == 0x81) {
    return Platform::kTdx;
  }
  if (evidence.size() == snp::kReportSize) {
    const std::uint32_t version = le32(evidence, 0);
    if (version == 2 || version == 3) return Platform::kSevSnp;
  }
  return std::nullopt;
}

Result<std::unique_ptr<PolicyVerifier>> PolicyVerifier::create(AttestationPolicy policy,
                                                               Options options) {
  if (policy.platforms.empty()) {
    return invalid_argument("attestation policy: no platform accepted");
  }
  if (!options.now) {
    options.now = [] {
      return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    };
  }
  if (options.collateral_dir.empty()) options.collateral_dir = policy.collateral_dir;
  const std::string dir = options.collateral_dir;  // a copy: `options` is moved below
  const bool need_dir = policy.accepts(Platform::kSevSnp) ||
                        (policy.accepts(Platform::kTdx) && policy.tdx.require_tcb_info);
  if (need_dir && dir.empty()) {
    return invalid_argument(
        "attestation policy: no collateral directory (the policy names none and none was given)");
  }
  std::unique_ptr<PolicyVerifier> v(new PolicyVerifier(std::move(policy), std::move(options)));
  if (v->policy_.accepts(Platform::kSevSnp)) {
    MYELIN_ASSIGN_OR_RETURN(v->snp_collateral_, snp::load_collateral(dir));
  }
  if (v->policy_.accepts(Platform::kTdx) && !dir.empty()) {
    const std::string path = dir + "/tcb_info.json";
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      MYELIN_ASSIGN_OR_RETURN(auto bytes, detail::read_file_bytes(path));
      v->policy_.tdx.policy.tcb_info_json.assign(reinterpret_cast<const char*>(bytes.data()),
                                                 bytes.size());
    } else if (v->policy_.tdx.require_tcb_info) {
      return not_found(path +
                       ": not found, but the policy names tdx.tcb_statuses, which need TCB info");
    } else if (!std::filesystem::is_directory(dir, ec)) {
      return not_found(dir + ": not a directory (collateral)");
    }
  }
  return v;
}

std::string_view PolicyVerifier::kind() const noexcept {
  return policy_.platforms.size() == 1 ? to_string(policy_.platforms.front()) : "tee";
}

Result<VerifiedEvidence> PolicyVerifier::verify(std::span<const std::byte> evidence,
                                                std::span<const std::byte, 32> expected) const {
  std::optional<Platform> platform = detect_platform(evidence);
  if (!platform) {
    // With one platform its parser names the precise defect (size, version, ...).
    if (policy_.platforms.size() != 1) {
      return authentication_failed("attestation evidence (" + std::to_string(evidence.size()) +
                                   " bytes) is neither an SEV-SNP report nor a TDX quote");
    }
    platform = policy_.platforms.front();
  } else if (!policy_.accepts(*platform)) {
    return authentication_failed("attestation evidence is " +
                                 std::string(evidence_name(*platform)) +
                                 ", but the policy accepts only " + accepted_list(policy_));
  }
  const auto at = options_.now();
  VerifiedEvidence out;
  if (*platform == Platform::kSevSnp) {
    snp::Policy p = policy_.snp.policy;
    p.report_data = options_.recorded_report_data ? *options_.recorded_report_data
                                                  : snp::binding_report_data(expected);
    MYELIN_ASSIGN_OR_RETURN(auto verified, snp::verify_report(evidence, snp_collateral_, p, at));
    out = snp::to_evidence(verified);
    MYELIN_RETURN_IF_ERROR(policy_.snp.measurements.check(out));
  } else {
    tdx::Policy p = policy_.tdx.policy;
    p.report_data = options_.recorded_report_data ? *options_.recorded_report_data
                                                  : tdx::binding_report_data(expected);
    MYELIN_ASSIGN_OR_RETURN(auto verified, tdx::verify_quote(evidence, p, at));
    out = tdx::to_evidence(verified);
    MYELIN_RETURN_IF_ERROR(policy_.tdx.measurements.check(out));
  }
  return out;
}

}  // namespace myelin::secure
