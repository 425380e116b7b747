#include "myelin/secure/sev_snp.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <string>

#include "src/secure/attestation/testdata_util.h"

namespace myelin::secure::snp {
namespace {

namespace td = secure::testdata;

// The real report of testdata/sev-snp (Milan, version 2, from virtee/sev).
struct Fixture {
  std::vector<std::byte> report = td::unhex(td::read(td::dir("sev-snp") + "/report.hex"));
  Collateral collateral = [] {
    auto c = load_collateral(td::dir("sev-snp"));
    EXPECT_TRUE(c.has_value()) << c.error().to_string();
    return c ? std::move(*c) : Collateral{};
  }();
  Policy policy = [this] {
    Policy p;
    std::array<std::byte, 64> rd{};
    std::copy(report.begin() + 0x50, report.begin() + 0x90, rd.begin());
    p.report_data = rd;
    return p;
  }();
};

// Well inside every certificate's validity (VCEK 2023-04-03 .. 2030-04-03).
const auto kAt = td::utc(2026, 12, 7);

bool contains(const Status& s, std::string_view what) {
  return s.message().find(what) != std::string_view::npos;
}

TEST(SevSnp, RealMilanReportVerifies) {
  Fixture f;
  ASSERT_EQ(f.report.size(), kReportSize);
  auto v = verify_report(f.report, f.collateral, f.policy, kAt);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_EQ(v->product, Product::kMilan);
  EXPECT_EQ(v->report.version, 2u);
  EXPECT_EQ(v->reported_tcb, (Tcb{3, 0, 8, 0x73}));
  EXPECT_FALSE(v->report.debug());
  const VerifiedEvidence e = to_evidence(*v);
  EXPECT_EQ(e.kind, "sev-snp");
  EXPECT_EQ(e.measurements.front().name, "measurement");
  EXPECT_EQ(e.measurements.front().value.size(), 48u);
}

TEST(SevSnp, EveryByteOfTheSignedRegionAndSignatureIsCovered) {
  Fixture f;
  // 0x000-0x29F signed, 0x2A0-0x32F R and S (each 72 bytes).
  for (std::size_t i = 0; i < 0x330; ++i) {
    std::vector<std::byte> bad = f.report;
    bad[i] ^= std::byte{0x01};
    auto v = verify_report(bad, f.collateral, f.policy, kAt);
    ASSERT_FALSE(v) << "flip at byte " << i << " accepted";
    const Status& s = v.error();
    // The parser refuses values it does not support (a version other than 2
    // or 3, another signature algorithm, non-zero R/S padding); every other
    // flip (byte 0 turns version 2 into 3) must be caught by the signature.
    const bool parse = (i >= 1 && i < 4) || (i >= 0x34 && i < 0x38) ||
                       (i >= 0x2A0 + 48 && i < 0x2A0 + 72) || i >= 0x2E8 + 48;
    if (parse) {
      EXPECT_EQ(s.code(), ErrorCode::kParseError) << i << ": " << s.to_string();
    } else {
      EXPECT_TRUE(contains(s, "signature (ECDSA P-384")) << i << ": " << s.to_string();
    }
  }
}

TEST(SevSnp, ByteTwentyOneAsInTheSourceProject) {
  Fixture f;
  f.report[21] ^= std::byte{0x80};
  auto v = verify_report(f.report, f.collateral, f.policy, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "does not verify with the VCEK")) << v.error().to_string();
}

TEST(SevSnp, AlteredVcekIsRejectedByTheChain) {
  Fixture f;
  f.collateral.vcek[40] ^= std::byte{0xff};  // as in the source project
  auto v = verify_report(f.report, f.collateral, f.policy, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "VCEK")) << v.error().to_string();
}

TEST(SevSnp, EveryCertificateByteFlipIsRejected) {
  Fixture f;
  for (std::vector<std::byte> Collateral::*which :
       {&Collateral::vcek, &Collateral::ask, &Collateral::ark}) {
    // PEM: flip base64 characters to another base64 character; DER: bytes.
    const std::size_t n = (f.collateral.*which).size();
    for (std::size_t i = 0; i < n; i += 7) {
      Collateral c = f.collateral;
      std::byte& b = (c.*which)[i];
      const char ch = static_cast<char>(b);
      const bool pem = which != &Collateral::vcek;
      if (pem && !std::isalnum(static_cast<unsigned char>(ch))) continue;
      b = pem ? std::byte(ch == 'A' ? 'B' : 'A') : b ^ std::byte{0x01};
      if (c.*which == f.collateral.*which) continue;
      auto v = verify_report(f.report, c, f.policy, kAt);
      EXPECT_FALSE(v) << "certificate byte " << i << " accepted";
    }
  }
}

