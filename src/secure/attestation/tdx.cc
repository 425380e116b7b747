#include "myelin/secure/tdx.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "src/secure/attestation/tdx_layout.h"
#include "src/secure/attestation/x509.h"
#include "src/secure/crypto.h"

namespace myelin::secure::tdx {

namespace L = detail::layout;
using secure::detail::X509Ptr;

namespace {

constexpr std::string_view kPrefix = "TDX quote: ";

Status fail(Status s) { return std::move(s).with_context("TDX quote"); }

// SHA-256 of the DER SubjectPublicKeyInfo of Intel's SGX Root CA (CN=Intel
// SGX Root CA, P-256, certificate SHA-256 44a0196b...b674d3, valid
// 2018-05-21 to 2049-12-31). Taken from the root of the PCK chain in the real
// quote in testdata/; the same key is pinned by other public verifiers. It
// was not compared with Intel's published certificate on this machine
// (offline).
constexpr unsigned char kIntelRootSpkiSha256[32] = {
    0xa0, 0xaf, 0x03, 0x12, 0x89, 0xf5, 0xd5, 0xd4, 0x13, 0x2f, 0x91, 0x86, 0x06, 0x8a, 0x7f, 0xc1,
    0x36, 0x28, 0x63, 0x3b, 0xa2, 0x35, 0x77, 0x74, 0x72, 0xe2, 0x9b, 0x6b, 0x6c, 0x67, 0xa4, 0x9e};

std::uint64_t le_at(std::span<const std::byte> b, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(b[at + i]);
  return v;
}

template <std::size_t N>
void copy_at(std::span<const std::byte> b, std::size_t at, std::array<std::byte, N>& out) {
  std::memcpy(out.data(), b.data() + at, N);
}

// A bounds-checked cursor over the signature data.
struct Reader {
  std::span<const std::byte> b;
  std::size_t at = 0;
  bool take(std::size_t n, std::span<const std::byte>& out) {
    if (n > b.size() - at) return false;
    out = b.subspan(at, n);
    at += n;
    return true;
  }
};

TdReport parse_td_report(std::span<const std::byte> t) {
  TdReport r;
  copy_at(t, L::kTeeTcbSvn, r.tee_tcb_svn);
  copy_at(t, L::kMrSeam, r.mr_seam);
  copy_at(t, L::kMrSignerSeam, r.mr_signer_seam);
  r.seam_attributes = le_at(t, L::kSeamAttributes, 8);
  r.td_attributes = le_at(t, L::kTdAttributes, 8);
  r.xfam = le_at(t, L::kXfam, 8);
  copy_at(t, L::kMrTd, r.mr_td);
  copy_at(t, L::kMrConfigId, r.mr_config_id);
  copy_at(t, L::kMrOwner, r.mr_owner);
  copy_at(t, L::kMrOwnerConfig, r.mr_owner_config);
  for (std::size_t i = 0; i < 4; ++i) copy_at(t, L::kRtmr0 + 48 * i, r.rtmr[i]);
  copy_at(t, L::kReportData, r.report_data);
  return r;
}

QeReport parse_qe_report(std::span<const std::byte> q) {
  QeReport r;
  copy_at(q, L::kQeCpuSvn, r.cpu_svn);
  r.misc_select = static_cast<std::uint32_t>(le_at(q, L::kQeMiscSelect, 4));
  copy_at(q, L::kQeAttributes, r.attributes);
  copy_at(q, L::kQeMrEnclave, r.mr_enclave);
  copy_at(q, L::kQeMrSigner, r.mr_signer);
  r.isv_prod_id = static_cast<std::uint16_t>(le_at(q, L::kQeIsvProdId, 2));
  r.isv_svn = static_cast<std::uint16_t>(le_at(q, L::kQeIsvSvn, 2));
  copy_at(q, L::kQeReportData, r.report_data);
  return r;
}

struct SeqFree {
  void operator()(ASN1_SEQUENCE_ANY* s) const noexcept { sk_ASN1_TYPE_pop_free(s, ASN1_TYPE_free); }
};
using Seq = std::unique_ptr<ASN1_SEQUENCE_ANY, SeqFree>;

Seq parse_sequence(const unsigned char* der, long len) {
  const unsigned char* p = der;
  Seq seq(d2i_ASN1_SEQUENCE_ANY(nullptr, &p, len));
  ERR_clear_error();
  if (seq && p != der + len) seq.reset();
  return seq;
}

std::string oid_text(const ASN1_OBJECT* obj) {
  char buf[80] = {};
  OBJ_obj2txt(buf, sizeof buf, obj, 1);
  return buf;
}

// Intel's SGX extension: SEQUENCE OF SEQUENCE { OID, value }, where the TCB
// entry (.2) is itself SEQUENCE OF SEQUENCE { OID .2.N, INTEGER } for the 16
// component SVNs (N = 1..16) and the PCE SVN (N = 17), and FMSPC (.4) is an
// OCTET STRING of 6 bytes.
Result<PckTcb> parse_pck_tcb(X509* pck) {
  MYELIN_ASSIGN_OR_RETURN(std::vector<std::byte> ext,
                          secure::detail::extension_value(pck, "1.2.840.113741.1.13.1", "PCK"));
  auto bad = [](std::string what) {
    return parse_error("PCK certificate: SGX extension: " + std::move(what));
  };
  Seq top = parse_sequence(reinterpret_cast<const unsigned char*>(ext.data()),
                           static_cast<long>(ext.size()));
  if (!top) return bad("not a DER SEQUENCE");
  PckTcb out;
  bool have_tcb = false, have_fmspc = false;
  for (int i = 0; i < sk_ASN1_TYPE_num(top.get()); ++i) {
    const ASN1_TYPE* item = sk_ASN1_TYPE_value(top.get(), i);
    if (item->type != V_ASN1_SEQUENCE) return bad("entry is not a SEQUENCE");
    Seq pair = parse_sequence(item->value.sequence->data, item->value.sequence->length);
    if (!pair || sk_ASN1_TYPE_num(pair.get()) != 2 ||
        sk_ASN1_TYPE_value(pair.get(), 0)->type != V_ASN1_OBJECT) {
      return bad("entry is not { OID, value }");
    }
    const std::string oid = oid_text(sk_ASN1_TYPE_value(pair.get(), 0)->value.object);
    const ASN1_TYPE* value = sk_ASN1_TYPE_value(pair.get(), 1);
    if (oid == "1.2.840.113741.1.13.1.4") {
      if (value->type != V_ASN1_OCTET_STRING || value->value.octet_string->length != 6) {
        return bad("FMSPC is not 6 bytes");
      }
      std::memcpy(out.fmspc.data(), value->value.octet_string->data, 6);
      have_fmspc = true;
    } else if (oid == "1.2.840.113741.1.13.1.2") {
      if (value->type != V_ASN1_SEQUENCE) return bad("TCB is not a SEQUENCE");
      Seq tcb = parse_sequence(value->value.sequence->data, value->value.sequence->length);
      if (!tcb) return bad("TCB is not a DER SEQUENCE");
      unsigned seen = 0;
      for (int j = 0; j < sk_ASN1_TYPE_num(tcb.get()); ++j) {
        const ASN1_TYPE* t = sk_ASN1_TYPE_value(tcb.get(), j);
        if (t->type != V_ASN1_SEQUENCE) return bad("TCB entry is not a SEQUENCE");
        Seq comp = parse_sequence(t->value.sequence->data, t->value.sequence->length);
        if (!comp || sk_ASN1_TYPE_num(comp.get()) != 2 ||
            sk_ASN1_TYPE_value(comp.get(), 0)->type != V_ASN1_OBJECT) {
          return bad("TCB entry is not { OID, value }");
        }
        const std::string coid = oid_text(sk_ASN1_TYPE_value(comp.get(), 0)->value.object);
        const ASN1_TYPE* cv = sk_ASN1_TYPE_value(comp.get(), 1);
        const std::string prefix = "1.2.840.113741.1.13.1.2.";
        if (coid.rfind(prefix, 0) != 0) continue;
        int n = 0;
        if (std::sscanf(coid.c_str() + prefix.size(), "%d", &n) != 1) continue;
        if (n < 1 || n > 17) continue;  // 18 is the CPUSVN as bytes
        std::uint64_t v = 0;
        if (cv->type != V_ASN1_INTEGER || ASN1_INTEGER_get_uint64(&v, cv->value.integer) != 1 ||
            v > (n == 17 ? 0xffffu : 0xffu)) {
          ERR_clear_error();
          return bad("TCB component " + std::to_string(n) + " is not a small INTEGER");
        }
        if (n == 17) {
          out.pce_svn = static_cast<std::uint16_t>(v);
        } else {
          out.sgx_components[static_cast<std::size_t>(n - 1)] = static_cast<std::uint8_t>(v);
        }
        seen |= 1u << n;
      }
      if (seen != 0x3fffeu) return bad("TCB lacks some of components 1-16 and PCESVN");
      have_tcb = true;
    }
  }
  if (!have_tcb || !have_fmspc) return bad("no TCB or no FMSPC");
  return out;
}

// Intel's chain: PCK leaf, PCK Platform (or Processor) CA, SGX Root CA.
Result<X509Ptr> check_pck_chain(const std::string& pem, std::chrono::sys_seconds at) {
  MYELIN_ASSIGN_OR_RETURN(auto chain, secure::detail::parse_pem_chain(pem, "PCK chain"));
  if (chain.size() != 3) {
    return parse_error("PCK chain: " + std::to_string(chain.size()) +
                       " certificates, expected 3 (PCK, intermediate CA, root)");
  }
  X509* leaf = chain[0].get();
  X509* ca = chain[1].get();
  X509* root = chain[2].get();
  MYELIN_ASSIGN_OR_RETURN(auto pin, secure::detail::spki_sha256(root));
  if (std::memcmp(pin.data(), kIntelRootSpkiSha256, 32) != 0) {
    return authentication_failed(
        "PCK chain: root public key (SPKI SHA-256 " + secure::detail::hex(pin) + ", CN '" +
        secure::detail::common_name(root) + "') is not Intel's pinned SGX Root CA");
  }
  EVP_PKEY* root_key = X509_get0_pubkey(root);
  EVP_PKEY* ca_key = X509_get0_pubkey(ca);
  if (root_key == nullptr || ca_key == nullptr) return parse_error("PCK chain: unreadable key");
  const std::string ca_role = "PCK CA (" + secure::detail::common_name(ca) + ")";
  using secure::detail::check_signed_by;
  using secure::detail::check_valid_at;
  MYELIN_RETURN_IF_ERROR(check_signed_by(root, root_key, "SGX Root CA", "SGX Root CA"));
  MYELIN_RETURN_IF_ERROR(check_valid_at(root, at, "SGX Root CA"));
  MYELIN_RETURN_IF_ERROR(check_signed_by(ca, root_key, ca_role, "SGX Root CA"));
  MYELIN_RETURN_IF_ERROR(check_valid_at(ca, at, ca_role));
  MYELIN_RETURN_IF_ERROR(check_signed_by(leaf, ca_key, "PCK", ca_role));
  MYELIN_RETURN_IF_ERROR(check_valid_at(leaf, at, "PCK"));
  return std::move(chain[0]);
}

Result<std::chrono::sys_seconds> parse_iso8601(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z) != 7 ||
      z != 'Z') {
    return parse_error("not an ISO 8601 UTC time: '" + text + "'");
  }
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return parse_error("bad date '" + text + "'");
  return sys_days{ymd} + hours{h} + minutes{mi} + seconds{s};
}

