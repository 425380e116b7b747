#!/usr/bin/python3
"""pika and kombu peers of `myelin bench amqp`.

Runs, for each Python client, the two scenarios of the AMQP client benchmark
(seed report 002) against a RabbitMQ node on loopback, normally the private
one from `scripts/rabbitmq start`:

  publish    T threads x M messages of 100 bytes, each thread to its own fresh
             queue through the default exchange, once without and once with
             publisher confirms. The clock starts when every thread is
             connected, has declared its queue and is released from a
             threading.Barrier; it stops when the last publish (with confirms:
             the last confirm) has returned. Per-publish latency is the time
             one basic_publish call takes.
  consumers  C consumers on ONE queue, a producer publishing N messages that
             carry time.monotonic_ns() and a sequence number; consumers ack
             each message. Start-up is from launching the consumer threads
             until every consumer has its Basic.ConsumeOk; the consume rate is
             received / (last ack - first publish); end-to-end latency is
             receive time - send time (same process, same monotonic clock);
             loss is 1 - unique received / published, duplicates are counted
             apart. Each scenario is capped in time and stops by itself.

Neither BlockingConnection (pika) nor kombu's Connection may be shared between
threads, so publishers use one connection per thread (a kombu ProducerPool
would hand each concurrent thread its own connection too; it adds only an
acquire/release). Consumers are what a user of these libraries writes: a
connection is driven by one thread, and each consumer is a channel with its
own basic.consume (prefetch 10, manual ack); CONSUMERS_PER_CONNECTION of them
share a connection.

Percentiles are nearest-rank over sorted samples. A scenario that fails or
times out records its error in the JSON and the run goes on. All queues the
run creates are deleted at the end. Only loopback URIs are accepted.

Usage: bench/amqp_peers.py [--uri URI] [--client pika|kombu|all] [--quick]
                           [--out FILE.json]
Output: one JSON object per client (a JSON array of them for --client all).
"""

import argparse
import json
import math
import os
import platform
import resource
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

MESSAGE_BYTES = 100
PREFETCH = 10
CONSUMERS_PER_CONNECTION = 50
SETUP_TIMEOUT_S = 90.0      # connecting all publisher / consumer threads
PUBLISH_TIMEOUT_S = 60.0    # the timed publish phase
CONSUME_CAP_S = 60.0        # a whole consumers scenario after start-up
IDLE_STOP_S = 5.0           # stop waiting when nothing arrives for this long

FULL_PUBLISH = [(10, 100), (100, 100), (300, 50), (900, 10)]
QUICK_PUBLISH = [(10, 100), (100, 100)]
FULL_CONSUMERS = [100, 500, 900]
QUICK_CONSUMERS = [100]
FULL_CONSUME_MESSAGES = 10000
QUICK_CONSUME_MESSAGES = 2000
# Body of a consumer-scenario message: send time (monotonic ns), sequence
# number, then padding up to MESSAGE_BYTES.
STAMP = struct.Struct(">QQ")


def percentile(sorted_samples, p):
    """Nearest-rank percentile of an already sorted list (None if empty)."""
    if not sorted_samples:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_samples)))
    return sorted_samples[rank - 1]


def stamped_body(seq):
    head = STAMP.pack(time.monotonic_ns(), seq)
    return head + b"x" * (MESSAGE_BYTES - len(head))


def check_loopback(uri):
    host = urllib.parse.urlsplit(uri).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"amqp_peers.py: refusing non-loopback URI host '{host}' "
                 f"(only a private local node may be used)")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ErrorLog:
    """Thread-safe error counter that keeps a few distinct messages."""

    def __init__(self):
        self._lock = threading.Lock()
        self.count = 0
        self.samples = []

    def add(self, where, exc):
        text = f"{where}: {type(exc).__name__}: {exc}"
        with self._lock:
            self.count += 1
            if len(self.samples) < 5 and text not in self.samples:
                self.samples.append(text)


# --- the clients -------------------------------------------------------------
# Each peer offers the same small surface: a publisher (connect + declare,
# publish, close), a consumer group (one connection, n channel consumers,
# driven by the calling thread until `stop` is set; per message it calls
# handler(body), acks, then calls acked()) and admin operations.


