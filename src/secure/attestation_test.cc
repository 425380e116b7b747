#include "myelin/secure/attestation.h"

#include <gtest/gtest.h>

namespace myelin::secure {
namespace {

ReportData rd(int v) {
  ReportData r{};
  r[0] = std::byte(v);
  return r;
}

TEST(MockAttestation, RoundTripAndBinding) {
  MockProvider p(to_bytes("k"), "node-1", {{"code", to_bytes("v1")}, {"cfg", to_bytes("x")}});
  MockVerifier v(to_bytes("k"));
  std::vector<std::byte> ev;
  ASSERT_TRUE(p.attest(rd(1), ev).ok());
  auto got = v.verify(ev, rd(1));
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(got->identity, "node-1");
  ASSERT_EQ(got->measurements.size(), 2u);
  EXPECT_EQ(got->measurements[0].name, "code");
  EXPECT_EQ(got->measurements[0].value, to_bytes("v1"));
  // Bound to its report_data: evidence for another session is refused.
  auto other = v.verify(ev, rd(2));
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message().find("report_data"), std::string_view::npos);
  // Any altered byte is refused.
  for (std::size_t i = 0; i < ev.size(); ++i) {
    auto bad = ev;
    bad[i] ^= std::byte{4};
    EXPECT_FALSE(v.verify(bad, rd(1))) << "byte " << i;
  }
  EXPECT_FALSE(MockVerifier(to_bytes("other")).verify(ev, rd(1)));
  EXPECT_FALSE(v.verify(std::span(ev).first(10), rd(1)));
}

TEST(MeasurementPolicy, MissingAndMismatchedAreRejectedPrecisely) {
  VerifiedEvidence ev{"mock", "n", {{"code", to_bytes("v1")}}};
  MeasurementPolicy ok{{{"code", {to_bytes("v0"), to_bytes("v1")}}}};
  EXPECT_TRUE(ok.check(ev).ok());
  MeasurementPolicy wrong{{{"code", {to_bytes("v2")}}}};
  EXPECT_NE(wrong.check(ev).message().find("matches none"), std::string_view::npos);
  MeasurementPolicy missing{{{"kernel", {to_bytes("k")}}}};
  EXPECT_NE(missing.check(ev).message().find("missing"), std::string_view::npos);
  EXPECT_TRUE(MeasurementPolicy{}.check(ev).ok());
}

TEST(NoneAttestation, OnlyEmptyEvidence) {
  NoneProvider p;
  NoneVerifier v;
  std::vector<std::byte> ev{std::byte{1}};
  ASSERT_TRUE(p.attest(rd(0), ev).ok());
  EXPECT_TRUE(ev.empty());
  EXPECT_TRUE(v.verify(ev, rd(0)));
  EXPECT_FALSE(v.verify(to_bytes("x"), rd(0)));
}

}  // namespace
}  // namespace myelin::secure
