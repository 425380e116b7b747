#include "myelin/secure/tdx.h"

#include <gtest/gtest.h>

#include <string>

#include "src/secure/attestation/testdata_util.h"

namespace myelin::secure::tdx {
namespace {

namespace td = secure::testdata;

// The real quote of testdata/tdx (Sapphire Rapids, from google/go-tdx-guest),
// verified there at this time.
const auto kAt = td::utc(2023, 7, 1, 1);

std::vector<std::byte> quote() { return td::read(td::dir("tdx") + "/quote.dat"); }

std::string tcb_info() {
  auto b = td::read(td::dir("tdx") + "/sample_tcbInfo_response");
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

Policy binding_policy(const std::vector<std::byte>& q) {
  Policy p;
  std::array<std::byte, 64> rd{};
  std::copy(q.begin() + 48 + 520, q.begin() + 48 + 584, rd.begin());
  p.report_data = rd;
  return p;
}

bool contains(const Status& s, std::string_view what) {
  return s.message().find(what) != std::string_view::npos;
}

TEST(Tdx, RealQuoteVerifies) {
  const auto q = quote();
  auto v = verify_quote(q, binding_policy(q), kAt);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_EQ(v->quote.version, 4);
  EXPECT_EQ(td::unhex({}).size(), 0u);
  EXPECT_EQ(secure::detail::hex(v->pck_tcb.fmspc), "50806f000000");
  EXPECT_EQ(v->pck_tcb.pce_svn, 11);
  EXPECT_EQ(v->pck_tcb.sgx_components[0], 3);
  EXPECT_EQ(v->quote.qe_auth_data.size(), 32u);
  const VerifiedEvidence e = to_evidence(*v);
  EXPECT_EQ(e.kind, "tdx");
  ASSERT_EQ(e.measurements.front().name, "mrtd");
  EXPECT_EQ(e.measurements.front().value.size(), 48u);
  EXPECT_EQ(e.measurements[1].name, "rtmr0");
}

TEST(Tdx, ExpiredIn2053) {
  const auto q = quote();
  auto v = verify_quote(q, binding_policy(q), td::utc(2053, 7, 1));
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "expired")) << v.error().to_string();
  auto early = verify_quote(q, binding_policy(q), td::utc(2020, 1, 1));
  ASSERT_FALSE(early);
  EXPECT_TRUE(contains(early.error(), "not yet valid")) << early.error().to_string();
}

TEST(Tdx, EveryByteOfTheSignedPartAndSignaturesIsCovered) {
  const auto q = quote();
  const Policy p = binding_policy(q);
  // Header + TD report (0..631), then the AK signature and key, the QE
  // report, its signature and the QE auth data.
  const std::size_t qe_end = 636 + 128 + 6 + 384 + 64 + 2 + 32;
  for (std::size_t i = 0; i < qe_end; ++i) {
    if (i >= 632 && i < 636) continue;  // the length: a parse error, below
    std::vector<std::byte> bad = q;
    bad[i] ^= std::byte{0x01};
    auto v = verify_quote(bad, p, kAt);
    ASSERT_FALSE(v) << "flip at byte " << i << " accepted";
    const std::string m(v.error().message());
    if (i < 632 && (i < 12 || i >= 28)) {
      // Version, key type and TEE type are refused by the parser; the rest
      // of the signed part (the QE vendor id and user data included) by the
      // attestation key's signature.
      if (i >= 8) {
        EXPECT_TRUE(contains(v.error(), "does not verify with the attestation key")) << i << m;
      }
    } else if (i >= 636 && i < 636 + 128) {
      EXPECT_TRUE(contains(v.error(), "attestation key")) << i << m;
    } else if (i >= 636 + 134 && i < 636 + 134 + 384 + 64) {
      EXPECT_TRUE(contains(v.error(), "QE report")) << i << m;
    }
  }
  const std::vector<std::byte> fixed = [&] {
    std::vector<std::byte> b = q;
    b[633] ^= std::byte{1};
    return b;
  }();
  auto v = verify_quote(fixed, p, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "signature data length")) << v.error().to_string();
}

TEST(Tdx, PckChainFlipsAreRejected) {
  const auto q = quote();
  const Policy p = binding_policy(q);
  const std::size_t pem_at = 636 + 128 + 6 + 384 + 64 + 2 + 32 + 6;
  for (std::size_t i = pem_at; i < q.size(); i += 5) {
    std::vector<std::byte> bad = q;
    const char ch = static_cast<char>(bad[i]);
    if (!std::isalnum(static_cast<unsigned char>(ch))) continue;
    bad[i] = std::byte(ch == 'A' ? 'B' : 'A');
    if (bad == q) continue;
    auto v = verify_quote(bad, p, kAt);
    EXPECT_FALSE(v) << "PCK chain byte " << i << " accepted";
  }
}

TEST(Tdx, ReportDataMustCarryTheBinding) {
  const auto q = quote();
  Policy p;
  std::array<std::byte, 32> other{};
  p.report_data = binding_report_data(other);
  auto v = verify_quote(q, p, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "REPORT_DATA does not carry the expected binding"))
      << v.error().to_string();
}

