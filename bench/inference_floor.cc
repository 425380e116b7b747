// The dot-product floor of `myelin bench inference`: the same arithmetic as
// a linear model (dot + bias) as a bare loop, compiled by itself with
// -O3 -mavx2 -mfma -ffast-math so the compiler vectorises the reduction.
// Called only after cpu_features() confirms AVX2 and FMA.
#include <cstddef>

namespace myelin::bench {

float dot_floor(const float* x, const float* w, std::size_t n, float bias) {
  float acc = 0;
  for (std::size_t i = 0; i < n; ++i) acc += x[i] * w[i];
  return acc + bias;
}

}  // namespace myelin::bench
