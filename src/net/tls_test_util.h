// Test helper: a throwaway self-signed certificate (EC P-256, valid for a
// day, subjectAltName DNS:localhost and IP:127.0.0.1) and its key, made with
// OpenSSL at test time and written as PEM files into a fresh directory.
// Header-only; tests only.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

namespace myelin::net::testing {

struct TestCert {
  std::string dir;
  std::string cert_file;  // also the CA file a client trusts: it is self-signed
  std::string key_file;
  TestCert() = default;
  TestCert(const TestCert&) = delete;
  TestCert& operator=(const TestCert&) = delete;
  TestCert(TestCert&& o) noexcept
      : dir(std::move(o.dir)), cert_file(std::move(o.cert_file)), key_file(std::move(o.key_file)) {
    o.dir.clear();
  }
  TestCert& operator=(TestCert&& o) noexcept {
    if (this != &o) {
      remove();
      dir = std::move(o.dir);
      cert_file = std::move(o.cert_file);
      key_file = std::move(o.key_file);
      o.dir.clear();
    }
    return *this;
  }
  ~TestCert() { remove(); }

 private:
  void remove() {
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
};

// Empty cert_file on failure (the test then fails on it).
inline TestCert make_test_cert(const std::string& common_name = "localhost") {
  TestCert out;
  char tmpl[] = "/tmp/myelin_tls_XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return out;
  out.dir = tmpl;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), X509_free);
  if (!key || !x) return out;
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 24 * 3600);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(x.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                                   std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (ext == nullptr) return out;
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) return out;
  const std::string cert_path = out.dir + "/cert.pem";
  const std::string key_path = out.dir + "/key.pem";
  std::FILE* f = std::fopen(cert_path.c_str(), "wb");
  if (f == nullptr) return out;
  const bool cert_ok = PEM_write_X509(f, x.get()) == 1;
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "wb");
  if (f == nullptr) return out;
  const bool key_ok =
      PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  if (cert_ok && key_ok) {
    out.cert_file = cert_path;
    out.key_file = key_path;
  }
  return out;
}

}  // namespace myelin::net::testing
