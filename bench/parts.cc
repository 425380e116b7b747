#include "bench/bench_part.h"

namespace myelin::bench {

std::vector<BenchPart> all_parts() {
  return {
      {"clock", "clock",
       "Cost and resolution of the timers every other benchmark uses (the measurement floor)",
       run_clock_bench},
      {"eventloop", "eventloop",
       "Event-loop tournament (seed 001): myelin vs mutex designs, libuv and asio, same run",
       run_eventloop_bench},
      {"secure", "secure-channel",
       "Secure channel (seed 003): MSC1 handshake, round trip, throughput vs plaintext, AEAD, TLS "
       "1.3",
       run_secure_bench},
      {"inference", "inference",
       "Model inference (seed 004): linear, trees, MLP vs XGBoost, ONNX Runtime, scikit-learn",
       run_inference_bench},
      {"amqp", "amqp",
       "AMQP client (seed 002): publish, channel pool and 900 consumers on a private RabbitMQ, "
       "vs pika and kombu",
       run_amqp_bench},
      {"serve", "serve",
       "myelin serve (seed 004's server): OIP over HTTP vs FastAPI, Node + ONNX Runtime, nginx",
       run_serve_bench},
  };
}

}  // namespace myelin::bench
