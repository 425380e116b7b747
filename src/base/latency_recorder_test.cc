#include "myelin/base/latency_recorder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace myelin {
namespace {

TEST(Percentile, NearestRankOnKnownSamples) {
  // 1..100: pXX is exactly XX under nearest rank.
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(percentile_sorted(v, 50), 50);
  EXPECT_EQ(percentile_sorted(v, 95), 95);
  EXPECT_EQ(percentile_sorted(v, 99), 99);
  EXPECT_EQ(percentile_sorted(v, 99.9), 100);
  EXPECT_EQ(percentile_sorted(v, 100), 100);
  EXPECT_EQ(percentile_sorted(v, 0), 1);
  EXPECT_EQ(percentile_sorted(v, 0.5), 1);
  EXPECT_EQ(percentile_sorted(v, 1.5), 2);
}

TEST(Percentile, EmptyAndSingle) {
  EXPECT_EQ(percentile_sorted({}, 50), 0);
  std::vector<double> one{42};
  EXPECT_EQ(percentile_sorted(one, 1), 42);
  EXPECT_EQ(percentile_sorted(one, 99.9), 42);
}

TEST(LatencyRecorder, UnsortedInputGivesOrderedPercentiles) {
  // The seed 001 bug: percentiles taken from unsorted samples (p99 < p50).
  LatencyRecorder r(1000);
  std::mt19937 rng(7);
  std::vector<int> values(1000);
  for (int i = 0; i < 1000; ++i) values[i] = i + 1;
  std::shuffle(values.begin(), values.end(), rng);
  for (int v : values) r.record(Nanos(v));
  const LatencySummary s = r.summarize();
  EXPECT_EQ(s.count, 1000u);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.p50, 500);
  EXPECT_EQ(s.p95, 950);
  EXPECT_EQ(s.p99, 990);
  EXPECT_EQ(s.p999, 999);
  EXPECT_EQ(s.max, 1000);
  EXPECT_DOUBLE_EQ(s.mean, 500.5);
  EXPECT_LE(s.median_ci_low, s.p50);
  EXPECT_GE(s.median_ci_high, s.p50);
  // 1.96 * sqrt(1000) / 2 = 31 ranks either side.
  EXPECT_NEAR(s.median_ci_low, 469, 2);
  EXPECT_NEAR(s.median_ci_high, 532, 2);
}

TEST(LatencyRecorder, SummarizeLeavesSamplesInRecordedOrder) {
  LatencyRecorder r;
  r.record(Nanos(3));
  r.record(Nanos(1));
  (void)r.summarize();
  ASSERT_EQ(r.count(), 2u);
  EXPECT_EQ(r.samples()[0], 3);
  EXPECT_EQ(r.samples()[1], 1);
}

TEST(LatencyRecorder, MergeAndClear) {
  LatencyRecorder a, b;
  a.record_value(1.5);
  b.record_value(2.5);
  b.record_value(3.5);
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_DOUBLE_EQ(a.summarize().max, 3.5);
  EXPECT_NEAR(a.summarize().stddev, 1.0, 1e-12);
  a.clear();
  EXPECT_EQ(a.summarize().count, 0u);
}

TEST(LatencyRecorder, RecordDoesNotReallocateWithinReservation) {
  LatencyRecorder r(100);
  r.record(Nanos(1));
  const double* first = r.samples().data();
  for (int i = 0; i < 99; ++i) r.record(Nanos(i));
  EXPECT_EQ(r.samples().data(), first);
}

}  // namespace
}  // namespace myelin
