#include "src/secure/attestation/x509.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>

namespace myelin::secure::detail {
namespace {

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

struct ObjFree {
  void operator()(ASN1_OBJECT* o) const noexcept { ASN1_OBJECT_free(o); }
};

struct IntFree {
  void operator()(ASN1_INTEGER* i) const noexcept { ASN1_INTEGER_free(i); }
};

std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

std::string hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    out.push_back(kDigits[std::to_integer<unsigned>(b) >> 4]);
    out.push_back(kDigits[std::to_integer<unsigned>(b) & 15]);
  }
  return out;
}

Result<X509Ptr> parse_certificate(std::span<const std::byte> bytes, std::string_view role) {
  if (bytes.empty()) return parse_error(std::string(role) + " certificate: empty");
  const std::string_view text = as_text(bytes);
  if (text.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    auto chain = parse_pem_chain(text, role);
    if (!chain) return std::move(chain).error();
    return std::move(chain->front());
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(bytes.size())));
  ERR_clear_error();
  if (!cert) return parse_error(std::string(role) + " certificate: not valid DER");
  if (p != reinterpret_cast<const unsigned char*>(bytes.data()) + bytes.size()) {
    return parse_error(std::string(role) + " certificate: trailing bytes after the DER");
  }
  return cert;
}

Result<std::vector<X509Ptr>> parse_pem_chain(std::string_view pem, std::string_view role) {
  if (pem.size() > (1u << 24)) return parse_error(std::string(role) + " certificates: too large");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return internal_error("BIO_new_mem_buf failed");
  std::vector<X509Ptr> out;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    out.push_back(std::move(cert));
  }
  ERR_clear_error();
  if (out.empty()) return parse_error(std::string(role) + " certificates: no PEM certificate");
  return out;
}

Status check_signed_by(X509* cert, EVP_PKEY* issuer_key, std::string_view role,
                       std::string_view issuer_role) {
  const int rc = X509_verify(cert, issuer_key);
  ERR_clear_error();
  if (rc != 1) {
    return authentication_failed(std::string(role) + " signature does not verify with " +
                                 std::string(issuer_role));
  }
  return ok_status();
}

Status check_valid_at(X509* cert, std::chrono::sys_seconds at, std::string_view role) {
  std::time_t t = static_cast<std::time_t>(at.time_since_epoch().count());
  // X509_cmp_time: -1 if the ASN1 time is before t, 1 if after, 0 on error.
  const int nb = X509_cmp_time(X509_get0_notBefore(cert), &t);
  const int na = X509_cmp_time(X509_get0_notAfter(cert), &t);
  if (nb == 0 || na == 0) {
    return parse_error(std::string(role) + " certificate: unreadable validity period");
  }
  if (nb > 0) return authentication_failed(std::string(role) + " certificate: not yet valid");
  if (na < 0) return authentication_failed(std::string(role) + " certificate: expired");
  return ok_status();
}

Result<std::array<std::byte, 32>> spki_sha256(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
  if (len <= 0) return parse_error("certificate: public key cannot be encoded");
  std::array<std::byte, 32> out{};
  SHA256(der, static_cast<std::size_t>(len), reinterpret_cast<unsigned char*>(out.data()));
  OPENSSL_free(der);
  return out;
}

Result<std::vector<std::byte>> extension_value(X509* cert, const char* oid, std::string_view role) {
  std::unique_ptr<ASN1_OBJECT, ObjFree> obj(OBJ_txt2obj(oid, 1));
  if (!obj) return internal_error(std::string("bad OID ") + oid);
  const int at = X509_get_ext_by_OBJ(cert, obj.get(), -1);
  if (at < 0) {
    return not_found(std::string(role) + " certificate: no extension " + oid);
  }
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(cert, at));
  const auto* p = reinterpret_cast<const std::byte*>(ASN1_STRING_get0_data(data));
  return std::vector<std::byte>(p, p + ASN1_STRING_length(data));
}

Result<std::uint32_t> extension_uint(X509* cert, const char* oid, std::string_view role) {
  MYELIN_ASSIGN_OR_RETURN(std::vector<std::byte> der, extension_value(cert, oid, role));
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ASN1_INTEGER, IntFree> value(
      d2i_ASN1_INTEGER(nullptr, &p, static_cast<long>(der.size())));
  ERR_clear_error();
  std::uint64_t v = 0;
  if (!value || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size() ||
      ASN1_INTEGER_get_uint64(&v, value.get()) != 1 || v > 0xffffffffu) {
    ERR_clear_error();
    return parse_error(std::string(role) + " certificate: extension " + oid +
                       " is not a small non-negative INTEGER");
  }
  return static_cast<std::uint32_t>(v);
}

bool verify_ecdsa_rs(EVP_PKEY* key, const EVP_MD* md, std::span<const std::byte> message,
                     std::span<const std::byte> r, std::span<const std::byte> s) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* br = BN_bin2bn(reinterpret_cast<const unsigned char*>(r.data()),
                         static_cast<int>(r.size()), nullptr);
  BIGNUM* bs = BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()),
                         static_cast<int>(s.size()), nullptr);
  if (sig == nullptr || br == nullptr || bs == nullptr || ECDSA_SIG_set0(sig, br, bs) != 1) {
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(sig);
    ERR_clear_error();
    return false;
  }
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  bool ok = false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (der_len > 0 && ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key) == 1) {
    ok = EVP_DigestVerify(ctx, der, static_cast<std::size_t>(der_len),
                          reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
  }
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}

Result<PkeyPtr> p256_public_key(std::span<const std::byte, 64> xy) {
  unsigned char point[65];
  point[0] = 0x04;  // uncompressed
  std::memcpy(point + 1, xy.data(), 64);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("prime256v1"),
                                       0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
      OSSL_PARAM_construct_end()};
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  const bool ok = ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
                  EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    EVP_PKEY_free(key);
    ERR_clear_error();
    return parse_error("attestation key is not a point on P-256");
  }
  // EVP_PKEY_fromdata does not check that the point is on the curve.
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
  const bool on_curve = check != nullptr && EVP_PKEY_public_check(check) == 1;
  EVP_PKEY_CTX_free(check);
  ERR_clear_error();
  PkeyPtr owned(key);
  if (!on_curve) return parse_error("attestation key is not a point on P-256");
  return owned;
}

std::string common_name(X509* cert) {
  char buf[256] = {};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf,
                                          static_cast<int>(sizeof buf));
  ERR_clear_error();
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

Result<std::vector<std::byte>> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": " + std::strerror(errno));
  std::vector<char> text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return io_error(path + ": read failed");
  std::vector<std::byte> out(text.size());
  if (!text.empty()) std::memcpy(out.data(), text.data(), text.size());
  return out;
}

}  // namespace myelin::secure::detail
