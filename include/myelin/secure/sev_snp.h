// AMD SEV-SNP attestation reports: parsing and offline verification.
//
// A report (0x4A0 bytes, versions 2 and 3 of AMD's SEV-SNP firmware ABI,
// "ATTESTATION_REPORT") is signed by the chip's VCEK with ECDSA P-384 over
// SHA-384; the VCEK certificate is signed by AMD's ASK, the ASK by AMD's root
// ARK, both with RSASSA-PSS. verify_snp_report() checks, in this order (the
// first failure is the reason returned, see docs/attestation.md):
//   1. the report parses (size, version, signature algorithm, VCEK signer);
//   2. the chain ARK -> ASK -> VCEK: the ARK's public key is one of the
//      pinned AMD roots (this names the product), each signature verifies and
//      each certificate is valid at `at`;
//   3. the report's signature verifies with the VCEK's key;
//   4. the VCEK's TCB extensions equal the report's REPORTED_TCB and its
//      hwID equals CHIP_ID;
//   5. the policy: product accepted, DEBUG not set unless allowed, REPORTED_TCB
//      at least the minimum, REPORT_DATA equal to the expected binding.
// Nothing touches the network or the wall clock: the collateral and the time
// are inputs. Revocation (AMD's CRLs) is not checked.
//
// All functions are pure and thread-safe; results own their bytes.
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

namespace myelin::secure::snp {

inline constexpr std::size_t kReportSize = 0x4A0;
inline constexpr std::size_t kSignedSize = 0x2A0;  // bytes 0x000-0x29F are signed
inline constexpr std::uint64_t kPolicyDebugBit = std::uint64_t{1} << 19;

enum class Product { kMilan, kGenoa, kTurin };
std::string_view to_string(Product p) noexcept;

// A TCB_VERSION as laid out on Milan and Genoa (byte 0 boot loader, 1 TEE,
// 6 SNP firmware, 7 microcode; bytes 2-5 reserved). Turin moved the fields;
// it is not supported yet (no pinned Turin root either).
struct Tcb {
  std::uint8_t bootloader = 0;
  std::uint8_t tee = 0;
  std::uint8_t snp = 0;
  std::uint8_t microcode = 0;

  static Tcb from_u64(std::uint64_t raw) noexcept;
  // True if every component is >= the same component of `minimum`.
  [[nodiscard]] bool at_least(const Tcb& minimum) const noexcept;
  friend bool operator==(const Tcb&, const Tcb&) = default;
};
std::string to_string(const Tcb& tcb);

// The fields of a report, decoded (little-endian integers). Offsets are in
// src/secure/attestation/sev_snp_layout.h.
struct Report {
  std::uint32_t version = 0;
  std::uint32_t guest_svn = 0;
  std::uint64_t policy = 0;
  std::array<std::byte, 16> family_id{};
  std::array<std::byte, 16> image_id{};
  std::uint32_t vmpl = 0;
  std::uint32_t signature_algo = 0;
  std::uint64_t current_tcb = 0;
  std::uint64_t platform_info = 0;
  std::uint32_t key_info = 0;  // bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 2-4 SIGNING_KEY
  std::array<std::byte, 64> report_data{};
  std::array<std::byte, 48> measurement{};
  std::array<std::byte, 32> host_data{};
  std::array<std::byte, 48> id_key_digest{};
  std::array<std::byte, 48> author_key_digest{};
  std::array<std::byte, 32> report_id{};
  std::array<std::byte, 32> report_id_ma{};
  std::uint64_t reported_tcb = 0;
  // Version 3 only (zero in version 2).
  std::uint8_t cpuid_fam_id = 0;
  std::uint8_t cpuid_mod_id = 0;
  std::uint8_t cpuid_step = 0;
  std::array<std::byte, 64> chip_id{};
  std::uint64_t committed_tcb = 0;
  std::uint64_t launch_tcb = 0;
  // The signature's R and S as big-endian 48-byte integers (the report stores
  // them little-endian in 72-byte fields whose top 24 bytes must be zero).
  std::array<std::byte, 48> sig_r{};
  std::array<std::byte, 48> sig_s{};

  [[nodiscard]] bool debug() const noexcept { return (policy & kPolicyDebugBit) != 0; }
  [[nodiscard]] unsigned signing_key() const noexcept { return (key_info >> 2) & 7u; }
};

// Decodes exactly kReportSize bytes. Rejects other sizes, versions other than
// 2 and 3, a signature algorithm other than 1 (ECDSA P-384 with SHA-384), a
// signer other than the VCEK (0) and non-zero signature padding.
Result<Report> parse_report(std::span<const std::byte> bytes);

// Certificates from AMD's key distribution service, as files hold them: the
// VCEK in DER or PEM, ASK and ARK in PEM (or DER).
struct Collateral {
  std::vector<std::byte> vcek;
  std::vector<std::byte> ask;
  std::vector<std::byte> ark;
};

// Reads vcek.der (or vcek.pem), ask.pem and ark.pem from `dir`.
Result<Collateral> load_collateral(std::string_view dir);

struct Policy {
  // REPORT_DATA must equal this (all 64 bytes); nullopt skips the check (a
  // tool inspecting evidence, never the channel).
  std::optional<std::array<std::byte, 64>> report_data;
  bool allow_debug = false;
  Tcb minimum_tcb{};
  // Empty accepts any product with a pinned root.
  std::vector<Product> products;
};

// REPORT_DATA for a channel binding: the 32-byte report_data, then 32 zeros.
std::array<std::byte, 64> binding_report_data(std::span<const std::byte, 32> report_data);

struct Verified {
  Product product = Product::kMilan;
  Report report;
  Tcb reported_tcb;
};

// Steps 1-5 above. `at` is the time at which certificates must be valid.
Result<Verified> verify_report(std::span<const std::byte> report, const Collateral& collateral,
                               const Policy& policy, std::chrono::sys_seconds at);

// Step 5 alone, on a parsed report (also what verify_report() runs last).
Status check_policy(const Report& report, Product product, const Policy& policy);

// The measurements a channel's MeasurementPolicy can name: "measurement",
// "host_data", "id_key_digest", "author_key_digest", "family_id", "image_id",
// "guest_svn" (u32 LE), "policy" (u64 LE), "reported_tcb" (u64 LE), "chip_id".
VerifiedEvidence to_evidence(const Verified& verified);

// The channel's verifier (attestation.h): evidence is one report (0x4A0 bytes). The
// policy is fixed at construction except REPORT_DATA, which must be
// binding_report_data(expected) for the session's `expected`; `now` gives
// the verification time (the wall clock in a server, a fixed time in tests).
// `recorded_report_data`, for tests only, replaces that binding with a
// recorded value so recorded real evidence can run through a handshake: it
// disables the session binding. Thread-safe if `now` is.
class Verifier final : public AttestationVerifier {
 public:
  using WallClock = std::function<std::chrono::sys_seconds()>;
  Verifier(Collateral collateral, Policy policy, WallClock now,
           std::optional<std::array<std::byte, 64>> recorded_report_data = std::nullopt);
  [[nodiscard]] std::string_view kind() const noexcept override { return "sev-snp"; }
  Result<VerifiedEvidence> verify(std::span<const std::byte> evidence,
                                  std::span<const std::byte, 32> expected) const override;

 private:
  Collateral collateral_;
  Policy policy_;
  WallClock now_;
  std::optional<std::array<std::byte, 64>> recorded_report_data_;
};

}  // namespace myelin::secure::snp
