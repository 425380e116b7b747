#!/usr/bin/python3
"""aio-pika recovery peer of `myelin bench amqp` (issue 22, seed report 002).

Runs aio-pika's connect_robust under one fault and prints what it saw as JSON
lines, so that a C++ bench can set myelin's recovery beside it under the same
fault from the same proxy:

  P publisher tasks, each on its own robust channel with publisher confirms,
  publish persistent messages (message_id "P-SEQ") to one durable queue in a
  loop; a consumer on another robust channel (prefetch 100, manual ack)
  counts what it receives. Everything goes through `myelin faultproxy`, which
  this script starts in front of the broker; at --fault-at seconds it injects
  --fault, and --heal-after seconds later heals it:

    reset      RST every proxied connection (the proxy keeps accepting)
    blackhole  forward nothing either way, sockets open (a partition)
    refuse     RST every connection and refuse new ones until heal
    restart    not a proxy fault: the broker's app is stopped, and started
               again at heal (scripts/rabbitmq ctl stop_app / start_app;
               only for the private node)

Every event carries t_ns, time.monotonic_ns(): the same CLOCK_MONOTONIC the
proxy reports the injection instant in, so detection and recovery are
measured from the injection, not from a sleep:

  {"event": "fault", "t_ns": ..., "fault": "reset"}      proxy's own instant
  {"event": "connection_lost", "t_ns": ..., "reason": "..."}  close callback
  {"event": "reconnected", "t_ns": ...}                  reconnect callback
  {"event": "first_confirm_after_reconnect", "t_ns": ...}
  {"event": "heal", "t_ns": ...}
  {"event": "summary", ...}   counts, and detect_ms / reconnect_ms /
                              first_confirm_ms from the fault instant

Counts in the summary: published (attempts), confirmed, failed (raised or
timed out: may or may not have reached the queue), received (unique),
duplicates (deliveries of an id already received), lost (confirmed, never
received once the consumer drained), unconfirmed_received.

The queue is deleted at the end. Only loopback hosts are accepted.

Usage: bench/amqp_recovery_peer.py --broker HOST:PORT --proxy-bin PATH
         [--fault reset|blackhole|refuse|restart] [--fault-at S] [--heal-after S]
         [--duration S] [--publishers N] [--heartbeat S] [--reconnect-interval S]
         [--timeout S]

Found while writing it: aiormq 6.4.2 (Debian's, under aio-pika 8.2.5) sends
heartbeats but never checks the broker's; a black hole is noticed only when
a read has waited (timeout + 1) * 3 seconds, 183 s with the default timeout
of 60. --timeout sets it (it is also the connect timeout).
"""

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import time
import uuid

try:
    import aio_pika
except ImportError:  # pragma: no cover
    sys.exit("amqp_recovery_peer: python3-aio-pika is not installed (scripts/setup)")

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def emit(event, **fields):
    fields = {"event": event, "t_ns": fields.pop("t_ns", time.monotonic_ns()), **fields}
    print(json.dumps(fields), flush=True)


