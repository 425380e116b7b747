// The measurements behind `myelin bench secure`: each returns samples in a
// LatencyRecorder (ns for latencies, MB/s for throughput).
#pragma once

#include <cstddef>
#include <functional>

#include "bench/secure_peers.h"
#include "myelin/base/latency_recorder.h"
#include "myelin/base/result.h"
#include "myelin/secure/key_pool.h"
#include "myelin/secure/session.h"

namespace myelin::bench::secure_scenarios {

using secure_peers::PairFactory;
using secure_peers::TlsPeer;
using secure_peers::Worker;

// The attestation setup of every myelin measurement: mutual mode, the mock
// provider and verifier (as the seed), one measured value checked by policy.
secure::SessionConfig bench_config(secure::Role role);

// Handshake latency, one sample per full handshake (mutual mock attestation).
// With `pool`, both sides take their ephemeral keys from it, and it is
// refilled before each sample, outside the timed region.
Result<LatencyRecorder> myelin_handshake_one_thread(std::size_t n, secure::KeyPool* pool = nullptr);
// Where a two-thread handshake's responder is when the client starts:
// already running and waiting for message 1 (a busy server), or parked until
// the bench hands it the job (an idle server's thread, woken first).
enum class ServerStart { kWaiting, kWoken };
// `agreed_early`, if given, counts the timed samples whose initiator agreed
// on message 2's clear part before the rest arrived (the overlap worked).
Result<LatencyRecorder> myelin_handshake_two_threads(PairFactory& f, Worker& w, std::size_t n,
                                                     secure::KeyPool* pool = nullptr,
                                                     std::size_t* agreed_early = nullptr,
                                                     ServerStart start = ServerStart::kWaiting);
Result<LatencyRecorder> tls_handshake_one_thread(const TlsPeer& tls, std::size_t n);
Result<LatencyRecorder> tls_handshake_two_threads(const TlsPeer& tls, PairFactory& f, Worker& w,
                                                  std::size_t n);

// The floor under any X25519 handshake on this CPU, one thread, OpenSSL EVP:
// two key generations and two agreements, or (`with_keygen` false, keys made
// beforehand) the two agreements alone.
Result<LatencyRecorder> x25519_floor(std::size_t n, bool with_keygen);

// Round trip of one `size`-byte message echoed back, per sample.
Result<LatencyRecorder> plain_rtt(PairFactory& f, Worker& w, std::size_t size, std::size_t n);
Result<LatencyRecorder> secure_rtt(PairFactory& f, Worker& w, std::size_t size, std::size_t n);

}  // namespace myelin::bench::secure_scenarios
