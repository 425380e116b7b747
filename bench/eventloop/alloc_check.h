// The "zero allocations per task" target of `myelin bench eventloop`,
// measured by running myelin-bench-alloc-probe (built beside myelin-bench)
// and judged from its count.
#pragma once

#include "bench/harness/results.h"

namespace myelin::bench {

// The target and what the probe measured (allocations per task, summed over
// a parking and a spinning loop), or why it could not be measured.
harness::Check measure_task_allocations(bool quick);

}  // namespace myelin::bench
