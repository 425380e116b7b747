// The measurements behind `myelin bench secure`: each returns samples in a
// LatencyRecorder (ns for latencies, MB/s for throughput).
#pragma once

#include <cstddef>
#include <functional>

#include "bench/secure_peers.h"
#include "myelin/base/latency_recorder.h"
#include "myelin/base/result.h"

namespace myelin::bench::secure_scenarios {

using secure_peers::PairFactory;
using secure_peers::TlsPeer;
using secure_peers::Worker;

// Handshake latency, one sample per full handshake (mutual mock attestation).
Result<LatencyRecorder> myelin_handshake_one_thread(std::size_t n);
Result<LatencyRecorder> myelin_handshake_two_threads(PairFactory& f, Worker& w, std::size_t n);
Result<LatencyRecorder> tls_handshake_one_thread(const TlsPeer& tls, std::size_t n);
Result<LatencyRecorder> tls_handshake_two_threads(const TlsPeer& tls, PairFactory& f, Worker& w,
                                                  std::size_t n);

// The floor under any X25519 handshake on this CPU: two key generations and
// two agreements (OpenSSL EVP), one thread.
Result<LatencyRecorder> x25519_floor(std::size_t n);

// Round trip of one `size`-byte message echoed back, per sample.
Result<LatencyRecorder> plain_rtt(PairFactory& f, Worker& w, std::size_t size, std::size_t n);
Result<LatencyRecorder> secure_rtt(PairFactory& f, Worker& w, std::size_t size, std::size_t n);

// One-way throughput: each sample sends `burst` messages and waits for a
// 1-byte acknowledgement; MB/s (10^6 bytes) of payload.
Result<LatencyRecorder> plain_throughput(PairFactory& f, Worker& w, std::size_t size,
                                         std::size_t burst, std::size_t samples);
Result<LatencyRecorder> secure_throughput(PairFactory& f, Worker& w, std::size_t size,
                                          std::size_t burst, std::size_t samples,
                                          const std::function<Status()>& between = {});
Result<LatencyRecorder> tls_throughput(const TlsPeer& tls, PairFactory& f, Worker& w,
                                       std::size_t size, std::size_t burst, std::size_t samples);
// OpenSSL EVP ChaCha20-Poly1305 sealing `size` bytes in place in a loop, one
// thread: the ceiling for any ChaCha20-Poly1305 channel on this CPU.
Result<LatencyRecorder> raw_aead_throughput(std::size_t size, std::size_t burst,
                                            std::size_t samples);

}  // namespace myelin::bench::secure_scenarios
