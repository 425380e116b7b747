// The attestation policy file: every key parsed into the verifiers' policies,
// every defect named with file, line and key, and PolicyVerifier on the real
// SEV-SNP report and TDX quote of testdata/.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "myelin/secure/attestation_policy.h"
#include "src/secure/attestation/testdata_util.h"

namespace myelin::secure {
namespace {

namespace td = secure::testdata;

const std::string kMeasurement =
    "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81"
    "841f";  // MEASUREMENT of testdata/sev-snp/report.hex
const std::string kMrtd =
    "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d721"
    "5cbb";  // MRTD of testdata/tdx/quote.dat
const std::string kOther(96, 'a');

Result<AttestationPolicy> parse(const std::string& text) {
  return parse_attestation_policy(text, "p.toml", "/etc/myelin");
}

// The error message of parsing `text` (fails the test if it parses).
std::string error_of(const std::string& text) {
  auto p = parse(text);
  EXPECT_FALSE(p.has_value()) << text;
  return p ? std::string() : std::string(p.error().message());
}

TEST(AttestationPolicy, ParsesEveryKey) {
  auto p = parse(R"(platforms = ["sev-snp", "tdx"]
collateral = "collateral"
[sev-snp]
products = ["Milan", "Genoa"]
allow_debug = true
measurement = [")" +
                 kMeasurement + R"(", ")" + kOther + R"("]
host_data = ")" + std::string(64, '0') +
                 R"("
minimum_tcb = { bootloader = 3, tee = 0, snp = 8, microcode = 115 }
[tdx]
allow_debug = false
mrtd = ")" + kMrtd +
                 R"("
rtmr0 = [")" + kOther +
                 R"("]
tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
)");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->platforms, (std::vector<Platform>{Platform::kSevSnp, Platform::kTdx}));
  EXPECT_EQ(p->collateral_dir, "/etc/myelin/collateral");
  EXPECT_EQ(p->snp.policy.products,
            (std::vector<snp::Product>{snp::Product::kMilan, snp::Product::kGenoa}));
  EXPECT_TRUE(p->snp.policy.allow_debug);
  EXPECT_EQ(p->snp.policy.minimum_tcb, (snp::Tcb{3, 0, 8, 115}));
  // toml++ keeps a table's keys sorted, so rules come in key order.
  ASSERT_EQ(p->snp.measurements.rules.size(), 2u);
  EXPECT_EQ(p->snp.measurements.rules[0].name, "host_data");
  EXPECT_EQ(p->snp.measurements.rules[0].allowed.at(0).size(), 32u);
  EXPECT_EQ(p->snp.measurements.rules[1].name, "measurement");
  ASSERT_EQ(p->snp.measurements.rules[1].allowed.size(), 2u);
  EXPECT_EQ(p->snp.measurements.rules[1].allowed[0].size(), 48u);
  EXPECT_EQ(p->snp.measurements.rules[1].allowed[0][0], std::byte{0x7a});
  EXPECT_EQ(p->snp.measurements.rules[1].allowed[1][47], std::byte{0xaa});
  EXPECT_FALSE(p->tdx.policy.allow_debug);
  EXPECT_TRUE(p->tdx.require_tcb_info);
  EXPECT_EQ(p->tdx.policy.accepted_tcb_statuses,
            (std::vector<std::string>{"UpToDate", "SWHardeningNeeded"}));
  ASSERT_EQ(p->tdx.measurements.rules.size(), 2u);
  EXPECT_EQ(p->tdx.measurements.rules[0].name, "mrtd");
  EXPECT_EQ(p->tdx.measurements.rules[1].name, "rtmr0");
}

TEST(AttestationPolicy, DefaultsAreStrict) {
  auto p = parse("platforms = [\"tdx\"]\ncollateral = \"/abs\"\n");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->collateral_dir, "/abs");
  EXPECT_FALSE(p->tdx.policy.allow_debug);
  EXPECT_FALSE(p->tdx.require_tcb_info);
  EXPECT_EQ(p->tdx.policy.accepted_tcb_statuses, (std::vector<std::string>{"UpToDate"}));
  EXPECT_TRUE(p->tdx.measurements.rules.empty());
  EXPECT_FALSE(p->accepts(Platform::kSevSnp));
}

TEST(AttestationPolicy, ErrorsNameFileLineAndKey) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"platforms = [\"tdx\"]\nmode = 1\n", "p.toml:2: 'mode': unknown key"},
      {"platforms = [\"sev-snp\"]\n[sev-snp]\n\nmeasurment = \"00\"\n",
       "p.toml:4: 'sev-snp.measurment': unknown key"},
      {"platforms = [\"sev-snp\"]\n[sev-snp]\nminimum_tcb = { fw = 1 }\n",
       "p.toml:3: 'sev-snp.minimum_tcb.fw': unknown key"},
      {"platforms = [\"sev-snp\"]\n[sev-snp]\nminimum_tcb = { snp = 256 }\n",
       "p.toml:3: 'sev-snp.minimum_tcb.snp': 256 is outside [0, 255]"},
      {"platforms = [\"sev-snp\"]\n[sev-snp]\nminimum_tcb = { snp = \"8\" }\n",
       "'sev-snp.minimum_tcb.snp': expected an integer"},
      {"platforms = [\"tdx\"]\n[tdx]\nallow_debug = \"no\"\n",
       "p.toml:3: 'tdx.allow_debug': expected true or false"},
      {"platforms = [\"tdx\"]\n[tdx]\nmrtd = [\n  \"" + kMrtd + "\",\n  \"" + std::string(95, '0') +
           "g\"]\n",
       "p.toml:5: 'tdx.mrtd': '" + std::string(95, '0') +
           "g' is not hex (bad digit at position 95)"},
      {"platforms = [\"tdx\"]\n[tdx]\nrtmr3 = \"abcd\"\n",
       "p.toml:3: 'tdx.rtmr3': 'abcd' is 4 hex digits, expected 96 (48 bytes)"},
      {"platforms = [\"tdx\"]\n[tdx]\nmrtd = 5\n",
       "'tdx.mrtd': expected a string or an array of strings"},
      {"platforms = [\"tdx\"]\n[tdx]\nmrtd = []\n", "'tdx.mrtd': empty array"},
      {"platforms = [\"tdx\"]\n[tdx]\ntcb_statuses = [\"Fine\"]\n",
       "p.toml:3: 'tdx.tcb_statuses': unknown TCB status 'Fine'"},
      {"platforms = [\"sev-snp\"]\n[sev-snp]\nproducts = [\"Naples\"]\n",
       "'sev-snp.products': unknown product 'Naples'"},
      {"collateral = \"x\"\n", "p.toml: 'platforms' is missing"},
      {"platforms = \"tdx\"\n", "p.toml:1: 'platforms': expected an array of strings"},
      {"platforms = [\"sgx\"]\n", "p.toml:1: 'platforms': unknown platform 'sgx'"},
      {"platforms = [\"tdx\", \"tdx\"]\n", "'platforms': 'tdx' is listed twice"},
      {"platforms = [\"tdx\"]\n[sev-snp]\nallow_debug = true\n",
       "'sev-snp': section given but 'sev-snp' is not in platforms"},
      {"platforms = [\"tdx\"]\nmax_evidence_age = 60\n",
       "p.toml:2: 'max_evidence_age': SEV-SNP reports and TDX quotes carry no time"},
      {"platforms = [\"tdx\"]\ncollateral = 7\n", "p.toml:2: 'collateral': expected a string"},
      {"platforms = [\"tdx\"\n", "p.toml:1:"},  // TOML syntax: line and column
      {"platforms = [\"tdx\"]\ntdx = 1\n", "'tdx': expected a table"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string message = error_of(c.text);
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  }
}