Result<std::array<std::uint8_t, 16>> svn_array(const nlohmann::json& comps, const char* what) {
  std::array<std::uint8_t, 16> out{};
  if (!comps.is_array() || comps.size() != 16) {
    return parse_error(std::string("TCB info: ") + what + " is not an array of 16");
  }
  for (std::size_t i = 0; i < 16; ++i) {
    const auto& c = comps[i];
    if (!c.is_object() || !c.contains("svn") || !c["svn"].is_number_unsigned() ||
        c["svn"].get<std::uint64_t>() > 255) {
      return parse_error(std::string("TCB info: ") + what + "[" + std::to_string(i) +
                         "].svn is not a number 0-255");
    }
    out[i] = static_cast<std::uint8_t>(c["svn"].get<std::uint64_t>());
  }
  return out;
}

}  // namespace

Result<Quote> parse_quote(std::span<const std::byte> b) {
  const auto err = [](std::string what) { return parse_error(std::string(kPrefix) + what); };
  if (b.size() > kMaxQuoteSize) {
    return err(std::to_string(b.size()) + " bytes, more than " + std::to_string(kMaxQuoteSize));
  }
  if (b.size() < L::kSigData) {
    return err(std::to_string(b.size()) + " bytes, shorter than header, TD report and length");
  }
  Quote q;
  q.version = static_cast<std::uint16_t>(le_at(b, L::kVersion, 2));
  q.attestation_key_type = static_cast<std::uint16_t>(le_at(b, L::kAttestationKeyType, 2));
  q.tee_type = static_cast<std::uint32_t>(le_at(b, L::kTeeType, 4));
  if (q.version != 4) return err("unsupported version " + std::to_string(q.version) + " (4)");
  if (q.attestation_key_type != 2) {
    return err("unsupported attestation key type " + std::to_string(q.attestation_key_type) +
               " (2, ECDSA P-256)");
  }
  if (q.tee_type != 0x81)
    return err("TEE type " + std::to_string(q.tee_type) + " is not TDX (0x81)");
  copy_at(b, L::kQeVendorId, q.qe_vendor_id);
  q.td = parse_td_report(b.subspan(kHeaderSize, kTdReportSize));
  const std::uint64_t sig_len = le_at(b, L::kSigDataLength, 4);
  if (sig_len != b.size() - L::kSigData) {
    return err("signature data length " + std::to_string(sig_len) + " but " +
               std::to_string(b.size() - L::kSigData) + " bytes follow");
  }
  Reader r{b.subspan(L::kSigData)};
  std::span<const std::byte> part;
  if (!r.take(64, part)) return err("signature data truncated (quote signature)");
  std::memcpy(q.signature.data(), part.data(), 64);
  if (!r.take(64, part)) return err("signature data truncated (attestation key)");
  std::memcpy(q.attestation_key.data(), part.data(), 64);
  if (!r.take(L::kCertHeader, part)) return err("signature data truncated (certification data)");
  const auto type = static_cast<std::uint16_t>(le_at(part, 0, 2));
  const std::uint64_t size = le_at(part, 2, 4);
  if (type != L::kCertTypeQeReport) {
    return err("certification data type " + std::to_string(type) + " (6, QE report, expected)");
  }
  if (size != r.b.size() - r.at) {
    return err("certification data size " + std::to_string(size) + " but " +
               std::to_string(r.b.size() - r.at) + " bytes follow");
  }
  if (!r.take(kQeReportSize, part)) return err("QE report truncated");
  std::memcpy(q.qe_report_bytes.data(), part.data(), kQeReportSize);
  q.qe_report = parse_qe_report(part);
  if (!r.take(64, part)) return err("QE report signature truncated");
  std::memcpy(q.qe_report_signature.data(), part.data(), 64);
  if (!r.take(2, part)) return err("QE auth data truncated");
  if (!r.take(le_at(part, 0, 2), part)) return err("QE auth data truncated");
  q.qe_auth_data.assign(part.begin(), part.end());
  if (!r.take(L::kCertHeader, part)) return err("PCK certification data truncated");
  const auto inner_type = static_cast<std::uint16_t>(le_at(part, 0, 2));
  const std::uint64_t inner_size = le_at(part, 2, 4);
  if (inner_type != L::kCertTypePckChain) {
    return err("inner certification data type " + std::to_string(inner_type) +
               " (5, PCK chain, expected)");
  }
  if (inner_size != r.b.size() - r.at) {
    return err("PCK chain size " + std::to_string(inner_size) + " but " +
               std::to_string(r.b.size() - r.at) + " bytes follow");
  }
  (void)r.take(inner_size, part);
  q.pck_chain_pem.assign(reinterpret_cast<const char*>(part.data()), part.size());
  return q;
}

