// Fuzzes the SEV-SNP side of attestation: the report parser, the policy
// check on what it parses, and the certificate parsers the VCEK chain goes
// through (the input as a DER or PEM certificate, and as the VCEK of a
// verification whose chain must then fail or name its product).
// Checked: nothing crashes or leaks; a parsed report re-reads the fields it
// claims (version 2 or 3); nothing made from fuzz bytes verifies.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "myelin/secure/sev_snp.h"
#include "src/secure/attestation/x509.h"

using namespace myelin::secure;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto report = snp::parse_report(in);
  if (report) {
    if (report->version != 2 && report->version != 3) std::abort();
    (void)snp::check_policy(*report, snp::Product::kMilan, snp::Policy{});
  }
  (void)detail::parse_certificate(in, "fuzz");
  // The input as the VCEK, with itself as ASK and ARK: a self-made root is
  // never one of AMD's pinned keys, so this must not verify.
  snp::Collateral c{std::vector<std::byte>(in.begin(), in.end()),
                    std::vector<std::byte>(in.begin(), in.end()),
                    std::vector<std::byte>(in.begin(), in.end())};
  std::vector<std::byte> zero_report(snp::kReportSize);
  zero_report[0] = std::byte{2};
  zero_report[0x34] = std::byte{1};
  if (snp::verify_report(zero_report, c, snp::Policy{}, std::chrono::sys_seconds{}).has_value()) {
    std::abort();
  }
  return 0;
}
