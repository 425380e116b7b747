#include "myelin/base/clock.h"

#include <gtest/gtest.h>

#include <chrono>

#include "myelin/base/cpu_features.h"

namespace myelin {
namespace {

using namespace std::chrono_literals;

TEST(MonotonicClock, NeverGoesBack) {
  MonotonicClock clock;
  MonoTime prev = clock.now();
  for (int i = 0; i < 10000; ++i) {
    const MonoTime now = clock.now();
    ASSERT_GE(now, prev);
    prev = now;
  }
}

TEST(FakeClock, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  const MonoTime t0 = clock.now();
  EXPECT_NE(t0.time_since_epoch().count(), 0);
  EXPECT_EQ(clock.now(), t0);
  clock.advance(5ms);
  EXPECT_EQ(clock.now() - t0, 5ms);
  clock.advance(-1s);  // ignored: monotonic
  EXPECT_EQ(clock.now() - t0, 5ms);
}

TEST(FakeClock, UsableThroughTheInterface) {
  FakeClock fake(MonoTime(10s));
  const Clock& clock = fake;
  EXPECT_EQ(clock.now(), MonoTime(10s));
}

TEST(CpuFeatures, ImpliedFeaturesAreConsistent) {
  const CpuFeatures& f = cpu_features();
  if (f.avx2) {
    EXPECT_TRUE(f.avx);
  }
  if (f.avx512bw || f.avx512vl) {
    EXPECT_TRUE(f.avx512f);
  }
  EXPECT_FALSE(f.to_string().empty());
  EXPECT_EQ(&f, &cpu_features());  // detected once
}

}  // namespace
}  // namespace myelin
