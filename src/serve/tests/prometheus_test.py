#!/usr/bin/python3
"""End-to-end test of `myelin serve`'s /metrics with a real Prometheus: a
private Prometheus (Debian's /usr/bin/prometheus, its own config, storage
and 127.0.0.1 port) scrapes a private server every second; after 37
successful and 3 failing requests to logistic_regression, PromQL over its
HTTP API must see exactly those counts, executions, a latency quantile and
the open-connections gauge.

Run:  /usr/bin/python3 prometheus_test.py --myelin BUILD/bin/myelin \
          --source-dir /work/main [-v]
  (or MYELIN_BIN / MYELIN_SOURCE_DIR in the environment; see e2e.py).
  PROMETHEUS=/path/to/prometheus overrides the Prometheus binary.
"""

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import requests

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import ServerTestCase, infer_json  # noqa: E402

PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
SUCCESSES = 37
FAILURES = 3
LR = "/v2/models/logistic_regression/infer"
SCRAPE_WAIT = 20  # seconds for Prometheus to have scraped what we sent


class Prometheus:
    """A private Prometheus scraping one target."""

    def __init__(self, target_port):
        self.tmp = tempfile.mkdtemp(prefix="myelin_prom_")
        self.port = e2e.free_port()
        self.config = os.path.join(self.tmp, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: myelin
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % target_port)
        self.log_path = os.path.join(self.tmp, "prometheus.log")
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + self.config,
             "--storage.tsdb.path=" + os.path.join(self.tmp, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited (%s):\n%s" % (self.proc.returncode,
                                                                      self.log()))
            try:
                return requests.get(self.url + "/-/ready", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        e2e.wait_until(ready, timeout=30, interval=0.1, what="prometheus to be ready")
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def query(self, promql):
        """An instant query -> [(labels, float value)]."""
        r = requests.get(self.url + "/api/v1/query", params={"query": promql}, timeout=10)
        r.raise_for_status()
        doc = r.json()
        if doc.get("status") != "success":
            raise AssertionError("query %r: %s" % (promql, doc))
        data = doc["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def value(self, promql):
        """The single value of a query, or None while it has no result."""
        res = self.query(promql)
        if not res:
            return None
        if len(res) != 1:
            raise AssertionError("query %r: %d series: %s" % (promql, len(res), res))
        return res[0][1]

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None
        finally:
            self._log.close()

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)


class PrometheusScrape(ServerTestCase):

    def test_prometheus_sees_the_requests(self):
        self.assertTrue(os.access(PROMETHEUS, os.X_OK),
                        "%s not found: install Debian's prometheus (scripts/setup)" % PROMETHEUS)
        prom = Prometheus(self.server.port)
        self.addCleanup(prom.cleanup)
        prom.start()
        lr = '{job="myelin",model="logistic_regression"}'
        # The target is up and scraped before any request, so rate() sees
        # the increase.
        e2e.wait_until(lambda: prom.value('up{job="myelin"}') == 1, timeout=SCRAPE_WAIT,
                       interval=0.25, what="prometheus to scrape myelin")
        e2e.wait_until(lambda: prom.value("myelin_inference_request_success_total" + lr) == 0,
                       timeout=SCRAPE_WAIT, interval=0.25, what="a scrape of the zero counters")

        rows = e2e.sample_rows("logistic_regression", n_random=2)
        with requests.Session() as s:
            for i in range(SUCCESSES):
                r = s.post(self.url + LR, json=infer_json(rows[i % len(rows):][:1]),
                           timeout=e2e.REQUEST_TIMEOUT)
                self.assertEqual(r.status_code, 200, r.text)
            bad = infer_json([[1.0, 2.0, 3.0]])  # 3 columns, the model takes 4
            for _ in range(FAILURES):
                r = s.post(self.url + LR, json=bad, timeout=e2e.REQUEST_TIMEOUT)
                self.assertEqual(r.status_code, 400, r.text)

        def scraped():
            return (prom.value("myelin_inference_request_success_total" + lr) == SUCCESSES and
                    prom.value("myelin_inference_request_failure_total" + lr) == FAILURES)

        e2e.wait_until(scraped, timeout=SCRAPE_WAIT, interval=0.25,
                       what="prometheus to scrape %d successes and %d failures"
                       % (SUCCESSES, FAILURES))
        self.assertEqual(prom.value("myelin_inference_request_success_total" + lr), SUCCESSES)
        self.assertEqual(prom.value("myelin_inference_request_failure_total" + lr), FAILURES)
        self.assertEqual(prom.value("myelin_inference_count_total" + lr), SUCCESSES)
        execs = prom.value("myelin_inference_exec_count_total" + lr)
        self.assertIsNotNone(execs)
        self.assertGreater(execs, 0)
        self.assertLessEqual(execs, SUCCESSES)
        self.assertEqual(prom.value("myelin_inference_request_duration_seconds_count" + lr),
                         SUCCESSES)
        # Quantiles, from the cumulative buckets and from their rate.
        for q in (
                "histogram_quantile(0.9, myelin_inference_request_duration_seconds_bucket%s)" % lr,
                "histogram_quantile(0.5, sum by (le) (rate("
                "myelin_inference_request_duration_seconds_bucket%s[1m])))" % lr):
            v = prom.value(q)
            self.assertIsNotNone(v, q)
            self.assertTrue(math.isfinite(v) and 0 < v <= 1.0, "%s = %s" % (q, v))
        # The server-wide gauge exists (Prometheus' own scrapes hold one open).
        conns = prom.query('myelin_http_open_connections{job="myelin"}')
        self.assertEqual(len(conns), 1, conns)
        self.assertGreaterEqual(conns[0][1], 0)
        # Other models' series are there too, at zero.
        self.assertEqual(prom.value('myelin_inference_request_success_total'
                                    '{job="myelin",model="mlp"}'), 0)
        self.assertEqual(prom.stop(), 0, prom.log())


if __name__ == "__main__":
    e2e.main()