class PikaPeer:
    name = "pika"

    def __init__(self, uri):
        import pika
        self.pika = pika
        self.uri = uri
        self.version = pika.__version__
        self.method = (
            "pika.BlockingConnection (not thread-safe): publish = one "
            "connection + channel per thread, basic_publish on the default "
            "exchange; confirms = channel.confirm_delivery(), each "
            "basic_publish blocks until its ack; consumers = channels with "
            f"basic_consume (prefetch {PREFETCH}, manual ack), "
            f"{CONSUMERS_PER_CONNECTION} per connection, one thread per "
            "connection running process_data_events")

    def connect(self):
        return self.pika.BlockingConnection(self.pika.URLParameters(self.uri))

    def server_version(self):
        conn = self.connect()
        try:
            props = conn._impl.server_properties  # no public accessor in pika
            v = props.get("version", b"?")
            return v.decode() if isinstance(v, bytes) else str(v)
        finally:
            conn.close()

    class Publisher:
        def __init__(self, peer, queue, confirms):
            self.conn = peer.connect()
            self.ch = self.conn.channel()
            self.ch.queue_declare(queue=queue)
            if confirms:
                self.ch.confirm_delivery()
            self.queue = queue
            self.props = peer.pika.BasicProperties()

        def publish(self, body):
            self.ch.basic_publish(exchange="", routing_key=self.queue,
                                  body=body, properties=self.props)

        def close(self):
            self.conn.close()

    def publisher(self, queue, confirms):
        return PikaPeer.Publisher(self, queue, confirms)

    def consume_group(self, queue, n, handler, acked, registered, stop):
        conn = self.connect()
        try:
            for _ in range(n):
                ch = conn.channel()
                ch.basic_qos(prefetch_count=PREFETCH)

                def on_message(ch, method, _props, body):
                    handler(body)
                    ch.basic_ack(delivery_tag=method.delivery_tag)
                    acked()

                ch.basic_consume(queue=queue, on_message_callback=on_message)
                registered()
            while not stop.is_set():
                conn.process_data_events(time_limit=0.05)
        finally:
            try:
                conn.close()
            except Exception:  # already dead: nothing to release
                pass

    def declare(self, queue):
        conn = self.connect()
        try:
            conn.channel().queue_declare(queue=queue)
        finally:
            conn.close()

    def delete(self, queues):
        conn = self.connect()
        try:
            ch = conn.channel()
            for q in queues:
                ch.queue_delete(queue=q)
        finally:
            conn.close()


class KombuPeer:
    name = "kombu"

    def __init__(self, uri):
        import amqp
        import kombu
        self.kombu = kombu
        self.uri = uri
        self.version = f"{kombu.__version__} (py-amqp {amqp.__version__})"
        self.method = (
            "kombu.Connection over py-amqp (not thread-safe): publish = one "
            "Connection + Producer per thread (a ProducerPool would give each "
            "concurrent thread its own connection as well), raw bytes body, "
            "retry off; confirms = transport option confirm_publish=True, "
            "each publish waits for its ack; consumers = kombu.Consumer per "
            f"channel (prefetch {PREFETCH}, manual ack), "
            f"{CONSUMERS_PER_CONNECTION} per connection, one thread per "
            "connection running drain_events")

    def connect(self, confirms=False):
        opts = {"confirm_publish": True} if confirms else {}
        conn = self.kombu.Connection(self.uri, transport_options=opts)
        conn.connect()
        return conn

    def server_version(self):
        conn = self.connect()
        try:
            v = conn.connection.server_properties.get("version", "?")
            return v.decode() if isinstance(v, bytes) else str(v)
        finally:
            conn.release()

    class Publisher:
        def __init__(self, peer, queue, confirms):
            self.conn = peer.connect(confirms)
            self.ch = self.conn.channel()
            self.ch.queue_declare(queue=queue)
            self.producer = peer.kombu.Producer(self.ch)  # default exchange
            self.queue = queue

        def publish(self, body):
            self.producer.publish(body, routing_key=self.queue, retry=False,
                                  content_type="application/octet-stream",
                                  content_encoding="binary")

        def close(self):
            self.conn.release()

    def publisher(self, queue, confirms):
        return KombuPeer.Publisher(self, queue, confirms)

    def consume_group(self, queue, n, handler, acked, registered, stop):
        kombu = self.kombu
        conn = self.connect()
        consumers = []
        try:
            q = kombu.Queue(queue, no_declare=True)
            for _ in range(n):
                def on_message(message):
                    handler(message.body)
                    message.ack()
                    acked()

                c = kombu.Consumer(conn.channel(), queues=[q],
                                   on_message=on_message, no_ack=False,
                                   prefetch_count=PREFETCH,
                                   auto_declare=False)
                c.consume()
                consumers.append(c)
                registered()
            while not stop.is_set():
                try:
                    conn.drain_events(timeout=0.05)
                except socket.timeout:
                    pass
        finally:
            try:
                conn.release()
            except Exception:  # already dead: nothing to release
                pass

    def declare(self, queue):
        conn = self.connect()
        try:
            conn.channel().queue_declare(queue=queue)
        finally:
            conn.release()

    def delete(self, queues):
        conn = self.connect()
        try:
            ch = conn.channel()
            for q in queues:
                ch.queue_delete(queue=q)
        finally:
            conn.release()


