#include "myelin/net/fault_command.h"

#include <gtest/gtest.h>

#include <string>

namespace myelin::net {
namespace {

using Kind = FaultCommand::Kind;

FaultCommand parsed(std::string_view line) {
  auto c = parse_fault_command(line);
  EXPECT_TRUE(c.has_value()) << line << ": " << c.error().message();
  return c.has_value() ? c.value() : FaultCommand{};
}

std::string error_of(std::string_view line) {
  auto c = parse_fault_command(line);
  EXPECT_FALSE(c.has_value()) << line;
  return c.has_value() ? std::string() : std::string(c.error().message());
}

TEST(FaultCommand, ParsesEveryCommand) {
  EXPECT_EQ(parsed("reset").kind, Kind::kReset);
  EXPECT_EQ(parsed("heal").kind, Kind::kHeal);
  EXPECT_EQ(parsed("stats").kind, Kind::kStats);
  EXPECT_EQ(parsed("quit\r").kind, Kind::kQuit);
  const auto r = parsed("refuse on");
  EXPECT_EQ(r.kind, Kind::kRefuse);
  EXPECT_TRUE(r.on);
  const auto b = parsed("  blackhole\toff ");
  EXPECT_EQ(b.kind, Kind::kBlackhole);
  EXPECT_FALSE(b.on);
  const auto l = parsed("latency 2.5 10");
  EXPECT_EQ(l.kind, Kind::kLatency);
  EXPECT_EQ(l.latency, std::chrono::microseconds(2500));
  EXPECT_EQ(l.jitter, std::chrono::milliseconds(10));
  EXPECT_EQ(parsed("latency 7").jitter, Nanos(0));
  const auto bw = parsed("bandwidth 1048576");
  EXPECT_EQ(bw.kind, Kind::kBandwidth);
  EXPECT_EQ(bw.amount, 1048576u);
  const auto cut = parsed("cut down 18446744073709551615");
  EXPECT_EQ(cut.kind, Kind::kCut);
  EXPECT_EQ(cut.direction, FlowDirection::kDownstream);
  EXPECT_EQ(cut.amount, UINT64_MAX);
  const auto h = parsed("halfopen up closed");
  EXPECT_EQ(h.kind, Kind::kHalfOpen);
  EXPECT_EQ(h.direction, FlowDirection::kUpstream);
  EXPECT_EQ(h.mode, HalfOpenMode::kClosed);
  EXPECT_EQ(parsed("").kind, Kind::kNone);
  EXPECT_EQ(parsed("   # a comment").kind, Kind::kNone);
}

TEST(FaultCommand, ErrorsNameTheBadWord) {
  EXPECT_NE(error_of("explode").find("unknown command 'explode'"), std::string::npos);
  EXPECT_NE(error_of("blackhole maybe").find("'maybe'"), std::string::npos);
  EXPECT_NE(error_of("latency abc").find("'abc' is not a number of milliseconds"),
            std::string::npos);
  EXPECT_NE(error_of("latency -1").find("'-1'"), std::string::npos);
  EXPECT_NE(error_of("latency nan").find("'nan'"), std::string::npos);
  EXPECT_NE(error_of("latency 1e12").find("'1e12'"), std::string::npos);
  EXPECT_NE(error_of("bandwidth -5").find("'-5' is not a non-negative whole number"),
            std::string::npos);
  EXPECT_NE(error_of("cut both 18446744073709551616").find("'18446744073709551616'"),
            std::string::npos);
  EXPECT_NE(error_of("cut sideways 5").find("expected up, down or both"), std::string::npos);
  EXPECT_NE(error_of("halfopen up ajar").find("'ajar'"), std::string::npos);
  EXPECT_NE(error_of("reset now").find("usage: reset"), std::string::npos);
  EXPECT_NE(error_of("cut up").find("usage: cut up|down|both BYTES"), std::string::npos);
  EXPECT_NE(error_of("a b c d e").find("too many words"), std::string::npos);
  // Control bytes are not echoed raw into the error.
  EXPECT_EQ(error_of(std::string_view("\x01\x02", 2)).find('\x01'), std::string::npos);
}

TEST(FaultCommand, ApplyRefusesNonFaults) {
  FaultProxyOptions o;
  o.upstream_port = 9;  // never connected: no client comes
  auto proxy = FaultProxy::start(o);
  ASSERT_TRUE(proxy.has_value()) << proxy.error().message();
  EXPECT_FALSE(apply_fault_command(*proxy.value(), parsed("stats")).has_value());
  auto at = apply_fault_command(*proxy.value(), parsed("blackhole on"));
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(proxy.value()->last_fault_at(), at.value());
}

}  // namespace
}  // namespace myelin::net
