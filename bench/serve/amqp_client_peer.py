#!/usr/bin/python3
"""aio-pika client peer for the RabbitMQ rows of `myelin bench serve` (issue 23).

The same closed loop as `myelin infer --amqp URI --concurrency N --requests M`,
written with aio-pika (Debian's python3-aio-pika) instead of myelin's client:
N tasks share one connection and one channel; each publishes a request
envelope (clients/python/myelin_client/envelope.py, the bytes of
docs/serving.md) to the model's queue with RabbitMQ's direct reply-to
(amq.rabbitmq.reply-to) and waits for its reply before sending the next, M
requests in all. Publisher confirms are on, as in myelin's client.

Prints one JSON object: requests, ok, failed, seconds, throughput and the
latency percentiles (µs) of the sorted per-request samples (nearest rank),
plus the aio-pika version. Only loopback brokers are accepted.

Usage: bench/serve/amqp_client_peer.py --uri amqp://guest:guest@127.0.0.1:PORT/
         --model NAME --input FILE.json [--concurrency N] [--requests M]
         [--queue-prefix P] [--timeout S]
"""

import argparse
import asyncio
import json
import math
import os
import struct
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "clients", "python"))
from myelin_client import envelope  # noqa: E402

import aio_pika  # noqa: E402

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


def percentile(sorted_samples, q):
    """Nearest rank, as myelin's LatencyRecorder."""
    if not sorted_samples:
        return float("nan")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_samples)))
    return sorted_samples[rank - 1]


def request_inputs(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    inputs = []
    for name, rows in doc.items():
        flat = [float(v) for row in rows for v in row]
        shape = [len(rows), len(rows[0])]
        inputs.append((name, "FP32", shape, struct.pack("<%df" % len(flat), *flat)))
    return inputs


async def run(args):
    host = urllib.parse.urlparse(args.uri).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("amqp_client_peer: only loopback brokers, got %r" % host)
    inputs = request_inputs(args.input)
    connection = await aio_pika.connect(args.uri, timeout=args.timeout)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        pending = {}
        loop = asyncio.get_running_loop()

        async def on_reply(message):
            cid = message.correlation_id
            fut = pending.pop(cid, None)
            if fut is not None and not fut.done():
                fut.set_result(message.body)

        # Direct reply-to: consume the pseudo-queue (no ack) on the
        # publishing channel before the first request.
        reply_queue = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await reply_queue.consume(on_reply, no_ack=True)

        latencies = []
        failed = 0
        next_id = 0
        remaining = args.requests

        async def worker():
            nonlocal next_id, remaining, failed
            while remaining > 0:
                remaining -= 1
                next_id += 1
                rid = next_id
                body = envelope.encode_request(rid, args.model, inputs)
                fut = loop.create_future()
                pending[str(rid)] = fut
                t0 = time.perf_counter_ns()
                try:
                    await channel.default_exchange.publish(
                        aio_pika.Message(body, correlation_id=str(rid), reply_to=DIRECT_REPLY_TO,
                                         content_type="application/x-myelin-envelope"),
                        routing_key=args.queue_prefix + args.model)
                    reply = envelope.decode_reply(await asyncio.wait_for(fut, args.timeout))
                except (asyncio.TimeoutError, envelope.EnvelopeError, aio_pika.exceptions.AMQPError):
                    pending.pop(str(rid), None)
                    failed += 1
                    continue
                if reply.code != 0 or reply.id != rid:
                    failed += 1
                    continue
                latencies.append((time.perf_counter_ns() - t0) / 1000.0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        seconds = time.perf_counter() - start
    latencies.sort()
    print(json.dumps({
        "peer": "aio-pika %s" % aio_pika.__version__,
        "requests": args.requests, "concurrency": args.concurrency,
        "ok": len(latencies), "failed": failed, "seconds": seconds,
        "throughput": len(latencies) / seconds if seconds > 0 else 0.0,
        "p50_us": percentile(latencies, 50), "p90_us": percentile(latencies, 90),
        "p99_us": percentile(latencies, 99), "p999_us": percentile(latencies, 99.9),
        "max_us": latencies[-1] if latencies else float("nan"),
    }))
    return 0 if failed == 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--uri", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help="JSON: {input name: [[row], ...]}")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--queue-prefix", default="myelin.infer.")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    if args.concurrency < 1 or args.requests < 1:
        p.error("--concurrency and --requests must be at least 1")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