namespace {

Result<std::string> evaluate_tcb_json(std::string_view tcb_info_json, const PckTcb& pck,
                                      std::span<const std::byte, 16> tee_tcb_svn,
                                      std::chrono::sys_seconds at) {
  const nlohmann::json doc = nlohmann::json::parse(tcb_info_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("tcbInfo") ||
      !doc["tcbInfo"].is_object()) {
    return parse_error("TCB info: not a JSON object with 'tcbInfo'");
  }
  const nlohmann::json& info = doc["tcbInfo"];
  auto str = [&](const char* key) -> std::string {
    return info.contains(key) && info[key].is_string() ? info[key].get<std::string>() : "";
  };
  if (str("id") != "TDX") return parse_error("TCB info: id is '" + str("id") + "', not 'TDX'");
  MYELIN_ASSIGN_OR_RETURN(auto issued, parse_iso8601(str("issueDate")));
  MYELIN_ASSIGN_OR_RETURN(auto next_update, parse_iso8601(str("nextUpdate")));
  if (at < issued) return authentication_failed("TCB info: issued after the verification time");
  if (at > next_update) {
    return authentication_failed("TCB info: out of date (nextUpdate " + str("nextUpdate") + ")");
  }
  std::string fmspc = str("fmspc");
  for (char& c : fmspc) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (fmspc != secure::detail::hex(pck.fmspc)) {
    return authentication_failed("TCB info: FMSPC " + str("fmspc") +
                                 " is not the PCK certificate's " + secure::detail::hex(pck.fmspc));
  }
  if (!info.contains("tcbLevels") || !info["tcbLevels"].is_array()) {
    return parse_error("TCB info: no tcbLevels array");
  }
  std::array<std::uint8_t, 16> tee{};
  for (std::size_t i = 0; i < 16; ++i) tee[i] = std::to_integer<std::uint8_t>(tee_tcb_svn[i]);
  for (const nlohmann::json& level : info["tcbLevels"]) {
    if (!level.is_object() || !level.contains("tcb") || !level["tcb"].is_object() ||
        !level.contains("tcbStatus") || !level["tcbStatus"].is_string()) {
      return parse_error("TCB info: a TCB level lacks 'tcb' or 'tcbStatus'");
    }
    const nlohmann::json& tcb = level["tcb"];
    MYELIN_ASSIGN_OR_RETURN(
        auto sgx, svn_array(tcb.value("sgxtcbcomponents", nlohmann::json()), "sgxtcbcomponents"));
    MYELIN_ASSIGN_OR_RETURN(
        auto tdx, svn_array(tcb.value("tdxtcbcomponents", nlohmann::json()), "tdxtcbcomponents"));
    if (!tcb.contains("pcesvn") || !tcb["pcesvn"].is_number_unsigned()) {
      return parse_error("TCB info: a TCB level has no pcesvn");
    }
    bool match = tcb["pcesvn"].get<std::uint64_t>() <= pck.pce_svn;
    for (std::size_t i = 0; i < 16; ++i) {
      match = match && pck.sgx_components[i] >= sgx[i] && tee[i] >= tdx[i];
    }
    if (!match) continue;
    if (tdx[1] != tee[1]) {
      return authentication_failed("TCB info: the matching level's TDX module SVN (" +
                                   std::to_string(tdx[1]) + ") differs from the TD report's (" +
                                   std::to_string(tee[1]) + ")");
    }
    return level["tcbStatus"].get<std::string>();
  }
  std::string sgx_text, tee_text;
  for (std::size_t i = 0; i < 16; ++i) {
    sgx_text += (i ? "," : "") + std::to_string(pck.sgx_components[i]);
    tee_text += (i ? "," : "") + std::to_string(tee[i]);
  }
  return authentication_failed("TCB info: no TCB level matches (PCK SGX TCB " + sgx_text +
                               ", PCESVN " + std::to_string(pck.pce_svn) + "; TEE TCB SVN " +
                               tee_text + "): the TCB is not supported");
}

}  // namespace

