#include "myelin/secure/sev_snp.h"

#include <openssl/core_names.h>
#include <openssl/err.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "src/secure/attestation/sev_snp_layout.h"
#include "src/secure/attestation/x509.h"
#include "src/secure/crypto.h"

namespace myelin::secure::snp {

namespace L = detail::layout;
using secure::detail::check_signed_by;
using secure::detail::check_valid_at;
using secure::detail::X509Ptr;

namespace {

constexpr std::string_view kPrefix = "SEV-SNP report: ";

Status fail(Status s) { return std::move(s).with_context("SEV-SNP report"); }

// SHA-256 of the DER SubjectPublicKeyInfo of each product's ARK, the
// self-signed AMD root key. Milan's is taken from AMD's Milan ARK certificate
// (CN=ARK-Milan, certificate SHA-256 69d063b4...540bcd), the one that signs
// the real Milan chain in testdata/. Genoa and Turin are not pinned: no copy
// of their roots could be checked offline against AMD's key distribution
// service, and a pin taken from an unchecked source would be worse than none.
struct PinnedRoot {
  Product product;
  std::array<unsigned char, 32> spki_sha256;
};
constexpr PinnedRoot kPinnedRoots[] = {
    {Product::kMilan, {0x9f, 0x05, 0x6b, 0xee, 0x44, 0x37, 0x7e, 0x29, 0x30, 0x8c, 0xb5,
                       0xff, 0xa8, 0x95, 0xbd, 0xfb, 0x62, 0xd1, 0x88, 0x81, 0xfa, 0x6b,
                       0xed, 0x8d, 0x6f, 0x07, 0x5b, 0x02, 0x04, 0x08, 0x9c, 0xb9}},
};

std::uint32_t u32_at(std::span<const std::byte> b, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(b[at + i]);
  return v;
}

std::uint64_t u64_at(std::span<const std::byte> b, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(b[at + i]);
  return v;
}

template <std::size_t N>
void copy_at(std::span<const std::byte> b, std::size_t at, std::array<std::byte, N>& out) {
  std::memcpy(out.data(), b.data() + at, N);
}

// A 72-byte little-endian field holding a P-384 scalar: the top 24 bytes must
// be zero; returns the 48 low bytes big-endian.
bool scalar_at(std::span<const std::byte> b, std::size_t at, std::array<std::byte, 48>& out) {
  for (std::size_t i = L::kP384Bytes; i < L::kSigComponent; ++i) {
    if (b[at + i] != std::byte{0}) return false;
  }
  for (std::size_t i = 0; i < L::kP384Bytes; ++i) out[i] = b[at + L::kP384Bytes - 1 - i];
  return true;
}

Status check_report_signature(std::span<const std::byte> bytes, const Report& report,
                              EVP_PKEY* vcek_key) {
  char group[64] = {};
  if (EVP_PKEY_is_a(vcek_key, "EC") != 1 ||
      EVP_PKEY_get_utf8_string_param(vcek_key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                     nullptr) != 1 ||
      std::string_view(group) != "secp384r1") {
    ERR_clear_error();
    return authentication_failed("VCEK key is not an ECDSA P-384 key");
  }
  const bool ok = secure::detail::verify_ecdsa_rs(vcek_key, EVP_sha384(), bytes.first(kSignedSize),
                                                  report.sig_r, report.sig_s);
  if (!ok) {
    return authentication_failed(
        "signature (ECDSA P-384, SHA-384 over bytes 0x000-0x29F) does not verify with the VCEK");
  }
  return ok_status();
}

// ARK -> ASK -> VCEK; returns the product named by the pinned ARK.
Result<Product> check_chain(X509* ark, X509* ask, X509* vcek, std::chrono::sys_seconds at) {
  MYELIN_ASSIGN_OR_RETURN(auto ark_pin, secure::detail::spki_sha256(ark));
  const PinnedRoot* root = nullptr;
  for (const PinnedRoot& p : kPinnedRoots) {
    if (std::memcmp(p.spki_sha256.data(), ark_pin.data(), 32) == 0) root = &p;
  }
  if (root == nullptr) {
    return authentication_failed("ARK public key (SPKI SHA-256 " + secure::detail::hex(ark_pin) +
                                 ", CN '" + secure::detail::common_name(ark) +
                                 "') is not a pinned AMD root");
  }
  const std::string ark_role = "ARK (" + std::string(to_string(root->product)) + ")";
  EVP_PKEY* ark_key = X509_get0_pubkey(ark);
  EVP_PKEY* ask_key = X509_get0_pubkey(ask);
  if (ark_key == nullptr || ask_key == nullptr) return parse_error("unreadable ARK or ASK key");
  MYELIN_RETURN_IF_ERROR(check_signed_by(ark, ark_key, ark_role, ark_role));
  MYELIN_RETURN_IF_ERROR(check_valid_at(ark, at, ark_role));
  MYELIN_RETURN_IF_ERROR(check_signed_by(ask, ark_key, "ASK", ark_role));
  MYELIN_RETURN_IF_ERROR(check_valid_at(ask, at, "ASK"));
  MYELIN_RETURN_IF_ERROR(check_signed_by(vcek, ask_key, "VCEK", "ASK"));
  MYELIN_RETURN_IF_ERROR(check_valid_at(vcek, at, "VCEK"));
  return root->product;
}

// The VCEK was issued for one chip at one TCB: its extensions must name the
// report's CHIP_ID and REPORTED_TCB.
Status check_vcek_binds_report(X509* vcek, const Report& report) {
  static constexpr struct {
    const char* oid;
    const char* name;
    std::uint8_t Tcb::*field;
  } kTcbOids[] = {
      {"1.3.6.1.4.1.3704.1.3.1", "boot loader", &Tcb::bootloader},
      {"1.3.6.1.4.1.3704.1.3.2", "TEE", &Tcb::tee},
      {"1.3.6.1.4.1.3704.1.3.3", "SNP", &Tcb::snp},
      {"1.3.6.1.4.1.3704.1.3.8", "microcode", &Tcb::microcode},
  };
  const Tcb reported = Tcb::from_u64(report.reported_tcb);
  for (const auto& e : kTcbOids) {
    MYELIN_ASSIGN_OR_RETURN(std::uint32_t v, secure::detail::extension_uint(vcek, e.oid, "VCEK"));
    if (v != reported.*e.field) {
      return authentication_failed("REPORTED_TCB " + std::string(e.name) + " SVN " +
                                   std::to_string(reported.*e.field) + " differs from the VCEK's " +
                                   std::to_string(v) + " (" + e.oid + ")");
    }
  }
  MYELIN_ASSIGN_OR_RETURN(std::vector<std::byte> hwid,
                          secure::detail::extension_value(vcek, "1.3.6.1.4.1.3704.1.4", "VCEK"));
  // AMD's VCEKs hold the 64 bytes raw; accept them wrapped in an OCTET STRING too.
  if (hwid.size() == 66 && hwid[0] == std::byte{0x04} && hwid[1] == std::byte{64}) {
    hwid.erase(hwid.begin(), hwid.begin() + 2);
  }
  if (hwid.size() != report.chip_id.size()) {
    return parse_error("VCEK hwID extension holds " + std::to_string(hwid.size()) +
                       " bytes, not 64");
  }
  if (!secure::detail::equal_ct(hwid, report.chip_id)) {
    return authentication_failed(
        "CHIP_ID differs from the VCEK's hwID (the report was signed by "
        "another chip's key, or CHIP_ID is masked)");
  }
  return ok_status();
}

}  // namespace

std::string_view to_string(Product p) noexcept {
  switch (p) {
    case Product::kMilan:
      return "Milan";
    case Product::kGenoa:
      return "Genoa";
    case Product::kTurin:
      return "Turin";
  }
  return "?";
}

Tcb Tcb::from_u64(std::uint64_t raw) noexcept {
  return Tcb{static_cast<std::uint8_t>(raw), static_cast<std::uint8_t>(raw >> 8),
             static_cast<std::uint8_t>(raw >> 48), static_cast<std::uint8_t>(raw >> 56)};
}

bool Tcb::at_least(const Tcb& m) const noexcept {
  return bootloader >= m.bootloader && tee >= m.tee && snp >= m.snp && microcode >= m.microcode;
}

std::string to_string(const Tcb& t) {
  return "bootloader=" + std::to_string(t.bootloader) + " tee=" + std::to_string(t.tee) +
         " snp=" + std::to_string(t.snp) + " microcode=" + std::to_string(t.microcode);
}

Result<Report> parse_report(std::span<const std::byte> b) {
  if (b.size() != kReportSize) {
    return parse_error(std::string(kPrefix) + std::to_string(b.size()) + " bytes, expected " +
                       std::to_string(kReportSize));
  }
  Report r;
  r.version = u32_at(b, L::kVersion);
  if (r.version != 2 && r.version != 3) {
    return parse_error(std::string(kPrefix) + "unsupported version " + std::to_string(r.version) +
                       " (2 and 3 are supported)");
  }
  r.signature_algo = u32_at(b, L::kSignatureAlgo);
  if (r.signature_algo != 1) {
    return parse_error(std::string(kPrefix) + "unsupported signature algorithm " +
                       std::to_string(r.signature_algo) + " (1, ECDSA P-384 with SHA-384)");
  }
  r.guest_svn = u32_at(b, L::kGuestSvn);
  r.policy = u64_at(b, L::kPolicy);
  copy_at(b, L::kFamilyId, r.family_id);
  copy_at(b, L::kImageId, r.image_id);
  r.vmpl = u32_at(b, L::kVmpl);
  r.current_tcb = u64_at(b, L::kCurrentTcb);
  r.platform_info = u64_at(b, L::kPlatformInfo);
  r.key_info = u32_at(b, L::kKeyInfo);
  if (r.signing_key() != 0) {
    return parse_error(std::string(kPrefix) + "signed by key " + std::to_string(r.signing_key()) +
                       " (only the VCEK, 0, is supported; 1 is a VLEK)");
  }
  copy_at(b, L::kReportData, r.report_data);
  copy_at(b, L::kMeasurement, r.measurement);
  copy_at(b, L::kHostData, r.host_data);
  copy_at(b, L::kIdKeyDigest, r.id_key_digest);
  copy_at(b, L::kAuthorKeyDigest, r.author_key_digest);
  copy_at(b, L::kReportId, r.report_id);
  copy_at(b, L::kReportIdMa, r.report_id_ma);
  r.reported_tcb = u64_at(b, L::kReportedTcb);
  if (r.version >= 3) {
    r.cpuid_fam_id = std::to_integer<std::uint8_t>(b[L::kCpuidFamId]);
    r.cpuid_mod_id = std::to_integer<std::uint8_t>(b[L::kCpuidModId]);
    r.cpuid_step = std::to_integer<std::uint8_t>(b[L::kCpuidStep]);
  }
  copy_at(b, L::kChipId, r.chip_id);
  r.committed_tcb = u64_at(b, L::kCommittedTcb);
  r.launch_tcb = u64_at(b, L::kLaunchTcb);
  if (!scalar_at(b, L::kSigR, r.sig_r) || !scalar_at(b, L::kSigS, r.sig_s)) {
    return parse_error(std::string(kPrefix) +
                       "signature R or S has non-zero bytes above the 48 of a P-384 scalar");
  }
  return r;
}

Result<Collateral> load_collateral(std::string_view dir) {
  const std::string base(dir);
  Collateral c;
  auto vcek = secure::detail::read_file_bytes(base + "/vcek.der");
  if (!vcek) vcek = secure::detail::read_file_bytes(base + "/vcek.pem");
  if (!vcek) return std::move(vcek).error();
  c.vcek = std::move(*vcek);
  MYELIN_ASSIGN_OR_RETURN(c.ask, secure::detail::read_file_bytes(base + "/ask.pem"));
  MYELIN_ASSIGN_OR_RETURN(c.ark, secure::detail::read_file_bytes(base + "/ark.pem"));
  return c;
}

std::array<std::byte, 64> binding_report_data(std::span<const std::byte, 32> report_data) {
  std::array<std::byte, 64> out{};
  std::memcpy(out.data(), report_data.data(), 32);
  return out;
}

Status check_policy(const Report& report, Product product, const Policy& policy) {
  if (!policy.products.empty() &&
      std::find(policy.products.begin(), policy.products.end(), product) == policy.products.end()) {
    return fail(authentication_failed("product " + std::string(to_string(product)) +
                                      " is not accepted by the policy"));
  }
  if (report.debug() && !policy.allow_debug) {
    return fail(authentication_failed(
        "guest policy has DEBUG set (bit 19): the hypervisor can read and change guest memory"));
  }
  const Tcb tcb = Tcb::from_u64(report.reported_tcb);
  if (!tcb.at_least(policy.minimum_tcb)) {
    return fail(authentication_failed("REPORTED_TCB (" + to_string(tcb) +
                                      ") is below the policy minimum (" +
                                      to_string(policy.minimum_tcb) + ")"));
  }
  if (policy.report_data && !secure::detail::equal_ct(*policy.report_data, report.report_data)) {
    return fail(authentication_failed("REPORT_DATA does not carry the expected binding"));
  }
  return ok_status();
}

Result<Verified> verify_report(std::span<const std::byte> bytes, const Collateral& collateral,
                               const Policy& policy, std::chrono::sys_seconds at) {
  MYELIN_ASSIGN_OR_RETURN(Report report, parse_report(bytes));
  auto vcek = secure::detail::parse_certificate(collateral.vcek, "VCEK");
  auto ask = secure::detail::parse_certificate(collateral.ask, "ASK");
  auto ark = secure::detail::parse_certificate(collateral.ark, "ARK");
  if (!vcek) return fail(std::move(vcek).error());
  if (!ask) return fail(std::move(ask).error());
  if (!ark) return fail(std::move(ark).error());
  auto product = check_chain(ark->get(), ask->get(), vcek->get(), at);
  if (!product) return fail(std::move(product).error().with_context("VCEK chain"));
  EVP_PKEY* vcek_key = X509_get0_pubkey(vcek->get());
  if (vcek_key == nullptr) return fail(parse_error("VCEK public key unreadable"));
  MYELIN_RETURN_IF_ERROR(fail(check_report_signature(bytes, report, vcek_key)));
  MYELIN_RETURN_IF_ERROR(fail(check_vcek_binds_report(vcek->get(), report)));
  MYELIN_RETURN_IF_ERROR(check_policy(report, *product, policy));
  Verified v;
  v.product = *product;
  v.reported_tcb = Tcb::from_u64(report.reported_tcb);
  v.report = report;
  return v;
}

VerifiedEvidence to_evidence(const Verified& v) {
  VerifiedEvidence e;
  e.kind = "sev-snp";
  e.identity = "AMD SEV-SNP " + std::string(to_string(v.product)) + " chip " +
               secure::detail::hex(std::span(v.report.chip_id).first(8)) + "...";
  auto add = [&](std::string name, std::span<const std::byte> value) {
    e.measurements.push_back({std::move(name), std::vector<std::byte>(value.begin(), value.end())});
  };
  auto le = [](std::uint64_t x, std::size_t n) {
    std::vector<std::byte> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = std::byte(x >> (8 * i));
    return out;
  };
  add("measurement", v.report.measurement);
  add("host_data", v.report.host_data);
  add("id_key_digest", v.report.id_key_digest);
  add("author_key_digest", v.report.author_key_digest);
  add("family_id", v.report.family_id);
  add("image_id", v.report.image_id);
  add("guest_svn", le(v.report.guest_svn, 4));
  add("policy", le(v.report.policy, 8));
  add("reported_tcb", le(v.report.reported_tcb, 8));
  add("chip_id", v.report.chip_id);
  return e;
}

Verifier::Verifier(Collateral collateral, Policy policy, WallClock now,
                   std::optional<std::array<std::byte, 64>> recorded_report_data)
    : collateral_(std::move(collateral)),
      policy_(std::move(policy)),
      now_(std::move(now)),
      recorded_report_data_(recorded_report_data) {}

Result<VerifiedEvidence> Verifier::verify(std::span<const std::byte> evidence,
                                          std::span<const std::byte, 32> expected) const {
  Policy policy = policy_;
  policy.report_data =
      recorded_report_data_ ? *recorded_report_data_ : binding_report_data(expected);
  MYELIN_ASSIGN_OR_RETURN(Verified v, verify_report(evidence, collateral_, policy, now_()));
  return to_evidence(v);
}

}  // namespace myelin::secure::snp