TEST(SevSnp, SelfMadeRootIsNotAPinnedAmdRoot) {
  Fixture f;
  // A self-signed RSASSA-PSS root named like AMD's: only the pin tells them apart.
  EVP_PKEY* key = EVP_RSA_gen(2048);
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * 365 * 40);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ARK-Milan"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  ASSERT_GT(X509_sign(cert, key, EVP_sha384()), 0);
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  ASSERT_GT(len, 0);
  f.collateral.ark.assign(reinterpret_cast<std::byte*>(der),
                          reinterpret_cast<std::byte*>(der) + len);
  OPENSSL_free(der);
  X509_free(cert);
  EVP_PKEY_free(key);
  auto v = verify_report(f.report, f.collateral, f.policy, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "is not a pinned AMD root")) << v.error().to_string();
}

TEST(SevSnp, CertificatesInTheWrongRoleAreRejected) {
  Fixture f;
  // The ASK in the ARK's place is not a pinned root.
  std::swap(f.collateral.ask, f.collateral.ark);
  auto v = verify_report(f.report, f.collateral, f.policy, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "not a pinned AMD root")) << v.error().to_string();
  Fixture g;
  g.collateral.ask = g.collateral.ark;  // the ARK signs the ASK, not the VCEK
  auto w = verify_report(g.report, g.collateral, g.policy, kAt);
  ASSERT_FALSE(w);
  EXPECT_TRUE(contains(w.error(), "VCEK chain: VCEK signature does not verify with ASK"))
      << w.error().to_string();
}

TEST(SevSnp, CertificatesAreCheckedAtTheGivenTime) {
  Fixture f;
  auto early = verify_report(f.report, f.collateral, f.policy, td::utc(2023, 1, 1));
  ASSERT_FALSE(early);
  EXPECT_TRUE(contains(early.error(), "VCEK certificate: not yet valid"))
      << early.error().to_string();
  auto late = verify_report(f.report, f.collateral, f.policy, td::utc(2031, 1, 1));
  ASSERT_FALSE(late);
  EXPECT_TRUE(contains(late.error(), "VCEK certificate: expired")) << late.error().to_string();
  auto very_late = verify_report(f.report, f.collateral, f.policy, td::utc(2046, 1, 1));
  ASSERT_FALSE(very_late);
  EXPECT_TRUE(contains(very_late.error(), "ARK (Milan) certificate: expired"))
      << very_late.error().to_string();
}

TEST(SevSnp, DebugPolicyBitIsRejectedUnlessAllowed) {
  Fixture f;
  // The report cannot be re-signed: the policy check runs on the parsed report.
  auto r = parse_report(f.report);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(check_policy(*r, Product::kMilan, f.policy).ok());
  r->policy |= kPolicyDebugBit;
  Status s = check_policy(*r, Product::kMilan, f.policy);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(contains(s, "DEBUG set")) << s.to_string();
  f.policy.allow_debug = true;
  EXPECT_TRUE(check_policy(*r, Product::kMilan, f.policy).ok());
  // And on the wire: setting the bit breaks the signature, which is checked first.
  f.report[0x08 + 2] |= std::byte{0x08};
  auto v = verify_report(f.report, f.collateral, f.policy, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "does not verify with the VCEK")) << v.error().to_string();
}

TEST(SevSnp, ReportDataMustCarryTheBinding) {
  Fixture f;
  std::array<std::byte, 32> other{};
  other[0] = std::byte{1};
  f.policy.report_data = binding_report_data(other);
  auto v = verify_report(f.report, f.collateral, f.policy, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "REPORT_DATA does not carry the expected binding"))
      << v.error().to_string();
  EXPECT_EQ(binding_report_data(other)[0], std::byte{1});
  EXPECT_EQ(binding_report_data(other)[63], std::byte{0});
}