Result<std::string> evaluate_tcb(std::string_view tcb_info_json, const PckTcb& pck,
                                 std::span<const std::byte, 16> tee_tcb_svn,
                                 std::chrono::sys_seconds at) {
  // nlohmann::json throws on misuse; every access above checks the type
  // first, and this boundary keeps any exception from crossing the API.
  try {
    return evaluate_tcb_json(tcb_info_json, pck, tee_tcb_svn, at);
  } catch (const std::exception& e) {
    return parse_error(std::string("TCB info: ") + e.what());
  }
}

std::array<std::byte, 64> binding_report_data(std::span<const std::byte, 32> report_data) {
  std::array<std::byte, 64> out{};
  std::memcpy(out.data(), report_data.data(), 32);
  return out;
}

Status check_policy(const Quote& q, const Policy& policy) {
  if ((q.td.td_attributes & kTdAttributeDebug) != 0 && !policy.allow_debug) {
    return fail(authentication_failed(
        "TD attributes have DEBUG set (bit 0): the host can read and change TD state"));
  }
  if (policy.report_data && !secure::detail::equal_ct(*policy.report_data, q.td.report_data)) {
    return fail(authentication_failed("REPORT_DATA does not carry the expected binding"));
  }
  return ok_status();
}

Result<Verified> verify_quote(std::span<const std::byte> bytes, const Policy& policy,
                              std::chrono::sys_seconds at) {
  MYELIN_ASSIGN_OR_RETURN(Quote q, parse_quote(bytes));
  auto pck = check_pck_chain(q.pck_chain_pem, at);
  if (!pck) return fail(std::move(pck).error());
  EVP_PKEY* pck_key = X509_get0_pubkey(pck->get());
  if (pck_key == nullptr || EVP_PKEY_is_a(pck_key, "EC") != 1) {
    ERR_clear_error();
    return fail(parse_error("PCK key is not an EC key"));
  }
  const auto sig = std::span<const std::byte>(q.qe_report_signature);
  if (!secure::detail::verify_ecdsa_rs(pck_key, EVP_sha256(), q.qe_report_bytes, sig.first(32),
                                       sig.last(32))) {
    return fail(authentication_failed("QE report signature does not verify with the PCK key"));
  }
  const auto expected = secure::detail::sha256({q.attestation_key, q.qe_auth_data});
  std::array<std::byte, 64> qe_rd{};
  std::memcpy(qe_rd.data(), expected.data(), 32);
  if (!secure::detail::equal_ct(qe_rd, q.qe_report.report_data)) {
    return fail(authentication_failed(
        "QE report data is not SHA-256(attestation key || QE auth data) || 32 zero bytes"));
  }
  auto ak = secure::detail::p256_public_key(q.attestation_key);
  if (!ak) return fail(std::move(ak).error());
  const auto qsig = std::span<const std::byte>(q.signature);
  if (!secure::detail::verify_ecdsa_rs(ak->get(), EVP_sha256(), bytes.first(kSignedSize),
                                       qsig.first(32), qsig.last(32))) {
    return fail(authentication_failed(
        "signature (ECDSA P-256 over header and TD report) does not verify with the attestation "
        "key"));
  }
  Verified v;
  auto pck_tcb = parse_pck_tcb(pck->get());
  if (!pck_tcb) return fail(std::move(pck_tcb).error());
  v.pck_tcb = *pck_tcb;
  if (!policy.tcb_info_json.empty()) {
    auto status = evaluate_tcb(policy.tcb_info_json, v.pck_tcb, q.td.tee_tcb_svn, at);
    if (!status) return fail(std::move(status).error());
    if (std::find(policy.accepted_tcb_statuses.begin(), policy.accepted_tcb_statuses.end(),
                  *status) == policy.accepted_tcb_statuses.end()) {
      return fail(
          authentication_failed("TCB status " + *status + " is not accepted by the policy"));
    }
    v.tcb_status = *status;
  }
  MYELIN_RETURN_IF_ERROR(check_policy(q, policy));
  v.quote = std::move(q);
  return v;
}