TEST(AttestationPolicy, LoadNamesTheFileAndResolvesCollateralAgainstIt) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("myelin_policy_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "policy.toml") << "platforms = [\"tdx\"]\ncollateral = \"c\"\n";
  std::ofstream(dir / "bad.toml") << "platforms = [\"tdx\"]\n\n[tdx]\nmrtdx = \"00\"\n";
  auto ok = load_attestation_policy((dir / "policy.toml").string());
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(ok->collateral_dir, (dir / "c").string());
  auto bad = load_attestation_policy((dir / "bad.toml").string());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find((dir / "bad.toml").string() + ":4: 'tdx.mrtdx'"),
            std::string::npos)
      << bad.error().to_string();
  auto missing = load_attestation_policy((dir / "nope.toml").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("nope.toml"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// --- PolicyVerifier on the real evidence -------------------------------------

std::array<std::byte, 64> at(const std::vector<std::byte>& b, std::size_t offset) {
  std::array<std::byte, 64> out{};
  std::copy(b.begin() + offset, b.begin() + offset + 64, out.begin());
  return out;
}

struct Fixture {
  std::vector<std::byte> report = td::unhex(td::read(td::dir("sev-snp") + "/report.hex"));
  std::vector<std::byte> quote = td::read(td::dir("tdx") + "/quote.dat");
  std::array<std::byte, 32> session{};  // the binding of a session (not the recorded one)
};

Result<std::unique_ptr<PolicyVerifier>> verifier(const std::string& text,
                                                 const std::vector<std::byte>& evidence,
                                                 std::size_t report_data_offset,
                                                 std::chrono::sys_seconds now) {
  MYELIN_ASSIGN_OR_RETURN(auto policy, parse(text));
  PolicyVerifier::Options o;
  o.collateral_dir = policy.accepts(Platform::kSevSnp) ? td::dir("sev-snp") : td::dir("tdx");
  o.now = [now] { return now; };
  o.recorded_report_data = at(evidence, report_data_offset);
  return PolicyVerifier::create(std::move(policy), std::move(o));
}

TEST(PolicyVerifier, SevSnpReportByPolicy) {
  Fixture f;
  const auto now = td::utc(2026, 12, 7);
  auto good =
      verifier("platforms = [\"sev-snp\"]\n[sev-snp]\nproducts = [\"Milan\"]\nmeasurement = [\"" +
                   kOther + "\", \"" + kMeasurement +
                   "\"]\nminimum_tcb = { bootloader = 3, snp = 8, microcode = 115 }\n",
               f.report, 0x50, now);
  ASSERT_TRUE(good) << good.error().to_string();
  EXPECT_EQ((*good)->kind(), "sev-snp");
  auto v = (*good)->verify(f.report, f.session);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_EQ(v->kind, "sev-snp");

  auto wrong = verifier("platforms = [\"sev-snp\"]\n[sev-snp]\nmeasurement = \"" + kOther + "\"\n",
                        f.report, 0x50, now);
  ASSERT_TRUE(wrong);
  auto r = (*wrong)->verify(f.report, f.session);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("measurement 'measurement'"), std::string::npos)
      << r.error().to_string();

  auto tcb = verifier("platforms = [\"sev-snp\"]\n[sev-snp]\nminimum_tcb = { snp = 9 }\n", f.report,
                      0x50, now);
  ASSERT_TRUE(tcb);
  r = (*tcb)->verify(f.report, f.session);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("TCB"), std::string::npos) << r.error().to_string();

  // A TDX quote where the policy accepts only SEV-SNP.
  r = (*good)->verify(f.quote, f.session);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("is a TDX quote, but the policy accepts only sev-snp"),
            std::string::npos)
      << r.error().to_string();
}