TEST(SevSnp, TcbBelowThePolicyMinimumIsRejected) {
  Fixture f;
  f.policy.minimum_tcb = Tcb{3, 0, 8, 0x73};
  EXPECT_TRUE(verify_report(f.report, f.collateral, f.policy, kAt));
  f.policy.minimum_tcb = Tcb{3, 0, 9, 0};
  auto v = verify_report(f.report, f.collateral, f.policy, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "REPORTED_TCB (bootloader=3 tee=0 snp=8 microcode=115) is below"))
      << v.error().to_string();
}

TEST(SevSnp, ProductNotAcceptedByPolicy) {
  Fixture f;
  f.policy.products = {Product::kGenoa};
  auto v = verify_report(f.report, f.collateral, f.policy, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "product Milan is not accepted")) << v.error().to_string();
}

TEST(SevSnp, TruncatedAndOversizedReports) {
  Fixture f;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, kSignedSize, kReportSize - 1}) {
    auto v = verify_report(std::span(f.report).first(n), f.collateral, f.policy, kAt);
    ASSERT_FALSE(v);
    EXPECT_TRUE(contains(v.error(), "expected 1184")) << v.error().to_string();
  }
  std::vector<std::byte> big = f.report;
  big.push_back(std::byte{0});
  auto v = verify_report(big, f.collateral, f.policy, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "1185 bytes, expected 1184")) << v.error().to_string();
}

TEST(SevSnp, ParserRejectsUnsupportedFields) {
  Fixture f;
  std::vector<std::byte> r = f.report;
  r[0] = std::byte{5};
  EXPECT_TRUE(contains(parse_report(r).error(), "unsupported version 5"));
  r = f.report;
  r[0x34] = std::byte{2};
  EXPECT_TRUE(contains(parse_report(r).error(), "unsupported signature algorithm 2"));
  r = f.report;
  r[0x48] = std::byte{1 << 2};
  EXPECT_TRUE(contains(parse_report(r).error(), "1 is a VLEK"));
  r = f.report;
  r[0] = std::byte{3};  // version 3 reads the CPUID bytes
  r[0x188] = std::byte{0x19};
  auto v3 = parse_report(r);
  ASSERT_TRUE(v3) << v3.error().to_string();
  EXPECT_EQ(v3->cpuid_fam_id, 0x19);
}

TEST(SevSnp, TcbLayout) {
  const Tcb t = Tcb::from_u64(0x7308000000000003ull);
  EXPECT_EQ(t, (Tcb{3, 0, 8, 0x73}));
  EXPECT_TRUE(t.at_least(Tcb{3, 0, 8, 0x73}));
  EXPECT_FALSE(t.at_least(Tcb{4, 0, 0, 0}));
  EXPECT_FALSE(t.at_least(Tcb{0, 1, 0, 0}));
  EXPECT_FALSE(t.at_least(Tcb{0, 0, 0, 0x74}));
}

}  // namespace
}  // namespace myelin::secure::snp

namespace myelin::secure::snp {
namespace {

TEST(SevSnpVerifier, BindsTheSessionOrARecordedValue) {
  Fixture f;
  auto clock = [] { return kAt; };
  std::array<std::byte, 32> session{};
  session[0] = std::byte{7};
  // Production mode: REPORT_DATA must be this session's binding, which a
  // recorded report cannot carry.
  Verifier bound(f.collateral, Policy{}, clock);
  auto refused = bound.verify(f.report, session);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(contains(refused.error(), "REPORT_DATA does not carry the expected binding"))
      << refused.error().to_string();
  // Test mode: the recorded value stands in for the binding.
  Verifier recorded(f.collateral, Policy{}, clock, f.policy.report_data);
  EXPECT_EQ(recorded.kind(), "sev-snp");
  auto ok = recorded.verify(f.report, session);
  ASSERT_TRUE(ok) << ok.error().to_string();
  MeasurementPolicy mp{
      {{"measurement",
        {std::vector<std::byte>(f.report.begin() + 0x90, f.report.begin() + 0xC0)}}}};
  EXPECT_TRUE(mp.check(*ok).ok());
  mp.rules[0].allowed[0][0] ^= std::byte{1};
  EXPECT_FALSE(mp.check(*ok).ok());
  // The clock is the verifier's: past the VCEK's validity, refused.
  Verifier late(
      f.collateral, Policy{}, [] { return td::utc(2031, 1, 1); }, f.policy.report_data);
  EXPECT_FALSE(late.verify(f.report, session));
}

}  // namespace
}  // namespace myelin::secure::snp
