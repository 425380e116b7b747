// Attestation policy: which TEE evidence a channel accepts, from a TOML file
// (docs/attestation.md, "Policy file").
//
// An AttestationPolicy names the accepted platforms (SEV-SNP, TDX), per
// platform the accepted measurements (one value or a set), the minimum TCB,
// whether debug guests are accepted, and the collateral directory. The parser
// refuses every unknown key, wrong type and bad hex value with the file, line
// and key. PolicyVerifier is the channel verifier built from a policy and its
// collateral: it recognises the evidence format, refuses a platform the
// policy does not accept, runs the platform's verifier with the session's
// binding and the verification time from its clock, then the measurement
// rules.
//
// All types are values; PolicyVerifier is immutable after create() and
// thread-safe if its clock is.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/secure/attestation.h"
#include "myelin/secure/sev_snp.h"
#include "myelin/secure/tdx.h"

namespace myelin::secure {

enum class Platform { kSevSnp, kTdx };
// "sev-snp", "tdx": the names the policy file and the verifiers' kind() use.
std::string_view to_string(Platform p) noexcept;

struct AttestationPolicy {
  std::vector<Platform> platforms;  // never empty in a parsed policy
  // Collateral directory, resolved against the policy file's directory;
  // empty if the file names none (the caller must then give one).
  std::string collateral_dir;

  struct Snp {
    snp::Policy policy;              // allow_debug, minimum_tcb, products; report_data unset
    MeasurementPolicy measurements;  // rules "measurement", "host_data"
  } snp;

  struct Tdx {
    tdx::Policy policy;  // allow_debug, accepted_tcb_statuses; tcb_info_json from collateral
    MeasurementPolicy measurements;  // rules "mrtd", "rtmr0".."rtmr3", "mrconfigid"
    // True if the file set tcb_statuses: the collateral must then hold
    // tcb_info.json (a policy that names TCB statuses never skips the TCB).
    bool require_tcb_info = false;
  } tdx;

  [[nodiscard]] bool accepts(Platform p) const noexcept;
};

// Parses a policy document. `origin` names it in errors ("policy.toml:7:
// 'sev-snp.measurement': ..."); a relative collateral path is resolved
// against `base_dir`.
Result<AttestationPolicy> parse_attestation_policy(std::string_view text, std::string_view origin,
                                                   std::string_view base_dir = {});
// Reads and parses the file at `path`.
Result<AttestationPolicy> load_attestation_policy(std::string_view path);

// The channel verifier of a policy. Evidence is a bare SEV-SNP report or TDX
// quote (recognised by its header); REPORT_DATA must be the session's
// binding (binding_report_data), and `now` gives the verification time.
class PolicyVerifier final : public AttestationVerifier {
 public:
  using WallClock = std::function<std::chrono::sys_seconds()>;

  struct Options {
    // Overrides the policy's collateral directory when not empty.
    std::string collateral_dir;
    // The verification time; default: the system clock.
    WallClock now;
    // Tests only: replaces the session binding with recorded REPORT_DATA so
    // recorded real evidence can run through a handshake. This disables the
    // freshness the binding gives; nothing but a test may set it.
    std::optional<std::array<std::byte, 64>> recorded_report_data;
  };

  // Loads the collateral each accepted platform needs (SEV-SNP: vcek, ask,
  // ark; TDX: tcb_info.json when present or required).
  static Result<std::unique_ptr<PolicyVerifier>> create(AttestationPolicy policy, Options options);

  // "sev-snp" or "tdx" if the policy accepts one platform, else "tee".
  [[nodiscard]] std::string_view kind() const noexcept override;
  Result<VerifiedEvidence> verify(std::span<const std::byte> evidence,
                                  std::span<const std::byte, 32> expected) const override;

  [[nodiscard]] const AttestationPolicy& policy() const noexcept { return policy_; }

 private:
  PolicyVerifier(AttestationPolicy policy, Options options)
      : policy_(std::move(policy)), options_(std::move(options)) {}

  AttestationPolicy policy_;
  Options options_;
  snp::Collateral snp_collateral_;
};

// What kind of evidence the bytes look like, from the header alone: a TDX
// quote (version 4, TEE type 0x81) or an SEV-SNP report (0x4A0 bytes,
// version 2 or 3). nullopt if neither.
std::optional<Platform> detect_platform(std::span<const std::byte> evidence) noexcept;

}  // namespace myelin::secure
