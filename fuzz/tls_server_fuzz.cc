// Fuzzes the server side of net::TlsStream (the HTTPS layer of `myelin
// serve`): the input is what a client sends, delivered over an in-process
// duplex stream in up to two writes, then end of stream. OpenSSL parses the
// records; this target checks the layer around it.
//
// Input: byte 0 is a split point (n/256 of the rest); the rest is the
// client's bytes.
//
// Invariants (abort on violation):
//  - the server's reads end (error or end of stream) within a bounded
//    number of calls once the client's bytes and end of stream are in: no
//    spin on would_block with nothing left to come;
//  - a connection whose handshake did not complete is counted exactly once
//    as a handshake failure once closed; one that did is counted as a
//    handshake and never as a failure;
//  - after a failure, every call returns an error.
//
// The seed corpus (fuzz/corpus/tls_server_fuzz) holds ClientHellos for TLS
// 1.3 and 1.2 (from Python's ssl module), plain HTTP, and an empty input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "myelin/net/stream.h"
#include "myelin/net/tls.h"
#include "src/net/tls_test_util.h"

namespace {

using myelin::net::TlsContext;
using myelin::net::TlsStream;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "tls_server_fuzz: invariant violated: %s\n", what);
  std::abort();
}

std::shared_ptr<TlsContext>& context() {
  static std::shared_ptr<TlsContext> ctx = [] {
    const auto cert = myelin::net::testing::make_test_cert();
    myelin::net::TlsServerOptions o;
    o.cert_file = cert.cert_file;
    o.key_file = cert.key_file;
    o.plaintext_reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    auto r = TlsContext::server(o);  // files are read here; the directory may go after
    if (!r) violated("cannot make the server context");
    return *r;
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 64 * 1024) return 0;
  auto& ctx = context();
  const std::uint64_t shakes0 = ctx->stats().handshakes.load();
  const std::uint64_t fails0 = ctx->stats().handshake_failures.load();
  auto pair = myelin::net::duplex_pair(256 * 1024, std::chrono::microseconds(0));
  if (!pair) violated("duplex_pair");
  auto& client = pair->first;  // (not a structured binding: clang 14 cannot capture one)
  auto server = TlsStream::server(ctx, std::move(pair->second));
  if (!server) violated("TlsStream::server");

  const std::size_t n = size - 1;
  const std::size_t split = n * data[0] / 256;
  const auto* bytes = reinterpret_cast<const std::byte*>(data + 1);
  std::byte buf[16384];
  auto drain_client = [&] {  // what the server sent; the pipe must not fill
    for (int i = 0; i < 64; ++i) {
      auto r = client->read(buf);
      if (!r || r->would_block || r->eof) return;
    }
  };
  bool ended = false;
  bool failed = false;
  auto pump = [&](int max_calls) {
    for (int i = 0; i < max_calls && !ended; ++i) {
      auto r = (*server)->read(buf);
      drain_client();
      if (!r) {
        failed = ended = true;
        return;
      }
      if (r->eof) {
        ended = true;
        return;
      }
      if (r->would_block) return;
    }
  };
  if (split > 0 && !client->write({bytes, split})) violated("client write");
  pump(8);
  if (n > split && !ended && !client->write({bytes + split, n - split})) violated("client write");
  (void)client->shutdown_write();
  // Everything is in: the server must come to an end, not would_block forever.
  for (int round = 0; round < 1000 && !ended; ++round) pump(8);
  if (!ended) violated("the server neither failed nor saw end of stream");
  if (failed) {
    std::byte one[1];
    if ((*server)->read(one)) violated("a read after a failure succeeded");
  }
  const bool done = (*server)->handshake_done();
  (*server)->close();
  const std::uint64_t shakes = ctx->stats().handshakes.load() - shakes0;
  const std::uint64_t fails = ctx->stats().handshake_failures.load() - fails0;
  if (done && (shakes != 1 || fails != 0)) violated("a completed handshake miscounted");
  if (!done && (shakes != 0 || fails != 1)) violated("a failed handshake not counted once");
  return 0;
}
