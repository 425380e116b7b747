// The eventloop bench's allocation target end to end: the probe runs beside
// this test (bin/), counts, and the verdict is judged from its count. Under
// the sanitizers the probe cannot count, and the check must say so rather
// than pass.
#include "bench/eventloop/alloc_check.h"

#include <gtest/gtest.h>

#include "src/base/testing/counting_new.h"

namespace myelin::bench {
namespace {

TEST(EventLoopAllocCheck, TheProbeCountsAndTheVerdictIsJudged) {
  const harness::Check c = measure_task_allocations(/*quick=*/true);
  EXPECT_EQ(c.target.goal, 0);
  EXPECT_EQ(c.target.better, harness::Better::kLower);
  if (myelin::testing::kCountingNew) {
    ASSERT_TRUE(c.measured.has_value()) << c.note;
    EXPECT_EQ(*c.measured, 0) << c.note;
    EXPECT_TRUE(harness::judge(c.target, *c.measured).met);
    EXPECT_NE(c.note.find("0 allocations over 200,000 tasks"), std::string::npos) << c.note;
  } else {
    EXPECT_FALSE(c.measured.has_value()) << c.note;
    EXPECT_NE(c.note.find("not compiled in under sanitizers"), std::string::npos) << c.note;
  }
}

}  // namespace
}  // namespace myelin::bench
