// The whole path from the channel to the verifiers on real bytes: a
// responder presents recorded real evidence (the SEV-SNP report and the TDX
// quote of testdata/) through a test provider, and the initiator verifies it
// with snp::Verifier / tdx::Verifier. The evidence cannot carry this
// session's binding, so the verifiers run with the recorded REPORT_DATA in
// its place (test-only); a verifier in binding mode refuses the same bytes.
#include <gtest/gtest.h>

#include "myelin/secure/sev_snp.h"
#include "myelin/secure/tdx.h"
#include "src/secure/attestation/testdata_util.h"
#include "src/secure/test_util.h"

namespace myelin::secure {
namespace {

namespace td = secure::testdata;
using testing::Pair;

// Presents the same recorded evidence whatever report_data it is asked to bind.
class RecordedProvider final : public AttestationProvider {
 public:
  RecordedProvider(std::string kind, std::vector<std::byte> evidence)
      : kind_(std::move(kind)), evidence_(std::move(evidence)) {}
  [[nodiscard]] std::string_view kind() const noexcept override { return kind_; }
  Status attest(std::span<const std::byte, 32>, std::vector<std::byte>& evidence) const override {
    evidence = evidence_;
    return ok_status();
  }

 private:
  std::string kind_;
  std::vector<std::byte> evidence_;
};

std::array<std::byte, 64> at(const std::vector<std::byte>& b, std::size_t offset) {
  std::array<std::byte, 64> out{};
  std::copy(b.begin() + offset, b.begin() + offset + 64, out.begin());
  return out;
}

SessionConfig responder(const AttestationProvider& p) {
  SessionConfig c;
  c.role = Role::kResponder;
  c.min_mode = c.max_mode = Mode::kResponder;
  c.provider = &p;
  return c;
}

SessionConfig initiator(const AttestationVerifier& v, MeasurementPolicy policy) {
  SessionConfig c;
  c.role = Role::kInitiator;
  c.min_mode = c.max_mode = Mode::kResponder;
  c.verifier = &v;
  c.policy = std::move(policy);
  return c;
}

TEST(HandshakeEvidence, RecordedSevSnpReportThroughTheChannel) {
  const auto report = td::unhex(td::read(td::dir("sev-snp") + "/report.hex"));
  auto collateral = snp::load_collateral(td::dir("sev-snp"));
  ASSERT_TRUE(collateral) << collateral.error().to_string();
  RecordedProvider provider("sev-snp", report);
  auto now = [] { return td::utc(2026, 12, 7); };
  snp::Verifier verifier(*collateral, snp::Policy{}, now, at(report, 0x50));
  const std::vector<std::byte> measurement(report.begin() + 0x90, report.begin() + 0xC0);
  Pair p(initiator(verifier, {{{"measurement", {measurement}}}}), responder(provider));
  p.handshake();
  ASSERT_TRUE(p.ih.established) << p.ih.reason.to_string();
  ASSERT_TRUE(p.ih.info.peer.has_value());
  EXPECT_EQ(p.ih.info.peer->kind, "sev-snp");
  EXPECT_NE(p.ih.info.peer->identity.find("Milan"), std::string::npos);

  // In binding mode the recorded report cannot bind this session: refused.
  snp::Verifier bound(*collateral, snp::Policy{}, now);
  Pair q(initiator(bound, {}), responder(provider));
  q.handshake();
  EXPECT_FALSE(q.ih.established);
  EXPECT_NE(q.ih.reason.message().find("REPORT_DATA does not carry the expected binding"),
            std::string_view::npos)
      << q.ih.reason.to_string();
  // A measurement the policy does not allow: refused.
  auto other = measurement;
  other[0] ^= std::byte{1};
  Pair m(initiator(verifier, {{{"measurement", {other}}}}), responder(provider));
  m.handshake();
  EXPECT_FALSE(m.ih.established);
  EXPECT_NE(m.ih.reason.message().find("measurement 'measurement'"), std::string_view::npos)
      << m.ih.reason.to_string();
}

TEST(HandshakeEvidence, RecordedTdxQuoteThroughTheChannel) {
  const auto quote = td::read(td::dir("tdx") + "/quote.dat");
  RecordedProvider provider("tdx", quote);
  auto now = [] { return td::utc(2023, 7, 1, 1); };
  tdx::Verifier verifier(tdx::Policy{}, now, at(quote, 48 + 520));
  const std::vector<std::byte> mrtd(quote.begin() + 48 + 136, quote.begin() + 48 + 184);
  Pair p(initiator(verifier, {{{"mrtd", {mrtd}}}}), responder(provider));
  p.handshake();
  ASSERT_TRUE(p.ih.established) << p.ih.reason.to_string();
  ASSERT_TRUE(p.ih.info.peer.has_value());
  EXPECT_EQ(p.ih.info.peer->kind, "tdx");

  tdx::Verifier expired(
      tdx::Policy{}, [] { return td::utc(2053, 7, 1); }, at(quote, 48 + 520));
  Pair q(initiator(expired, {}), responder(provider));
  q.handshake();
  EXPECT_FALSE(q.ih.established);
  EXPECT_NE(q.ih.reason.message().find("expired"), std::string_view::npos)
      << q.ih.reason.to_string();
}

}  // namespace
}  // namespace myelin::secure
