// `myelin bench secure`: seed report 003's tables (handshake latency,
// steady-state round trip, sustained one-way throughput), redone on this
// machine with myelin's MSC1 channel and its peers measured in the same run:
// plaintext over the same transport, the raw AEAD limit (OpenSSL EVP
// ChaCha20-Poly1305 in a loop) and OpenSSL TLS 1.3 with the same cipher over
// the same transport. Scenarios live in secure_scenarios.cc.
#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bench_part.h"
#include "bench/secure_scenarios.h"
#include "myelin/perf/format.h"

namespace myelin::bench {
namespace {

using perf::Cell;
using secure_peers::PairFactory;
using secure_peers::TlsPeer;
using secure_peers::Transport;
using secure_peers::Worker;
namespace sc = secure_scenarios;

struct Payload {
  const char* name;
  std::size_t size;
  double seed_mb_s;  // seed 003's SecureChannel throughput (0: no target)
};
const Payload kPayloads[] = {{"1536b_embedding", 1536, 411.2},
                             {"4k_activation", 4096, 618.1},
                             {"384k_hidden", 393216, 725.1},
                             {"1m_large", 1048576, 519.3}};

Cell us(double ns) { return Cell::num(ns / 1000.0, perf::fixed(ns / 1000.0, 1) + " µs"); }
Cell ci_us(const LatencySummary& s) {
  return Cell::str("[" + perf::fixed(s.median_ci_low / 1000.0, 1) + " .. " +
                   perf::fixed(s.median_ci_high / 1000.0, 1) + "] µs");
}
Cell mbs(double v) { return Cell::num(v, perf::group_int(v) + " MB/s"); }
Cell ci_mbs(const LatencySummary& s) {
  return Cell::str("[" + perf::group_int(s.median_ci_low) + " .. " +
                   perf::group_int(s.median_ci_high) + "]");
}
Cell pct(double v) { return Cell::num(v, perf::fixed(v, 1) + "%"); }
Cell count(std::size_t n) {
  return Cell::num(static_cast<double>(n), perf::group_int(static_cast<double>(n)));
}

struct TputRow {
  Transport t;
  std::size_t size;
  double seed_mb_s, plain, secure, aead, tls;  // MB/s, p50
};

// Why the targets this run missed were missed, from this run's figures.
std::string explain_misses(double handshake_1t, double handshake_2t, double floor,
                           const std::vector<TputRow>& rows) {
  using perf::fixed;
  std::string out;
  if (handshake_1t > 130'000 || handshake_2t > 80'000) {
    out +=
        "Handshake: its floor, 2 X25519 key generations + 2 agreements through OpenSSL EVP "
        "with no protocol around them, measured p50 " +
        fixed(floor / 1000, 1) +
        " µs in this run, and all four lie on the handshake's critical path in sequence (the "
        "initiator's key goes out in Hello; the responder generates its key and agrees; the "
        "initiator agrees on the Response), in one thread and in two. The one-thread "
        "handshake took " +
        fixed(handshake_1t / 1000, 1) + " µs, " + fixed(handshake_1t / floor, 2) +
        "x that floor; a target below the floor needs a faster X25519 than this OpenSSL "
        "build's on this CPU. ";
  }
  auto row = [&](Transport t, std::size_t size) -> const TputRow* {
    for (const TputRow& r : rows)
      if (r.t == t && r.size == size) return &r;
    return nullptr;
  };
  bool passes_said = false;
  for (Transport t : {Transport::kDuplex, Transport::kTcp}) {
    const char* tn = t == Transport::kDuplex ? "duplex pair" : "loopback TCP";
    for (std::size_t size : {std::size_t{1536}, std::size_t{4096}}) {
      const TputRow* r = row(t, size);
      const double need = size < 4096 ? 0.60 : 0.75;
      if (r == nullptr || r->secure >= need * r->aead) continue;
      out += std::string("Small messages, ") + std::to_string(size) + " B, " + tn +
             ": plaintext framing, one write per message as MSC1 does, reached " +
             fixed(r->plain / r->aead * 100, 0) + "% of the raw AEAD figure" +
             (r->plain < need * r->aead
                  ? " (itself below the target: a system call and a wake-up per message bound "
                    "every contender here)"
                  : "") +
             "; MSC1 carried " + fixed(r->secure / r->plain * 100, 0) + "% of plaintext's rate. ";
    }
    const TputRow* l3 = row(t, 393216);
    const TputRow* l1 = row(t, 1048576);
    if (l3 != nullptr && l1 != nullptr &&
        (l3->secure < 0.75 * l3->aead || l1->secure < 0.75 * l1->aead)) {
      out += std::string("Large messages, ") + tn + ": MSC1 reached " +
             fixed(l3->secure / l3->aead * 100, 0) + "% (384 KiB) and " +
             fixed(l1->secure / l1->aead * 100, 0) + "% (1 MiB) of raw AEAD. ";
      if (!passes_said) {
        out +=
            "Raw AEAD is one pass over the bytes on one core; the channel makes two on each "
            "side (the sender seals, then the kernel copies into the socket; the kernel "
            "copies out, then the receiver opens into the message buffer), with sender and "
            "receiver on the two cores in parallel and records written as they are sealed. ";
        passes_said = true;
      }
    }
  }
  if (const TputRow* l3 = row(Transport::kDuplex, 393216);
      l3 != nullptr && l3->secure < 2.5 * l3->seed_mb_s) {
    out +=
        "2.5x the seed: those figures are absolute, from a 4-vCPU EPYC 7763; for 384 KiB the "
        "target (" +
        perf::group_int(2.5 * l3->seed_mb_s) + " MB/s) is " +
        fixed(2.5 * l3->seed_mb_s / l3->aead * 100, 0) +
        "% of this run's single-core raw AEAD figure for that size. ";
  }
  std::string below_tls;
  for (const TputRow& r : rows) {
    if (r.secure >= r.tls) continue;
    below_tls += std::string(below_tls.empty() ? "" : ", ") + std::to_string(r.size) + " B " +
                 (r.t == Transport::kDuplex ? "duplex" : "TCP") + " (" +
                 fixed(r.secure / r.tls, 2) + "x)";
  }
  if (!below_tls.empty()) {
    out += "Below TLS 1.3 in this run: " + below_tls +
           "; both write one record per message there, and the cause of the gap was not "
           "investigated in this run. ";
  }
  return out;
}

struct Target {
  std::string what;
  std::string goal;
  double measured;
  std::string measured_text;
  bool met;
};

}  // namespace

Result<perf::Report> run_secure_bench(const BenchOptions& options) {
  const bool quick = options.quick;
  const std::size_t hs_n = quick ? 200 : 2000;
  const std::size_t hs2_n = quick ? 150 : 1000;
  const std::size_t samples = quick ? 7 : 25;
  const std::size_t bytes_per_sample = quick ? (4u << 20) : (32u << 20);
  auto rtt_n = [&](std::size_t size) -> std::size_t {
    if (size <= 4096) return quick ? 300 : 3000;
    return quick ? 40 : 300;
  };

  // OpenSSL's socket BIO writes with write(2): a peer that has already
  // closed must show up as an error, not kill the process with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  MYELIN_ASSIGN_OR_RETURN(TlsPeer tls, TlsPeer::create());
  Worker worker;
  std::vector<Target> targets;
  nlohmann::json data;

  perf::Report report;
  report.title = "myelin Benchmark: secure channel (seed 003, redone)";
  report.generated = perf::utc_timestamp_now();
  report.machine = perf::MachineInfo::detect();
  report.method =
      "MSC1 (X25519 + HKDF-SHA256 + ChaCha20-Poly1305, 3-message handshake, mutual mock "
      "attestation with a measurement policy) vs plaintext framing and OpenSSL TLS 1.3 "
      "(TLS_CHACHA20_POLY1305_SHA256, X25519, Ed25519 self-signed cert, no tickets) over the same "
      "transports, client and server on two threads with blocking I/O; raw AEAD = OpenSSL EVP "
      "sealing in a loop on one thread; percentiles and the median's 95% CI from "
      "myelin::LatencyRecorder; first 10% of latency samples and the first throughput sample "
      "discarded as warm-up" +
      std::string(quick ? "; --quick (reduced sample counts)" : "");

  // --- 1. handshake --------------------------------------------------------------
  MYELIN_ASSIGN_OR_RETURN(PairFactory duplex, PairFactory::create(Transport::kDuplex));
  MYELIN_ASSIGN_OR_RETURN(PairFactory tcp, PairFactory::create(Transport::kTcp));
  struct HsRow {
    std::string name;
    LatencySummary s;
  };
  std::vector<HsRow> hs;
  LatencySummary x25519;
  {
    MYELIN_ASSIGN_OR_RETURN(auto a, sc::myelin_handshake_one_thread(hs_n));
    MYELIN_ASSIGN_OR_RETURN(auto b, sc::tls_handshake_one_thread(tls, hs_n));
    MYELIN_ASSIGN_OR_RETURN(auto c, sc::myelin_handshake_two_threads(duplex, worker, hs2_n));
    MYELIN_ASSIGN_OR_RETURN(auto d, sc::tls_handshake_two_threads(tls, duplex, worker, hs2_n));
    MYELIN_ASSIGN_OR_RETURN(auto e, sc::myelin_handshake_two_threads(tcp, worker, hs2_n));
    MYELIN_ASSIGN_OR_RETURN(auto f, sc::tls_handshake_two_threads(tls, tcp, worker, hs2_n));
    MYELIN_ASSIGN_OR_RETURN(auto g, sc::x25519_floor(hs_n));
    x25519 = g.summarize();
    hs = {{"myelin MSC1, one thread (in memory)", a.summarize()},
          {"TLS 1.3, one thread (BIO pair)", b.summarize()},
          {"myelin MSC1, two threads, duplex pair", c.summarize()},
          {"TLS 1.3, two threads, duplex pair", d.summarize()},
          {"myelin MSC1, two threads, loopback TCP", e.summarize()},
          {"TLS 1.3, two threads, loopback TCP", f.summarize()}};
  }
  perf::Table hs_table{{{"Handshake", perf::Align::kLeft},
                        {"p50"},
                        {"p95"},
                        {"p99"},
                        {"95% CI (median)"},
                        {"Samples"},
                        {"vs TLS 1.3 p50"}},
                       {}};
  for (std::size_t i = 0; i < hs.size(); ++i) {
    const auto& s = hs[i].s;
    const double tls_p50 = hs[i - i % 2 + 1].s.p50;
    hs_table.add_row({Cell::str(hs[i].name), us(s.p50), us(s.p95), us(s.p99), ci_us(s),
                      count(s.count),
                      Cell::num(s.p50 / tls_p50, perf::fixed(s.p50 / tls_p50, 2) + "x")});
    data["handshake"].push_back({{"name", hs[i].name},
                                 {"p50_ns", s.p50},
                                 {"p95_ns", s.p95},
                                 {"p99_ns", s.p99},
                                 {"ci_low_ns", s.median_ci_low},
                                 {"ci_high_ns", s.median_ci_high},
                                 {"samples", s.count}});
  }
  hs_table.add_row({Cell::str("floor: 2 X25519 keygens + 2 agreements (EVP), one thread"),
                    us(x25519.p50), us(x25519.p95), us(x25519.p99), ci_us(x25519),
                    count(x25519.count), Cell::str("")});
  data["x25519_floor"] = {{"p50_ns", x25519.p50}, {"p95_ns", x25519.p95}};
  targets.push_back({"Handshake p50, two threads (duplex pair)", "<= 80 µs", hs[2].s.p50 / 1000,
                     perf::fixed(hs[2].s.p50 / 1000, 1) + " µs", hs[2].s.p50 <= 80'000});
  targets.push_back({"Handshake p50, one thread", "<= 130 µs (seed: 168.2 µs)", hs[0].s.p50 / 1000,
                     perf::fixed(hs[0].s.p50 / 1000, 1) + " µs", hs[0].s.p50 <= 130'000});
  for (std::size_t i = 0; i < hs.size(); i += 2) {
    targets.push_back({"Handshake faster than TLS 1.3: " + hs[i].name.substr(12), "< TLS p50",
                       hs[i].s.p50 / hs[i + 1].s.p50,
                       perf::fixed(hs[i].s.p50 / 1000, 1) + " vs " +
                           perf::fixed(hs[i + 1].s.p50 / 1000, 1) + " µs",
                       hs[i].s.p50 < hs[i + 1].s.p50});
  }

  // --- 2 and 3: per transport -----------------------------------------------------
  std::vector<perf::Table> rtt_tables, tput_tables;
  std::vector<TputRow> rows;
  for (PairFactory* f : {&duplex, &tcp}) {
    const Transport t = f == &duplex ? Transport::kDuplex : Transport::kTcp;
    const std::string tname = secure_peers::to_string(t);
    perf::Table rtt{{{"Payload", perf::Align::kLeft},
                     {"Plaintext p50"},
                     {"Secure p50"},
                     {"Secure p95"},
                     {"Secure p99"},
                     {"95% CI (median)"},
                     {"Samples"},
                     {"Overhead (p50)"}},
                    {}};
    perf::Table tput{{{"Payload", perf::Align::kLeft},
                      {"Burst"},
                      {"Plaintext"},
                      {"Secure (MSC1)"},
                      {"95% CI"},
                      {"Raw AEAD limit"},
                      {"TLS 1.3"},
                      {"Secure / AEAD"},
                      {"Secure / TLS"},
                      {"Overhead vs plaintext"}},
                     {}};
    for (const Payload& p : kPayloads) {
      MYELIN_ASSIGN_OR_RETURN(auto pr, sc::plain_rtt(*f, worker, p.size, rtt_n(p.size)));
      MYELIN_ASSIGN_OR_RETURN(auto sr, sc::secure_rtt(*f, worker, p.size, rtt_n(p.size)));
      const LatencySummary ps = pr.summarize(), ss = sr.summarize();
      const std::string label = std::string(p.name) + " (" + std::to_string(p.size) + " B)";
      rtt.add_row({Cell::str(label), us(ps.p50), us(ss.p50), us(ss.p95), us(ss.p99), ci_us(ss),
                   count(ss.count), pct((ss.p50 / ps.p50 - 1) * 100)});

      const std::size_t burst = std::max<std::size_t>(2, bytes_per_sample / p.size);
      MYELIN_ASSIGN_OR_RETURN(auto pt, sc::plain_throughput(*f, worker, p.size, burst, samples));
      // The raw AEAD limit is sampled between the secure samples (one burst
      // each, untimed for the channel), so a change in the machine's speed
      // during the run moves both alike.
      LatencyRecorder at(samples);
      const auto raw_sample = [&]() -> Status {
        MYELIN_ASSIGN_OR_RETURN(LatencyRecorder one, sc::raw_aead_throughput(p.size, burst, 1));
        at.merge(one);
        return ok_status();
      };
      MYELIN_ASSIGN_OR_RETURN(
          auto st, sc::secure_throughput(*f, worker, p.size, burst, samples, raw_sample));
      MYELIN_ASSIGN_OR_RETURN(auto tt, sc::tls_throughput(tls, *f, worker, p.size, burst, samples));
      const LatencySummary a = pt.summarize(), b = st.summarize(), c = at.summarize(),
                           d = tt.summarize();
      tput.add_row({Cell::str(label), count(burst), mbs(a.p50), mbs(b.p50), ci_mbs(b), mbs(c.p50),
                    mbs(d.p50), pct(b.p50 / c.p50 * 100),
                    Cell::num(b.p50 / d.p50, perf::fixed(b.p50 / d.p50, 2) + "x"),
                    pct((1 - b.p50 / a.p50) * 100)});
      data["round_trip"].push_back({{"transport", tname},
                                    {"payload", p.size},
                                    {"plaintext_p50_ns", ps.p50},
                                    {"secure_p50_ns", ss.p50},
                                    {"secure_p95_ns", ss.p95},
                                    {"secure_p99_ns", ss.p99},
                                    {"ci_low_ns", ss.median_ci_low},
                                    {"ci_high_ns", ss.median_ci_high}});
      data["throughput"].push_back({{"transport", tname},
                                    {"payload", p.size},
                                    {"burst", burst},
                                    {"plaintext_mb_s", a.p50},
                                    {"secure_mb_s", b.p50},
                                    {"secure_ci_low", b.median_ci_low},
                                    {"secure_ci_high", b.median_ci_high},
                                    {"raw_aead_mb_s", c.p50},
                                    {"tls13_mb_s", d.p50}});

      rows.push_back({t, p.size, p.seed_mb_s, a.p50, b.p50, c.p50, d.p50});
      const double share = b.p50 / c.p50 * 100;
      const double need = p.size < 4096 ? 60 : 75;
      targets.push_back({"Throughput vs raw AEAD, " + label + ", " + tname,
                         ">= " + perf::fixed(need, 0) + "%", share, perf::fixed(share, 1) + "%",
                         share >= need});
      targets.push_back({"Throughput >= TLS 1.3, " + label + ", " + tname, ">= 1.00x",
                         b.p50 / d.p50, perf::fixed(b.p50 / d.p50, 2) + "x", b.p50 >= d.p50});
      if (t == Transport::kDuplex && p.size <= 393216) {
        targets.push_back({"Throughput >= 2.5x seed, " + label,
                           ">= " + perf::group_int(2.5 * p.seed_mb_s) + " MB/s", b.p50,
                           perf::group_int(b.p50) + " MB/s", b.p50 >= 2.5 * p.seed_mb_s});
      }
    }
    rtt_tables.push_back(std::move(rtt));
    tput_tables.push_back(std::move(tput));
  }

  // --- the report ---------------------------------------------------------------------
  perf::Table tt{{{"Target", perf::Align::kLeft},
                  {"Goal", perf::Align::kLeft},
                  {"Measured"},
                  {"Result", perf::Align::kLeft}},
                 {}};
  std::size_t met = 0;
  for (const Target& t : targets) {
    met += t.met ? 1 : 0;
    tt.add_row({Cell::str(t.what), Cell::str(t.goal), Cell::num(t.measured, t.measured_text),
                Cell::str(t.met ? "pass" : "FAIL")});
    data["targets"].push_back(
        {{"target", t.what}, {"goal", t.goal}, {"measured", t.measured}, {"met", t.met}});
  }
  const std::string misses = explain_misses(hs[0].s.p50, hs[2].s.p50, x25519.p50, rows);
  report.add_section("Targets")
      .paragraph(std::to_string(met) + " of " + std::to_string(targets.size()) +
                 " targets met in this run. Ratios are what carry across machines; the seed ran on "
                 "a 4-vCPU EPYC 7763 confidential VM, this run on the machine below.")
      .table(std::move(tt))
      .paragraph(misses.empty() ? std::string("Every target was met in this run.") : misses);
  report.add_section("Handshake latency")
      .paragraph(
          "Full 3-message handshake including session creation, both ephemeral X25519 key "
          "pairs, HKDF, mock attestation evidence produced and verified both ways (mutual mode) "
          "and the policy check. One thread: both sides step alternately in one thread, bytes "
          "moved in memory (the seed's method). Two threads: a fresh connected pair per sample, "
          "the responder on a worker thread; the client's time from start to established. TLS "
          "1.3 is a full handshake (no resumption) with the same key exchange and cipher.")
      .table(std::move(hs_table));
  const char* names[] = {"duplex pair (AF_UNIX socketpair)", "loopback TCP (TCP_NODELAY)"};
  for (int i = 0; i < 2; ++i) {
    report.add_section(std::string("Steady-state round trip, ") + names[i])
        .paragraph(
            "One message sent and echoed back in full, on an established channel (handshake "
            "excluded). Plaintext: u32 length + payload in one writev over the same transport.")
        .table(std::move(rtt_tables[i]));
  }
  for (int i = 0; i < 2; ++i) {
    report.add_section(std::string("Sustained one-way throughput, ") + names[i])
        .paragraph(
            "The client sends a burst of messages, the server drains them and answers one byte; "
            "MB/s = payload bytes / time (10^6 bytes). Raw AEAD limit: one thread sealing the "
            "same sizes with OpenSSL EVP ChaCha20-Poly1305, no I/O, the ceiling for any channel "
            "using this cipher on one core; one burst of it is timed after each secure sample "
            "(while the channel is idle), so both columns see the machine in the same state. "
            "MSC1 writes a long message record by record while it seals the rest.")
        .table(std::move(tput_tables[i]));
  }
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) load[0] = load[1] = load[2] = -1;
  data["load_average"] = {load[0], load[1], load[2]};
  report.add_section("Notes")
      .paragraph("Load average when the run ended: " + perf::fixed(load[0], 2) + " / " +
                 perf::fixed(load[1], 2) + " / " + perf::fixed(load[2], 2) + " (1/5/15 min) on " +
                 std::to_string(report.machine->logical_cpus) +
                 " logical CPUs. Above 2, the client and server threads share their cores with "
                 "other work, which depresses every two-thread figure (plaintext, TLS and MSC1 "
                 "alike) and the single-thread ones less.")
      .paragraph(
          "The seed's tables came from a Rust implementation over tokio::io::duplex on another "
          "machine; its numbers are quoted only as the targets' reference. Every other figure in "
          "this report was measured in this run. The machine has 2 vCPUs shared with other work: "
          "client and server threads compete with each other and with anything else running, "
          "which bounds both the secure and the plaintext figures.");
  report.data = std::move(data);
  return report;
}

}  // namespace myelin::bench