class Proxy:
    """`myelin faultproxy` as a child process, driven through its stdin."""

    def __init__(self, binary, upstream):
        self.proc = subprocess.Popen(
            [binary, "faultproxy", "--upstream", upstream],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            self.close()
            raise SystemExit(f"amqp_recovery_peer: proxy did not start: {line!r}")
        self.address = line[1]

    def command(self, text):
        """Returns the instant (monotonic ns) the fault took effect."""
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        if len(reply) != 3 or reply[0] != "ok":
            raise RuntimeError(f"proxy: {text!r} -> {' '.join(reply)!r}")
        return int(reply[2])

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def broker_ctl(*args):
    subprocess.run([os.path.join(ROOT, "scripts", "rabbitmq"), "ctl", *args], check=True,
                   stdout=subprocess.DEVNULL, timeout=120)


class Run:
    def __init__(self, args):
        self.args = args
        self.queue = f"myelin-recovery-peer-{uuid.uuid4().hex[:8]}"
        self.confirmed = set()
        self.failed = 0
        self.published = 0
        self.received = collections.Counter()
        self.fault_ns = None
        self.lost_ns = None
        self.reconnected_ns = None
        self.first_confirm_ns = None
        self.stop = asyncio.Event()

    def on_close(self, _conn, exc=None):
        if self.lost_ns is None and self.fault_ns is not None and not self.stop.is_set():
            self.lost_ns = time.monotonic_ns()
        # by_us: the close at the end of the run, not a fault.
        emit("connection_lost", reason=repr(exc), by_us=self.stop.is_set())

    def on_reconnect(self, _conn):
        if self.reconnected_ns is None and self.fault_ns is not None:
            self.reconnected_ns = time.monotonic_ns()
        emit("reconnected")

    async def publisher(self, conn, index):
        channel = await conn.channel(publisher_confirms=True)
        seq = 0
        while not self.stop.is_set():
            mid = f"{index}-{seq}"
            seq += 1
            self.published += 1
            try:
                await channel.default_exchange.publish(
                    aio_pika.Message(mid.encode(), message_id=mid,
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=self.queue, timeout=self.args.publish_timeout)
            except Exception:  # noqa: BLE001 - every failure counts the same
                self.failed += 1
                await asyncio.sleep(0.01)  # the robust connection is reconnecting
                continue
            self.confirmed.add(mid)
            if (self.first_confirm_ns is None and self.reconnected_ns is not None):
                self.first_confirm_ns = time.monotonic_ns()
                emit("first_confirm_after_reconnect", t_ns=self.first_confirm_ns)

    async def consume(self, message):
        self.received[message.message_id] += 1
        try:
            await message.ack()
        except Exception:  # noqa: BLE001 - the broker requeues it: a duplicate later
            pass

    async def main(self):
        a = self.args
        proxy = None
        if a.fault != "restart" or a.through_proxy:
            proxy = Proxy(a.proxy_bin, a.broker)
        address = proxy.address if proxy else a.broker
        url = (f"amqp://guest:guest@{address}/?heartbeat={a.heartbeat}"
               f"&reconnect_interval={a.reconnect_interval}&timeout={a.timeout}")
        emit("start", fault=a.fault, publishers=a.publishers, heartbeat_s=a.heartbeat,
             reconnect_interval_s=a.reconnect_interval, url=url,
             aio_pika=aio_pika.__version__)
        conn = await aio_pika.connect_robust(url)
        conn.close_callbacks.add(self.on_close)
        conn.reconnect_callbacks.add(self.on_reconnect)
        try:
            setup = await conn.channel()
            queue = await setup.declare_queue(self.queue, durable=True)
            consumer_channel = await conn.channel()
            await consumer_channel.set_qos(prefetch_count=100)
            cqueue = await consumer_channel.declare_queue(self.queue, durable=True)
            await cqueue.consume(self.consume)
            tasks = [asyncio.create_task(self.publisher(conn, i)) for i in range(a.publishers)]
            await asyncio.sleep(a.fault_at)
            if a.fault == "restart":
                self.fault_ns = time.monotonic_ns()
                await asyncio.to_thread(broker_ctl, "stop_app")
            elif a.fault == "refuse":
                self.fault_ns = proxy.command("refuse on")
                proxy.command("reset")
            else:
                self.fault_ns = proxy.command(a.fault if a.fault != "blackhole" else "blackhole on")
            emit("fault", t_ns=self.fault_ns, fault=a.fault)
            await asyncio.sleep(a.heal_after)
            if a.fault == "restart":
                await asyncio.to_thread(broker_ctl, "start_app")
                heal_ns = time.monotonic_ns()
            else:
                heal_ns = proxy.command("heal")
            emit("heal", t_ns=heal_ns)
            await asyncio.sleep(max(0.0, a.duration - a.fault_at - a.heal_after))
            self.stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                   timeout=a.publish_timeout + 5)
            # Drain: wait (bounded) until every confirmed id arrived.
            deadline = time.monotonic() + a.drain_timeout
            while time.monotonic() < deadline and not self.confirmed <= self.received.keys():
                await asyncio.sleep(0.05)
            await queue.delete(if_unused=False, if_empty=False)
        finally:
            await conn.close()
            if proxy:
                proxy.close()

        def since_fault(t):
            return None if t is None or self.fault_ns is None else (t - self.fault_ns) / 1e6

        received = set(self.received)
        emit("summary", fault=a.fault, published=self.published,
             confirmed=len(self.confirmed), failed=self.failed,
             received=len(received),
             duplicates=sum(n - 1 for n in self.received.values()),
             lost=len(self.confirmed - received),
             unconfirmed_received=len(received - self.confirmed),
             detect_ms=since_fault(self.lost_ns),
             reconnect_ms=since_fault(self.reconnected_ns),
             first_confirm_ms=since_fault(self.first_confirm_ns),
             heal_after_s=a.heal_after)
        return 0 if not (self.confirmed - received) else 3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", required=True, help="HOST:PORT of the RabbitMQ node (loopback)")
    p.add_argument("--proxy-bin", default=os.path.join(ROOT, "build", "release", "bin", "myelin"))
    p.add_argument("--fault", choices=["reset", "blackhole", "refuse", "restart"],
                   default="reset")
    p.add_argument("--through-proxy", action="store_true",
                   help="with --fault restart: still connect through the proxy")
    p.add_argument("--fault-at", type=float, default=3.0)
    p.add_argument("--heal-after", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=12.0)
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--heartbeat", type=int, default=2)
    p.add_argument("--reconnect-interval", type=float, default=0.5)
    # aiormq 6.4 never checks the broker's heartbeats: a silent peer is seen
    # only when a read waits (timeout + 1) * 3 s, `timeout` being also the
    # connect timeout (URL parameter). Its default, 60, means 183 s.
    p.add_argument("--timeout", type=int, default=60,
                   help="aiormq timeout= (connect; read timeout is (T+1)*3 s)")
    p.add_argument("--publish-timeout", type=float, default=5.0)
    p.add_argument("--drain-timeout", type=float, default=15.0)
    a = p.parse_args()
    host = a.broker.rsplit(":", 1)[0]
    if host not in LOOPBACK:
        p.error(f"--broker {a.broker}: only loopback brokers (a private node) are allowed")
    if a.fault_at < 0 or a.heal_after < 0 or a.duration < a.fault_at + a.heal_after:
        p.error("need 0 <= --fault-at, 0 <= --heal-after, --fault-at + --heal-after <= --duration")
    return asyncio.run(Run(a).main())


if __name__ == "__main__":
    sys.exit(main())
