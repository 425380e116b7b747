// Intel TDX quotes (version 4, ECDSA P-256): parsing and offline verification.
//
// A quote is a header and a TD report (the signed part, 632 bytes), then the
// attestation key's signature over them, the attestation key, and
// certification data of type 6: the quoting enclave's (QE) report, its
// signature by the PCK key, the QE auth data and, as type 5, the PCK
// certificate chain (PEM) up to Intel's SGX Root CA. verify_quote() checks,
// in this order (the first failure is the reason; docs/attestation.md):
//   1. the quote parses (version 4, ECDSA P-256, TEE type TDX, every length
//      within the quote, no trailing bytes);
//   2. the PCK chain: the root's public key is Intel's pinned SGX Root CA key,
//      each certificate is signed by the next and valid at `at`;
//   3. the QE report's signature verifies with the PCK leaf's key;
//   4. the QE report data is SHA-256(attestation key || QE auth data) followed
//      by 32 zero bytes (this binds the attestation key to the QE);
//   5. the attestation key's signature over header and TD report;
//   6. with TCB info in the policy: the TCB level (tdx/README.md algorithm,
//      docs/attestation.md) must have a status the policy accepts;
//   7. the policy: DEBUG TD attribute, REPORT_DATA binding.
// MRTD, RTMR0-3 and the other measurements are returned for a
// MeasurementPolicy (to_evidence). The TCB info's and QE identity's own
// signatures and Intel's CRLs are not checked (their issuer chain is not in
// the collateral); see docs/attestation.md.
//
// All functions are pure and thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/secure/attestation.h"

namespace myelin::secure::tdx {

inline constexpr std::size_t kHeaderSize = 48;
inline constexpr std::size_t kTdReportSize = 584;
inline constexpr std::size_t kSignedSize = kHeaderSize + kTdReportSize;  // 632
inline constexpr std::size_t kQeReportSize = 384;
inline constexpr std::size_t kMaxQuoteSize = 64 * 1024;
inline constexpr std::uint64_t kTdAttributeDebug = 1;  // TUD.DEBUG, bit 0

using Mr = std::array<std::byte, 48>;

struct TdReport {
  std::array<std::byte, 16> tee_tcb_svn{};
  Mr mr_seam{};
  Mr mr_signer_seam{};
  std::uint64_t seam_attributes = 0;
  std::uint64_t td_attributes = 0;
  std::uint64_t xfam = 0;
  Mr mr_td{};
  Mr mr_config_id{};
  Mr mr_owner{};
  Mr mr_owner_config{};
  std::array<Mr, 4> rtmr{};
  std::array<std::byte, 64> report_data{};
};

// The SGX report body of the quoting enclave.
struct QeReport {
  std::array<std::byte, 16> cpu_svn{};
  std::uint32_t misc_select = 0;
  std::array<std::byte, 16> attributes{};
  std::array<std::byte, 32> mr_enclave{};
  std::array<std::byte, 32> mr_signer{};
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  std::array<std::byte, 64> report_data{};
};

struct Quote {
  std::uint16_t version = 0;
  std::uint16_t attestation_key_type = 0;
  std::uint32_t tee_type = 0;
  std::array<std::byte, 16> qe_vendor_id{};
  TdReport td;
  std::array<std::byte, 64> signature{};        // r || s, big-endian
  std::array<std::byte, 64> attestation_key{};  // x || y, big-endian
  std::array<std::byte, kQeReportSize> qe_report_bytes{};
  QeReport qe_report;
  std::array<std::byte, 64> qe_report_signature{};
  std::vector<std::byte> qe_auth_data;
  std::string pck_chain_pem;
};

// Decodes a quote of at most kMaxQuoteSize bytes.
Result<Quote> parse_quote(std::span<const std::byte> bytes);

// The TCB the PCK certificate was issued for, from Intel's SGX extensions
// (OID 1.2.840.113741.1.13.1).
struct PckTcb {
  std::array<std::uint8_t, 16> sgx_components{};
  std::uint16_t pce_svn = 0;
  std::array<std::byte, 6> fmspc{};
};

// The TCB-level algorithm of docs/attestation.md over a TCB info JSON
// document (Intel PCS v4, "tcbInfo" id TDX): returns the status string of
// the first level that matches ("UpToDate", "OutOfDate", ...), or an error
// if the FMSPC differs, no level matches or the level's TDX module SVN
// (index 1) differs from the TD report's.
Result<std::string> evaluate_tcb(std::string_view tcb_info_json, const PckTcb& pck,
                                 std::span<const std::byte, 16> tee_tcb_svn,
                                 std::chrono::sys_seconds at);

struct Policy {
  // REPORT_DATA must equal this; nullopt skips the check (tools only).
  std::optional<std::array<std::byte, 64>> report_data;
  bool allow_debug = false;
  // TCB info JSON (Intel PCS). Empty: the TCB level is not evaluated.
  std::string tcb_info_json;
  std::vector<std::string> accepted_tcb_statuses = {"UpToDate"};
};

// REPORT_DATA for a channel binding: the 32-byte report_data, then 32 zeros.
std::array<std::byte, 64> binding_report_data(std::span<const std::byte, 32> report_data);

struct Verified {
  Quote quote;
  PckTcb pck_tcb;
  std::string tcb_status;  // empty when the policy gave no TCB info
};

Result<Verified> verify_quote(std::span<const std::byte> quote, const Policy& policy,
                              std::chrono::sys_seconds at);

// Step 7 alone, on a parsed quote.
Status check_policy(const Quote& quote, const Policy& policy);

// Measurements for a MeasurementPolicy: "mrtd", "rtmr0".."rtmr3",
// "mrconfigid", "mrowner", "mrownerconfig", "mrseam", "td_attributes" (u64
// LE), "xfam" (u64 LE), "tee_tcb_svn".
VerifiedEvidence to_evidence(const Verified& verified);

// The channel's verifier (attestation.h): evidence is one quote. The
// policy is fixed at construction except REPORT_DATA, which must be
// binding_report_data(expected) for the session's `expected`; `now` gives
// the verification time (the wall clock in a server, a fixed time in tests).
// `recorded_report_data`, for tests only, replaces that binding with a
// recorded value so recorded real evidence can run through a handshake: it
// disables the session binding. Thread-safe if `now` is.
class Verifier final : public AttestationVerifier {
 public:
  using WallClock = std::function<std::chrono::sys_seconds()>;
  Verifier(Policy policy, WallClock now,
           std::optional<std::array<std::byte, 64>> recorded_report_data = std::nullopt);
  [[nodiscard]] std::string_view kind() const noexcept override { return "tdx"; }
  Result<VerifiedEvidence> verify(std::span<const std::byte> evidence,
                                  std::span<const std::byte, 32> expected) const override;

 private:
  Policy policy_;
  WallClock now_;
  std::optional<std::array<std::byte, 64>> recorded_report_data_;
};

}  // namespace myelin::secure::tdx