VerifiedEvidence to_evidence(const Verified& v) {
  VerifiedEvidence e;
  e.kind = "tdx";
  e.identity = "Intel TDX FMSPC " + secure::detail::hex(v.pck_tcb.fmspc) +
               (v.tcb_status.empty() ? "" : " TCB " + v.tcb_status);
  auto add = [&](std::string name, std::span<const std::byte> value) {
    e.measurements.push_back({std::move(name), std::vector<std::byte>(value.begin(), value.end())});
  };
  auto le = [](std::uint64_t x) {
    std::vector<std::byte> out(8);
    for (std::size_t i = 0; i < 8; ++i) out[i] = std::byte(x >> (8 * i));
    return out;
  };
  const TdReport& td = v.quote.td;
  add("mrtd", td.mr_td);
  for (std::size_t i = 0; i < 4; ++i) add("rtmr" + std::to_string(i), td.rtmr[i]);
  add("mrconfigid", td.mr_config_id);
  add("mrowner", td.mr_owner);
  add("mrownerconfig", td.mr_owner_config);
  add("mrseam", td.mr_seam);
  add("td_attributes", le(td.td_attributes));
  add("xfam", le(td.xfam));
  add("tee_tcb_svn", td.tee_tcb_svn);
  return e;
}

Verifier::Verifier(Policy policy, WallClock now,
                   std::optional<std::array<std::byte, 64>> recorded_report_data)
    : policy_(std::move(policy)),
      now_(std::move(now)),
      recorded_report_data_(recorded_report_data) {}

Result<VerifiedEvidence> Verifier::verify(std::span<const std::byte> evidence,
                                          std::span<const std::byte, 32> expected) const {
  Policy policy = policy_;
  policy.report_data =
      recorded_report_data_ ? *recorded_report_data_ : binding_report_data(expected);
  MYELIN_ASSIGN_OR_RETURN(Verified v, verify_quote(evidence, policy, now_()));
  return to_evidence(v);
}

}  // namespace myelin::secure::tdx
