// `myelin attest verify FILE --platform snp|tdx --collateral DIR [--at TIME]
// [--report-data HEX] [--policy FILE]`: verifies TEE evidence offline
// (docs/attestation.md) and prints the verified identity and measurements,
// or the precise reason and exit 1. Bad flags exit 2. With --policy the
// policy file's rules apply (debug, minimum TCB, products, TCB statuses,
// measurements) and its collateral directory serves when --collateral is
// not given.
//
// Collateral directories: snp reads vcek.der (or vcek.pem), ask.pem and
// ark.pem; tdx reads tcb_info.json if present (otherwise the TCB level is
// not evaluated, and the output says so). The PCK chain travels in the quote.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/myelin/commands.h"
#include "myelin/secure/attestation_policy.h"
#include "myelin/secure/sev_snp.h"
#include "myelin/secure/tdx.h"

namespace myelin::cli {
namespace {

std::string hex(std::span<const std::byte> bytes) {
  std::string out;
  char buf[3];
  for (std::byte b : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", std::to_integer<unsigned>(b));
    out += buf;
  }
  return out;
}

Result<std::vector<std::byte>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": cannot open");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return io_error(path + ": read failed");
  std::vector<std::byte> out(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) out[i] = std::byte(text[i]);
  return out;
}

struct AttestArgs {
  std::string file;
  std::string platform;
  std::string collateral;
  std::string at;
  std::string report_data;
  std::string policy_file;
};

std::optional<std::chrono::sys_seconds> parse_time(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char z = 0;
  const int n =
      std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z);
  if (!(n == 3 && text.size() == 10) && !(n == 7 && z == 'Z')) return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return std::nullopt;
  return sys_days{ymd} + hours{h} + minutes{mi} + seconds{s};
}

std::optional<std::vector<std::byte>> parse_hex(const std::string& text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    unsigned v = 0;
    if (std::sscanf(text.substr(i, 2).c_str(), "%2x", &v) != 1 ||
        !std::isxdigit(static_cast<unsigned char>(text[i])) ||
        !std::isxdigit(static_cast<unsigned char>(text[i + 1]))) {
      return std::nullopt;
    }
    out.push_back(std::byte(v));
  }
  return out;
}

// SNP reports are often kept as hex text: accept either form.
std::vector<std::byte> maybe_unhex(std::vector<std::byte> bytes, std::size_t binary_size) {
  if (bytes.size() == binary_size) return bytes;
  std::string text;
  for (std::byte b : bytes) {
    const char c = static_cast<char>(b);
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return bytes;
    text.push_back(c);
  }
  auto decoded = parse_hex(text);
  return decoded ? std::move(*decoded) : bytes;
}

int fail(const Status& s) {
  std::fprintf(stderr, "myelin attest verify: rejected: %s\n", s.to_string().c_str());
  return kExitFailure;
}

void print_measurements(const secure::VerifiedEvidence& e) {
  std::printf("identity: %s\n", e.identity.c_str());
  std::printf("measurements:\n");
  for (const auto& m : e.measurements)
    std::printf("  %-18s %s\n", m.name.c_str(), hex(m.value).c_str());
}

void print_report_data(std::span<const std::byte> rd, bool checked) {
  std::printf("report_data: %s (%s)\n", hex(rd).c_str(),
              checked ? "matches --report-data" : "not checked: no --report-data");
}

int run_snp(const std::vector<std::byte>& evidence, const AttestArgs& a,
            const std::optional<std::array<std::byte, 64>>& rd, std::chrono::sys_seconds at,
            const std::optional<secure::AttestationPolicy>& file_policy) {
  auto collateral = secure::snp::load_collateral(a.collateral);
  if (!collateral) return fail(collateral.error());
  secure::snp::Policy policy = file_policy ? file_policy->snp.policy : secure::snp::Policy{};
  policy.report_data = rd;
  auto v = secure::snp::verify_report(maybe_unhex(evidence, secure::snp::kReportSize), *collateral,
                                      policy, at);
  if (!v) return fail(v.error());
  if (file_policy) {
    if (Status s = file_policy->snp.measurements.check(secure::snp::to_evidence(*v)); !s.ok()) {
      return fail(s);
    }
  }
  std::printf("verified: AMD SEV-SNP report version %u, product %s, chain VCEK <- ASK <- ARK\n",
              v->report.version, std::string(secure::snp::to_string(v->product)).c_str());
  std::printf("reported_tcb: %s\n", secure::snp::to_string(v->reported_tcb).c_str());
  std::printf("guest policy: 0x%llx (debug %s), vmpl %u\n",
              static_cast<unsigned long long>(v->report.policy), v->report.debug() ? "on" : "off",
              v->report.vmpl);
  print_measurements(secure::snp::to_evidence(*v));
  print_report_data(v->report.report_data, rd.has_value());
  return kExitOk;
}