# --- scenarios ---------------------------------------------------------------


def run_publish(peer, run_id, threads, per_thread, confirms, created):
    result = {"name": "publish", "threads": threads,
              "messages_per_thread": per_thread, "confirms": confirms}
    errors = ErrorLog()
    barrier = threading.Barrier(threads + 1, timeout=SETUP_TIMEOUT_S)
    release = threading.Event()      # threads close their connections after
    latencies = [None] * threads     # per-thread lists of ns
    ends = [None] * threads          # per-thread time of the last return
    sent = [0] * threads
    queues = [f"myelin-peer-{peer.name}-{run_id}-pub{threads}x{per_thread}"
              f"{'c' if confirms else ''}-{i}" for i in range(threads)]
    created.extend(queues)
    body = b"m" * MESSAGE_BYTES
    done = threading.Semaphore(0)

    def worker(i):
        pub = None
        try:
            try:
                pub = peer.publisher(queues[i], confirms)
            except Exception as e:
                errors.add("connect", e)
            barrier.wait()
            if pub is not None:
                lat = []
                for _ in range(per_thread):
                    t0 = time.perf_counter_ns()
                    try:
                        pub.publish(body)
                    except Exception as e:
                        errors.add("publish", e)
                        break
                    t1 = time.perf_counter_ns()
                    lat.append(t1 - t0)
                    sent[i] += 1
                latencies[i] = lat
                ends[i] = time.perf_counter_ns()
        except threading.BrokenBarrierError as e:
            errors.add("barrier", e)
        finally:
            done.release()
            release.wait(SETUP_TIMEOUT_S)
            if pub is not None:
                try:
                    pub.close()
                except Exception as e:
                    errors.add("close", e)

    old_stack = threading.stack_size(512 * 1024)
    workers = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(threads)]
    threading.stack_size(old_stack)
    setup_t0 = time.perf_counter_ns()
    for w in workers:
        w.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        result["error"] = (f"setup did not finish within {SETUP_TIMEOUT_S:.0f}"
                           " s (threads not all connected)")
        release.set()
        result["errors"] = errors.count
        result["error_samples"] = errors.samples
        return result
    start = time.perf_counter_ns()
    result["setup_ms"] = round((start - setup_t0) / 1e6, 1)
    deadline = time.monotonic() + PUBLISH_TIMEOUT_S
    finished = 0
    while finished < threads:
        if not done.acquire(timeout=max(0.0, deadline - time.monotonic())):
            break
        finished += 1
    timed_out = finished < threads
    release.set()
    for w in workers:
        w.join(timeout=10)

    total = sum(sent)
    samples = sorted(x for lat in latencies if lat for x in lat)
    end_times = [e for e in ends if e is not None]
    if timed_out:
        result["error"] = (f"{threads - finished} threads still publishing "
                           f"after {PUBLISH_TIMEOUT_S:.0f} s")
        end = time.perf_counter_ns()
    else:
        end = max(end_times) if end_times else start
    secs = (end - start) / 1e9
    result.update({
        "published": total,
        "duration_s": round(secs, 4),
        "msgs_per_s": round(total / secs, 1) if secs > 0 else None,
        "p50_us": _us(percentile(samples, 50)),
        "p99_us": _us(percentile(samples, 99)),
        "max_us": _us(samples[-1] if samples else None),
        "errors": errors.count,
    })
    if errors.samples:
        result["error_samples"] = errors.samples
    return result


