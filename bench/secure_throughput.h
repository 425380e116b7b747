// Sustained one-way throughput for `myelin bench secure`: plaintext framing,
// MSC1 and TLS 1.3 over the same transport, and the raw AEAD limit, measured
// in interleaved samples.
//
// This VM changes speed within seconds (its cross-core latency and its
// per-core speed both move), so peers measured one after the other can see
// different machines. Here each sample round sends one burst over each of
// the three connections in turn (the order rotating from round to round) and
// then times one burst of raw AEAD, so every column of a row sees the machine
// in the same states.
//
// A connection can also settle into a speed of its own for its whole life
// (loopback TCP under bbr paces each connection by its own estimate), so a
// row's rounds are spread over kConnectionSets sets of fresh connections,
// each warmed up by one unrecorded round: one slow connection then moves a
// row's minimum, not its median.
#pragma once

#include <cstddef>

#include "bench/secure_peers.h"
#include "myelin/base/latency_recorder.h"
#include "myelin/base/result.h"

namespace myelin::bench::secure_scenarios {

// How a sender writes: one write per message, or messages coalesced and
// written 64 KiB at a time (MSC1: BlockingChannel::queue; plaintext: a
// user-space buffer; TLS: a 64 KiB BIO_f_buffer under SSL_write), each
// flushed at the end of the burst.
enum class Writes { kPerMessage, kCoalesced };

// How many sets of connections a row's rounds are spread over.
inline constexpr std::size_t kConnectionSets = 5;

// CPU time one side spent per payload byte over the timed bursts, split as
// the kernel accounts it (getrusage(RUSAGE_THREAD)): user space (framing,
// sealing or opening) and the kernel (system calls: the socket copies, page
// allocation, wake-ups). The kernel splits a thread's run time between the
// two by tick sampling, so the split is statistical.
struct SideCpu {
  double user_ns_per_byte = 0;
  double sys_ns_per_byte = 0;
};
struct ThroughputCpu {
  SideCpu sender;
  SideCpu receiver;
};

// One row. A burst is `burst` messages of `size` bytes followed by a 1-byte
// acknowledgement from the receiver, which reads in large gulps (MSC1 256 KiB
// reads, plaintext PlainReader, TLS read-ahead). Each column keeps MB/s
// (10^6 bytes of payload) per timed burst, and its time per byte over all
// timed bursts together (the mean, comparable with the CPU figures, which
// are totals too). Plaintext and MSC1 also keep both sides' CPU. Each
// connection set's first round warms it up and is not recorded.
struct ThroughputRow {
  struct Column {
    explicit Column(std::size_t samples) : mb_s(samples) {}
    LatencyRecorder mb_s;
    double total_ns = 0;
    double ns_per_byte = 0;
  };
  explicit ThroughputRow(std::size_t samples)
      : plain(samples), secure(samples), tls(samples), aead(samples) {}
  Column plain, secure, tls, aead;
  ThroughputCpu plain_cpu, secure_cpu;
};
Result<ThroughputRow> interleaved_throughput(const secure_peers::TlsPeer& tls,
                                             secure_peers::PairFactory& f, std::size_t size,
                                             std::size_t burst, std::size_t samples, Writes writes);

}  // namespace myelin::bench::secure_scenarios