int run_tdx(const std::vector<std::byte>& evidence, const AttestArgs& a,
            const std::optional<std::array<std::byte, 64>>& rd, std::chrono::sys_seconds at,
            const std::optional<secure::AttestationPolicy>& file_policy) {
  secure::tdx::Policy policy = file_policy ? file_policy->tdx.policy : secure::tdx::Policy{};
  policy.report_data = rd;
  const std::string tcb_path = a.collateral + "/tcb_info.json";
  if (std::filesystem::exists(tcb_path)) {
    auto tcb = read_file(tcb_path);
    if (!tcb) return fail(tcb.error());
    policy.tcb_info_json.assign(reinterpret_cast<const char*>(tcb->data()), tcb->size());
  } else if (file_policy && file_policy->tdx.require_tcb_info) {
    return fail(not_found(
        tcb_path + ": not found, but the policy names tdx.tcb_statuses, which need TCB info"));
  } else if (!std::filesystem::is_directory(a.collateral)) {
    return fail(io_error(a.collateral + ": not a directory"));
  }
  auto v = secure::tdx::verify_quote(evidence, policy, at);
  if (!v) return fail(v.error());
  if (file_policy) {
    if (Status s = file_policy->tdx.measurements.check(secure::tdx::to_evidence(*v)); !s.ok()) {
      return fail(s);
    }
  }
  std::printf("verified: Intel TDX quote version %u, chain PCK <- PCK CA <- SGX Root CA\n",
              v->quote.version);
  std::printf("tcb status: %s\n", v->tcb_status.empty()
                                      ? "not evaluated (no tcb_info.json in the collateral)"
                                      : v->tcb_status.c_str());
  print_measurements(secure::tdx::to_evidence(*v));
  print_report_data(v->quote.td.report_data, rd.has_value());
  return kExitOk;
}

int run_verify(const AttestArgs& a) {
  std::chrono::sys_seconds at =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  if (!a.at.empty()) {
    auto t = parse_time(a.at);
    if (!t) {
      std::fprintf(stderr,
                   "myelin attest verify: --at '%s' is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ\n",
                   a.at.c_str());
      return kExitUsage;
    }
    at = *t;
  }
  std::optional<std::array<std::byte, 64>> rd;
  if (!a.report_data.empty()) {
    auto bytes = parse_hex(a.report_data);
    if (!bytes || (bytes->size() != 32 && bytes->size() != 64)) {
      std::fprintf(stderr,
                   "myelin attest verify: --report-data must be 32 or 64 bytes of hex (32 bytes "
                   "are a channel binding, padded with zeros)\n");
      return kExitUsage;
    }
    rd.emplace();
    rd->fill(std::byte{0});
    std::copy(bytes->begin(), bytes->end(), rd->begin());
  }
  std::optional<secure::AttestationPolicy> policy;
  AttestArgs args = a;
  if (!a.policy_file.empty()) {
    auto p = secure::load_attestation_policy(a.policy_file);
    if (!p) {
      std::fprintf(stderr, "myelin attest verify: --policy: %s\n", p.error().to_string().c_str());
      return kExitUsage;
    }
    const auto platform = a.platform == "snp" ? secure::Platform::kSevSnp : secure::Platform::kTdx;
    if (!p->accepts(platform)) {
      return fail(authentication_failed("the policy " + a.policy_file + " does not accept " +
                                        std::string(secure::to_string(platform))));
    }
    if (args.collateral.empty()) args.collateral = p->collateral_dir;
    policy = std::move(*p);
  }
  if (args.collateral.empty()) {
    std::fprintf(stderr,
                 "myelin attest verify: --collateral DIR is required (or a policy that names "
                 "its collateral)\n");
    return kExitUsage;
  }
  auto evidence = read_file(a.file);
  if (!evidence) return fail(evidence.error());
  std::printf("evidence: %s (%zu bytes), verified at %s\n", a.file.c_str(), evidence->size(),
              a.at.empty() ? "now" : a.at.c_str());
  const int rc = a.platform == "snp" ? run_snp(*evidence, args, rd, at, policy)
                                     : run_tdx(*evidence, args, rd, at, policy);
  if (rc == kExitOk && policy) std::printf("policy: %s accepts it\n", a.policy_file.c_str());
  return rc;
}

}  // namespace

void register_attest(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<AttestArgs>();
  CLI::App* attest = app.add_subcommand("attest", "Verify TEE attestation evidence offline");
  attest->require_subcommand(1);
  CLI::App* verify = attest->add_subcommand(
      "verify", "Verify an SEV-SNP report or a TDX quote with collateral from files");
  verify->add_option("file", args->file, "the report (binary or hex) or quote")->required();
  verify->add_option("--platform", args->platform, "snp or tdx")
      ->required()
      ->check(CLI::IsMember({"snp", "tdx"}));
  verify->add_option("--collateral", args->collateral,
                     "directory of certificates / TCB info (default: the policy's)");
  verify->add_option("--policy", args->policy_file,
                     "attestation policy (TOML, docs/attestation.md section 3)");
  verify->add_option("--at", args->at,
                     "verification time, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (default: now)");
  verify->add_option("--report-data", args->report_data,
                     "expected REPORT_DATA, hex (32 bytes: a channel binding, zero-padded)");
  verify->callback([args, &ctx] { ctx.exit_code = run_verify(*args); });
}

}  // namespace myelin::cli