TEST(PolicyVerifier, DebugRefusedUnlessAllowed) {
  // No genuine debug report is public: the policy's snp::Policy decides on a
  // parsed genuine report with DEBUG set after parsing.
  Fixture f;
  auto report = snp::parse_report(f.report);
  ASSERT_TRUE(report) << report.error().to_string();
  report->policy |= snp::kPolicyDebugBit;
  auto strict = parse("platforms = [\"sev-snp\"]\n");
  auto lax = parse("platforms = [\"sev-snp\"]\n[sev-snp]\nallow_debug = true\n");
  ASSERT_TRUE(strict && lax);
  Status s = snp::check_policy(*report, snp::Product::kMilan, strict->snp.policy);
  EXPECT_NE(s.message().find("DEBUG"), std::string::npos) << s.to_string();
  EXPECT_TRUE(snp::check_policy(*report, snp::Product::kMilan, lax->snp.policy).ok());
}

TEST(PolicyVerifier, TdxQuoteByPolicy) {
  Fixture f;
  const auto now = td::utc(2023, 7, 1, 1);
  auto good = verifier("platforms = [\"tdx\", \"sev-snp\"]\n[tdx]\nmrtd = \"" + kMrtd + "\"\n",
                       f.quote, 48 + 520, now);
  ASSERT_TRUE(good) << good.error().to_string();
  EXPECT_EQ((*good)->kind(), "tee");
  auto v = (*good)->verify(f.quote, f.session);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_EQ(v->kind, "tdx");

  auto wrong = verifier("platforms = [\"tdx\"]\n[tdx]\nrtmr1 = \"" + kOther + "\"\n", f.quote,
                        48 + 520, now);
  ASSERT_TRUE(wrong);
  auto r = (*wrong)->verify(f.quote, f.session);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("measurement 'rtmr1'"), std::string::npos);
  // Truncated evidence with one platform: that platform's parser names the defect.
  r = (*wrong)->verify(std::span(f.quote).first(100), f.session);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("100 bytes"), std::string::npos) << r.error().to_string();
  // Neither format with two platforms.
  r = (*good)->verify(std::span(f.quote).first(10), f.session);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("neither an SEV-SNP report nor a TDX quote"),
            std::string::npos);
}

TEST(PolicyVerifier, BindingModeRefusesRecordedEvidence) {
  Fixture f;
  auto policy = parse("platforms = [\"tdx\"]\n");
  ASSERT_TRUE(policy);
  PolicyVerifier::Options o;
  o.now = [] { return td::utc(2023, 7, 1, 1); };
  auto v = PolicyVerifier::create(std::move(*policy), std::move(o));
  ASSERT_TRUE(v) << v.error().to_string();
  auto r = (*v)->verify(f.quote, f.session);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("REPORT_DATA"), std::string::npos) << r.error().to_string();
}

TEST(PolicyVerifier, CreateNeedsItsCollateral) {
  auto snp_policy = parse("platforms = [\"sev-snp\"]\n");
  ASSERT_TRUE(snp_policy);
  auto r = PolicyVerifier::create(*snp_policy, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("no collateral directory"), std::string::npos);
  auto tcb_policy = parse("platforms = [\"tdx\"]\n[tdx]\ntcb_statuses = [\"UpToDate\"]\n");
  ASSERT_TRUE(tcb_policy);
  PolicyVerifier::Options o;
  o.collateral_dir = td::dir("sev-snp");  // has no tcb_info.json
  r = PolicyVerifier::create(*tcb_policy, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("tcb_info.json: not found"), std::string::npos)
      << r.error().to_string();
}

}  // namespace
}  // namespace myelin::secure
