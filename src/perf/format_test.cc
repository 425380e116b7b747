#include "myelin/perf/format.h"

#include <gtest/gtest.h>

#include <limits>

namespace myelin::perf {
namespace {

TEST(GroupInt, GroupsEveryThreeDigits) {
  EXPECT_EQ(group_int(0), "0");
  EXPECT_EQ(group_int(7), "7");
  EXPECT_EQ(group_int(999), "999");
  EXPECT_EQ(group_int(1000), "1,000");
  EXPECT_EQ(group_int(85406.4), "85,406");
  EXPECT_EQ(group_int(46667177.4), "46,667,177");
  EXPECT_EQ(group_int(10000000), "10,000,000");
  EXPECT_EQ(group_int(123456789012.0), "123,456,789,012");
  EXPECT_EQ(group_int(-1234567), "-1,234,567");
  EXPECT_EQ(group_int(-0.4), "0");
}

TEST(GroupInt, RoundsHalfToEvenLikeTheSeed) {
  EXPECT_EQ(group_int(2.5), "2");
  EXPECT_EQ(group_int(3.5), "4");
  EXPECT_EQ(group_int(18148.82), "18,149");
}

TEST(GroupInt, NonFinite) {
  EXPECT_EQ(group_int(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(group_int(std::numeric_limits<double>::quiet_NaN()), "nan");
}

TEST(Fixed, Decimals) {
  EXPECT_EQ(fixed(0.100839, 4), "0.1008");
  EXPECT_EQ(fixed(55.1, 4), "55.1000");
  EXPECT_EQ(fixed(4.7058823, 2), "4.71");
}

TEST(Param, AsGivenWithAMinimumOfDecimals) {
  EXPECT_EQ(param(0.9, 2), "0.90");
  EXPECT_EQ(param(5.0, 1), "5.0");
  EXPECT_EQ(param(0.1, 1), "0.1");
  EXPECT_EQ(param(0.125, 1), "0.125");
  EXPECT_EQ(param(0.5, 1), "0.5");
  EXPECT_EQ(param(1e-7, 1), "0.0000001");
}

TEST(DurationNs, PicksAUnit) {
  EXPECT_EQ(duration_ns(35.8), "35.8 ns");
  EXPECT_EQ(duration_ns(375), "375 ns");
  EXPECT_EQ(duration_ns(123800), "123.8 us");
  EXPECT_EQ(duration_ns(1620000), "1.620 ms");
  EXPECT_EQ(duration_ns(2.5e9), "2.500 s");
}

TEST(ByteRate, DecimalUnits) {
  EXPECT_EQ(byte_rate(411.2e6), "411.2 MB/s");
  EXPECT_EQ(byte_rate(3.04e9), "3.04 GB/s");
  EXPECT_EQ(byte_rate(512), "512 B/s");
}

}  // namespace
}  // namespace myelin::perf
