// Attestation: who is on the other end of a secure channel, and what code it runs.
//
// A provider turns a 32-byte `report_data` (which the handshake derives from
// the transcript, so evidence is bound to one session) into evidence bytes;
// a verifier checks evidence against the report_data it expects and returns
// the verified identity and measurements; a MeasurementPolicy then decides
// whether those measurements are acceptable. Real TEE formats (SEV-SNP, TDX,
// Nitro) implement the same two interfaces: evidence of a few KB, and a
// verify() that may take milliseconds (it runs on the thread that drives the
// session). myelin ships `mock` (tests; an HMAC under a shared test key) and
// `none` (development: no evidence at all).
//
// Providers and verifiers are immutable after construction and must be safe
// to call from several threads at once; sessions only borrow them.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/status.h"

namespace myelin::secure {

using ReportData = std::array<std::byte, 32>;

struct Measurement {
  std::string name;
  std::vector<std::byte> value;
};

struct VerifiedEvidence {
  std::string kind;      // "mock", "none", ...
  std::string identity;  // who signed the evidence (platform / workload id)
  std::vector<Measurement> measurements;
};

class AttestationProvider {
 public:
  virtual ~AttestationProvider() = default;
  [[nodiscard]] virtual std::string_view kind() const noexcept = 0;
  // Replaces `evidence` with evidence that binds `report_data` (at most
  // 65,536 bytes).
  virtual Status attest(std::span<const std::byte, 32> report_data,
                        std::vector<std::byte>& evidence) const = 0;
};

class AttestationVerifier {
 public:
  virtual ~AttestationVerifier() = default;
  [[nodiscard]] virtual std::string_view kind() const noexcept = 0;
  // ok only if `evidence` is authentic and binds exactly `expected`. Errors
  // are precise ("mock evidence: report_data mismatch"); they stay local.
  virtual Result<VerifiedEvidence> verify(std::span<const std::byte> evidence,
                                          std::span<const std::byte, 32> expected) const = 0;
};

// The measurements a channel accepts. For every rule, the evidence must carry
// a measurement with that name whose value equals (constant time) one of the
// allowed values. Measurements the policy does not name are ignored; an empty
// policy accepts any authentic evidence.
struct MeasurementPolicy {
  struct Rule {
    std::string name;
    std::vector<std::vector<std::byte>> allowed;
  };
  std::vector<Rule> rules;

  [[nodiscard]] Status check(const VerifiedEvidence& evidence) const;
};

// --- mock: for tests (docs/secure-channel.md section 6) ----------------------

class MockProvider final : public AttestationProvider {
 public:
  // `key` is the test secret shared with MockVerifier.
  MockProvider(std::vector<std::byte> key, std::string identity,
               std::vector<Measurement> measurements);
  [[nodiscard]] std::string_view kind() const noexcept override { return "mock"; }
  Status attest(std::span<const std::byte, 32> report_data,
                std::vector<std::byte>& evidence) const override;

 private:
  std::vector<std::byte> key_;
  std::string identity_;
  std::vector<Measurement> measurements_;
};

class MockVerifier final : public AttestationVerifier {
 public:
  explicit MockVerifier(std::vector<std::byte> key);
  [[nodiscard]] std::string_view kind() const noexcept override { return "mock"; }
  Result<VerifiedEvidence> verify(std::span<const std::byte> evidence,
                                  std::span<const std::byte, 32> expected) const override;

 private:
  std::vector<std::byte> key_;
};

// --- none: development only ---------------------------------------------------

class NoneProvider final : public AttestationProvider {
 public:
  [[nodiscard]] std::string_view kind() const noexcept override { return "none"; }
  Status attest(std::span<const std::byte, 32> report_data,
                std::vector<std::byte>& evidence) const override;
};

// Accepts only empty evidence (which the channel allows only in mode `none`).
class NoneVerifier final : public AttestationVerifier {
 public:
  [[nodiscard]] std::string_view kind() const noexcept override { return "none"; }
  Result<VerifiedEvidence> verify(std::span<const std::byte> evidence,
                                  std::span<const std::byte, 32> expected) const override;
};

// Bytes of a string, for building measurements and keys in tests and tools.
std::vector<std::byte> to_bytes(std::string_view text);

}  // namespace myelin::secure