def _us(ns):
    return None if ns is None else round(ns / 1e3, 1)


def _ms(ns):
    return None if ns is None else round(ns / 1e6, 3)


def run_consumers(peer, run_id, consumers, messages, created):
    result = {"name": "consumers", "consumers": consumers,
              "connections": math.ceil(consumers / CONSUMERS_PER_CONNECTION),
              "prefetch": PREFETCH}
    errors = ErrorLog()
    queue = f"myelin-peer-{peer.name}-{run_id}-cons{consumers}"
    created.append(queue)
    peer.declare(queue)

    lock = threading.Lock()
    seen = set()
    state = {"registered": 0, "dups": 0, "last_ack": None, "last_rx": None}
    e2e = []
    all_registered = threading.Event()
    stop = threading.Event()

    def registered():
        with lock:
            state["registered"] += 1
            if state["registered"] == consumers:
                all_registered.set()

    def handler(body):
        now = time.monotonic_ns()
        sent_ns, seq = STAMP.unpack_from(body)
        with lock:
            if seq in seen:
                state["dups"] += 1
            else:
                seen.add(seq)
                e2e.append(now - sent_ns)
            state["last_rx"] = now

    def acked():
        with lock:
            state["last_ack"] = time.monotonic_ns()

    groups = []
    left = consumers
    while left > 0:
        groups.append(min(CONSUMERS_PER_CONNECTION, left))
        left -= groups[-1]

    def group_main(n):
        try:
            peer.consume_group(queue, n, handler, acked, registered, stop)
        except Exception as e:
            errors.add("consumer", e)

    old_stack = threading.stack_size(512 * 1024)
    threads = [threading.Thread(target=group_main, args=(n,), daemon=True)
               for n in groups]
    threading.stack_size(old_stack)
    t_setup = time.monotonic_ns()
    for t in threads:
        t.start()
    if not all_registered.wait(SETUP_TIMEOUT_S):
        stop.set()
        result.update({"error": f"only {state['registered']} of {consumers} "
                                f"consumers registered within "
                                f"{SETUP_TIMEOUT_S:.0f} s",
                       "errors": errors.count,
                       "error_samples": errors.samples})
        return result
    t_ready = time.monotonic_ns()
    result["startup_ms"] = round((t_ready - t_setup) / 1e6, 1)

    published = 0
    deadline = time.monotonic() + CONSUME_CAP_S
    # The producer's connection is opened before the clock starts and kept
    # until the consumers are done.
    producer = None
    try:
        producer = peer.publisher(queue, confirms=False)
    except Exception as e:
        errors.add("producer connect", e)
    t_first = time.monotonic_ns()
    if producer is not None:
        try:
            for seq in range(messages):
                if time.monotonic() > deadline:
                    errors.add("producer", TimeoutError("publish cap reached"))
                    break
                producer.publish(stamped_body(seq))
                published += 1
        except Exception as e:
            errors.add("producer", e)

    last_progress = time.monotonic()
    last_count = -1
    while True:
        with lock:
            count = len(seen)
        if count >= published:
            break
        now = time.monotonic()
        if count != last_count:
            last_count, last_progress = count, now
        if now > deadline or now - last_progress > IDLE_STOP_S:
            result["error"] = (f"stopped waiting with {published - count} "
                               "messages missing")
            break
        time.sleep(0.01)
    # Let the final acks go out before stopping the consumer loops.
    time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    if producer is not None:
        try:
            producer.close()
        except Exception as e:
            errors.add("producer close", e)

    with lock:
        received = len(seen)
        dups = state["dups"]
        last_ack = state["last_ack"]
        samples = sorted(e2e)
    span = (last_ack - t_first) / 1e9 if last_ack else None
    result.update({
        "published": published,
        "received": received,
        "duplicates": dups,
        "loss_pct": (round(100.0 * (1 - received / published), 3)
                     if published else None),
        "consume_msgs_per_s": round(received / span, 1) if span else None,
        "e2e_p50_ms": _ms(percentile(samples, 50)),
        "e2e_p99_ms": _ms(percentile(samples, 99)),
        "e2e_max_ms": _ms(samples[-1] if samples else None),
        "errors": errors.count,
    })
    if errors.samples:
        result["error_samples"] = errors.samples
    return result