TEST(Tdx, DebugAttributeIsRejectedUnlessAllowed) {
  auto q = parse_quote(quote());
  ASSERT_TRUE(q) << q.error().to_string();
  Policy p;
  EXPECT_TRUE(check_policy(*q, p).ok());
  q->td.td_attributes |= kTdAttributeDebug;
  Status s = check_policy(*q, p);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(contains(s, "DEBUG set")) << s.to_string();
  p.allow_debug = true;
  EXPECT_TRUE(check_policy(*q, p).ok());
}

TEST(Tdx, TruncatedAndOversizedQuotes) {
  const auto q = quote();
  for (std::size_t n : {std::size_t{0}, std::size_t{47}, std::size_t{635}, std::size_t{636},
                        std::size_t{700}, q.size() - 1}) {
    auto v = verify_quote(std::span(q).first(n), Policy{}, kAt);
    ASSERT_FALSE(v) << n;
    EXPECT_EQ(v.error().code(), ErrorCode::kParseError) << n << v.error().to_string();
  }
  std::vector<std::byte> big = q;
  big.push_back(std::byte{0});
  auto v = verify_quote(big, Policy{}, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "signature data length")) << v.error().to_string();
  big.resize(kMaxQuoteSize + 1);
  v = verify_quote(big, Policy{}, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "more than 65536")) << v.error().to_string();
}

// The sample TCB info (FMSPC 50806f000000, two levels needing SGX component
// 1 >= 5) is newer than this quote's PCK certificate (component 1 = 3): by
// Intel's algorithm no level matches, so the quote's TCB is not supported.
TEST(Tdx, RealQuoteTcbIsNotSupportedByTheSampleTcbInfo) {
  const auto q = quote();
  Policy p = binding_policy(q);
  p.tcb_info_json = tcb_info();
  auto v = verify_quote(q, p, kAt);
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error(), "no TCB level matches (PCK SGX TCB 3,3,2,2,2,1,0,2"))
      << v.error().to_string();
}

TEST(Tdx, TcbLevelAlgorithm) {
  const std::string info = tcb_info();
  PckTcb pck;
  pck.fmspc = {std::byte{0x50}, std::byte{0x80}, std::byte{0x6f}, {}, {}, {}};
  pck.sgx_components = {5, 5, 2, 2, 3, 1, 0, 3};
  pck.pce_svn = 11;
  std::array<std::byte, 16> tee{};
  tee[0] = std::byte{3};
  tee[2] = std::byte{5};
  auto s = evaluate_tcb(info, pck, tee, kAt);
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(*s, "UpToDate");
  pck.pce_svn = 10;  // below the first level's 11, at least the second's 5
  s = evaluate_tcb(info, pck, tee, kAt);
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(*s, "OutOfDate");
  pck.pce_svn = 11;
  tee[1] = std::byte{1};  // step 4: the TDX module SVN must equal the level's
  s = evaluate_tcb(info, pck, tee, kAt);
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error(), "TDX module SVN (0) differs from the TD report's (1)"));
  tee[1] = std::byte{0};
  tee[2] = std::byte{4};  // below every level's TDX component 2
  s = evaluate_tcb(info, pck, tee, kAt);
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error(), "no TCB level matches"));
  tee[2] = std::byte{5};
  pck.fmspc[5] = std::byte{1};
  s = evaluate_tcb(info, pck, tee, kAt);
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error(), "FMSPC")) << s.error().to_string();
  pck.fmspc[5] = std::byte{0};
  s = evaluate_tcb(info, pck, tee, td::utc(2023, 8, 1));
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error(), "out of date (nextUpdate 2023-07-18T08:42:58Z)"));
  s = evaluate_tcb("{", pck, tee, kAt);
  ASSERT_FALSE(s);
}

}  // namespace
}  // namespace myelin::secure::tdx

namespace myelin::secure::tdx {
namespace {

TEST(TdxVerifier, BindsTheSessionOrARecordedValue) {
  const auto q = quote();
  auto clock = [] { return kAt; };
  std::array<std::byte, 32> session{};
  Verifier bound(Policy{}, clock);
  auto refused = bound.verify(q, session);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(contains(refused.error(), "REPORT_DATA does not carry the expected binding"))
      << refused.error().to_string();
  Verifier recorded(Policy{}, clock, binding_policy(q).report_data);
  EXPECT_EQ(recorded.kind(), "tdx");
  auto ok = recorded.verify(q, session);
  ASSERT_TRUE(ok) << ok.error().to_string();
  MeasurementPolicy mp{
      {{"mrtd", {std::vector<std::byte>(q.begin() + 48 + 136, q.begin() + 48 + 184)}}}};
  EXPECT_TRUE(mp.check(*ok).ok());
  mp.rules[0].name = "rtmr0";
  EXPECT_FALSE(mp.check(*ok).ok());
  Verifier late(
      Policy{}, [] { return td::utc(2053, 7, 1); }, binding_policy(q).report_data);
  EXPECT_FALSE(late.verify(q, session));
}

}  // namespace
}  // namespace myelin::secure::tdx
