// X.509 helpers shared by the SEV-SNP and TDX verifiers: thin owners over
// OpenSSL objects and the checks both chains need (signature by an issuer's
// key, validity at a given time, extensions by OID, key fingerprints).
// Errors name the certificate by the role the caller gives it ("VCEK").
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/status.h"

namespace myelin::secure::detail {

struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// One certificate in DER or PEM (the first PEM block).
Result<X509Ptr> parse_certificate(std::span<const std::byte> bytes, std::string_view role);

// Every certificate of a PEM bundle, in order.
Result<std::vector<X509Ptr>> parse_pem_chain(std::string_view pem, std::string_view role);

// `cert` is signed by `issuer_key` (any algorithm OpenSSL accepts in a
// certificate, RSASSA-PSS included).
Status check_signed_by(X509* cert, EVP_PKEY* issuer_key, std::string_view role,
                       std::string_view issuer_role);

// notBefore <= at <= notAfter.
Status check_valid_at(X509* cert, std::chrono::sys_seconds at, std::string_view role);

// SHA-256 of the DER SubjectPublicKeyInfo.
Result<std::array<std::byte, 32>> spki_sha256(X509* cert);

// The DER content of the extension with dotted OID `oid`, or not_found.
Result<std::vector<std::byte>> extension_value(X509* cert, const char* oid, std::string_view role);

// The DER content of an extension that holds one INTEGER, as an unsigned
// value below 2^32.
Result<std::uint32_t> extension_uint(X509* cert, const char* oid, std::string_view role);

// ECDSA verification of `message` hashed with `md`, the signature given as
// big-endian r and s (as TEE reports store them, not DER). False on any
// failure, a malformed signature included.
bool verify_ecdsa_rs(EVP_PKEY* key, const EVP_MD* md, std::span<const std::byte> message,
                     std::span<const std::byte> r, std::span<const std::byte> s);

// A P-256 public key from its big-endian coordinates x || y.
Result<PkeyPtr> p256_public_key(std::span<const std::byte, 64> xy);

// The subject's common name, or "" if it has none.
std::string common_name(X509* cert);

// Reads a whole file.
Result<std::vector<std::byte>> read_file_bytes(const std::string& path);

std::string hex(std::span<const std::byte> bytes);

}  // namespace myelin::secure::detail