# --- driver ------------------------------------------------------------------


def run_peer(cls, uri, quick):
    t0 = time.monotonic()
    out = {"peer": cls.name}
    try:
        peer = cls(uri)
    except Exception as e:
        out["error"] = f"cannot load {cls.name}: {type(e).__name__}: {e}"
        return out
    out.update({"version": peer.version, "method": peer.method,
                "message_bytes": MESSAGE_BYTES})
    try:
        out["broker"] = "RabbitMQ " + peer.server_version()
    except Exception as e:
        out["error"] = f"cannot connect to {uri}: {e!r}"
        return out
    run_id = uuid.uuid4().hex[:8]
    created = []
    scenarios = []
    out["scenarios"] = scenarios
    pub_sizes = QUICK_PUBLISH if quick else FULL_PUBLISH
    cons_sizes = QUICK_CONSUMERS if quick else FULL_CONSUMERS
    n_msgs = QUICK_CONSUME_MESSAGES if quick else FULL_CONSUME_MESSAGES
    try:
        for confirms in (False, True):
            for threads, per in pub_sizes:
                scenarios.append(_guard(
                    {"name": "publish", "threads": threads,
                     "messages_per_thread": per, "confirms": confirms},
                    run_publish, peer, run_id, threads, per, confirms,
                    created))
                _log(scenarios[-1])
                _cleanup(peer, created)
        for consumers in cons_sizes:
            scenarios.append(_guard(
                {"name": "consumers", "consumers": consumers},
                run_consumers, peer, run_id, consumers, n_msgs, created))
            _log(scenarios[-1])
            _cleanup(peer, created)
    finally:
        _cleanup(peer, created)
    out["duration_s"] = round(time.monotonic() - t0, 1)
    return out


def _guard(header, fn, *args):
    try:
        return fn(*args)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        return dict(header, error=f"{type(e).__name__}: {e}")


def _cleanup(peer, created):
    if not created:
        return
    try:
        peer.delete(list(created))
        created.clear()
    except Exception as e:
        print(f"amqp_peers.py: could not delete queues: {e}", file=sys.stderr)


def _log(s):
    keys = ("threads", "messages_per_thread", "confirms", "msgs_per_s",
            "p50_us", "p99_us", "consumers", "received", "loss_pct",
            "consume_msgs_per_s", "startup_ms", "e2e_p50_ms", "e2e_p99_ms",
            "errors", "error")
    print("  " + s["name"] + " " +
          " ".join(f"{k}={s[k]}" for k in keys if k in s), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uri", default=os.environ.get("MYELIN_AMQP_URI"),
                    help="AMQP URI of a loopback node (default: "
                         "$MYELIN_AMQP_URI, see scripts/rabbitmq env)")
    ap.add_argument("--client", choices=("pika", "kombu", "all"),
                    default="all")
    ap.add_argument("--quick", action="store_true",
                    help="reduced sizes: 10x100 and 100x100 publishers, "
                         f"100 consumers, {QUICK_CONSUME_MESSAGES} messages")
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    args = ap.parse_args()
    if not args.uri:
        sys.exit("amqp_peers.py: no --uri and no MYELIN_AMQP_URI "
                 "(run scripts/rabbitmq start; . build/rabbitmq/env)")
    check_loopback(args.uri)
    nofile = raise_nofile()
    machine = {"platform": platform.platform(), "python": platform.python_version(),
               "cpus": os.cpu_count(), "rlimit_nofile": nofile}
    classes = {"pika": [PikaPeer], "kombu": [KombuPeer],
               "all": [PikaPeer, KombuPeer]}[args.client]
    results = []
    for cls in classes:
        print(f"amqp_peers.py: {cls.name}", file=sys.stderr)
        r = run_peer(cls, args.uri, args.quick)
        r["machine"] = machine
        results.append(r)
    doc = results[0] if len(results) == 1 else results
    text = json.dumps(doc, indent=2) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
