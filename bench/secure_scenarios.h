// The measurements behind `myelin bench secure`: each returns samples in a
// LatencyRecorder (ns for latencies, MB/s for throughput).
#pragma once

#include <cstddef>
#include <functional>

#include "bench/secure_peers.h"
#include "myelin/base/latency_recorder.h"
#include "myelin/base/result.h"
#include "myelin/secure/key_pool.h"

namespace myelin::bench::secure_scenarios {

using secure_peers::PairFactory;
using secure_peers::TlsPeer;
using secure_peers::Worker;

// Handshake latency, one sample per full handshake (mutual mock attestation).
// With `pool`, both sides take their ephemeral keys from it, and it is
// refilled before each sample, outside the timed region.
Result<LatencyRecorder> myelin_handshake_one_thread(std::size_t n, secure::KeyPool* pool = nullptr);
// `agreed_early`, if given, counts the timed samples whose initiator agreed
// on message 2's clear part before the rest arrived (the overlap worked).
Result<LatencyRecorder> myelin_handshake_two_threads(PairFactory& f, Worker& w, std::size_t n,
                                                     secure::KeyPool* pool = nullptr,
                                                     std::size_t* agreed_early = nullptr);
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

// How a throughput sender writes: one write per message, or messages
// coalesced and written 64 KiB at a time (MSC1: BlockingChannel::queue;
// plaintext: a user-space buffer; TLS: a 64 KiB BIO_f_buffer under SSL_write),
// each flushed at the end of the burst.
enum class Writes { kPerMessage, kCoalesced };

// CPU time one side of a throughput run spent per payload byte, split as
// the kernel accounts it (getrusage(RUSAGE_THREAD) over the timed samples):
// user space (framing, sealing or opening) and the kernel (system calls: the
// socket copies, page allocation, wake-ups). The kernel splits a thread's
// run time between the two by tick sampling, so the split is statistical.
struct SideCpu {
  double user_ns_per_byte = 0;
  double sys_ns_per_byte = 0;
};
struct ThroughputCpu {
  SideCpu sender;
  SideCpu receiver;
};

// One-way throughput: each sample sends `burst` messages and waits for a
// 1-byte acknowledgement; MB/s (10^6 bytes) of payload. Every receiver reads
// in large gulps (MSC1 256 KiB reads, plaintext PlainReader, TLS read-ahead).
// `cpu`, if given, receives both sides' CPU time per byte over the timed
// samples (`between` excluded).
Result<LatencyRecorder> plain_throughput(PairFactory& f, Worker& w, std::size_t size,
                                         std::size_t burst, std::size_t samples, Writes writes,
                                         ThroughputCpu* cpu = nullptr);
Result<LatencyRecorder> secure_throughput(PairFactory& f, Worker& w, std::size_t size,
                                          std::size_t burst, std::size_t samples, Writes writes,
                                          const std::function<Status()>& between = {},
                                          ThroughputCpu* cpu = nullptr);
Result<LatencyRecorder> tls_throughput(const TlsPeer& tls, PairFactory& f, Worker& w,
                                       std::size_t size, std::size_t burst, std::size_t samples,
                                       Writes writes);
// OpenSSL EVP ChaCha20-Poly1305 sealing `size` bytes in place in a loop, one
// thread: the ceiling for any ChaCha20-Poly1305 channel on this CPU.
Result<LatencyRecorder> raw_aead_throughput(std::size_t size, std::size_t burst,
                                            std::size_t samples);

}  // namespace myelin::bench::secure_scenarios
