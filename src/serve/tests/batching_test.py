#!/usr/bin/python3
"""End-to-end test of `myelin serve`'s dynamic batching: 64 concurrent
keep-alive clients, each sending its own row of the mlp model over and over
for about 2 s (up to 10 s if no two requests have shared a batch by then).
Every answer must be that row's own `myelin predict` answer (no cross-talk
between requests batched together), and /metrics must show batches of more
than one row (fewer executions than rows computed; each request is one row).

Run:  /usr/bin/python3 batching_test.py --myelin BUILD/bin/myelin \
          --source-dir /work/main [-v]
  (or MYELIN_BIN / MYELIN_SOURCE_DIR in the environment; see e2e.py).
"""

import os
import sys
import threading
import time

import numpy as np
import requests

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import ServerTestCase, decode, infer_binary, infer_json  # noqa: E402

CLIENTS = 64
DURATION = 2.0  # seconds of load
# The batcher is work-conserving (an idle worker, or the submitting thread
# for a cheap model, takes a lone request at once), so batches of several
# requests form only when requests coincide. If none did in DURATION, the
# load goes on, up to this long, before the test calls it a failure.
MAX_DURATION = 10.0
URL = "/v2/models/mlp/infer"


class Batching(ServerTestCase):

    def test_concurrent_clients_get_their_own_answers(self):
        rows = np.concatenate([e2e.shipped_rows("mlp"),
                               e2e.random_rows("mlp", CLIENTS - 1, seed=64)])
        self.assertEqual(len(np.unique(rows, axis=0)), CLIENTS, "rows must be distinct")
        want = e2e.predict_each("mlp", rows)
        # Distinct rows with distinct answers, or cross-talk could go unseen.
        probs = np.stack([w["probabilities"][0] for w in want])
        self.assertEqual(len(np.unique(probs.round(6), axis=0)), CLIENTS)

        before = e2e.scrape(self.url)
        start = threading.Barrier(CLIENTS + 1)
        stop = threading.Event()
        counts = [0] * CLIENTS
        failures = []

        def client(i):
            # Half the clients speak JSON, half binary tensors.
            if i % 2:
                body, headers = infer_binary(rows[i:i + 1])
                kw = {"data": body, "headers": headers}
            else:
                kw = {"json": infer_json(rows[i:i + 1], flat=bool(i % 4))}
            with requests.Session() as s:
                try:
                    start.wait(timeout=60)
                    while not stop.is_set():
                        r = s.post(self.url + URL, timeout=e2e.REQUEST_TIMEOUT, **kw)
                        if r.status_code != 200:
                            failures.append("client %d: %d %s" % (i, r.status_code, r.text))
                            return
                        _, outs = decode(r)
                        for name, w in want[i].items():
                            g = outs[name]
                            same = (np.array_equal(g, w) if name == "label"
                                    else np.allclose(g, w, rtol=1e-5, atol=1e-7))
                            if g.shape != w.shape or not same:
                                failures.append("client %d, answer %d: %s %s != %s"
                                                % (i, counts[i], name, g, w))
                                return
                        counts[i] += 1
                except Exception as e:  # noqa: BLE001
                    failures.append("client %d: %r" % (i, e))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        start.wait(timeout=60)
        t0 = time.monotonic()
        time.sleep(DURATION)

        def batched_once():
            m = e2e.scrape(self.url)
            rows = (e2e.metric(m, "myelin_inference_count_total", model="mlp") -
                    e2e.metric(before, "myelin_inference_count_total", model="mlp"))
            execs = (e2e.metric(m, "myelin_inference_exec_count_total", model="mlp") -
                     e2e.metric(before, "myelin_inference_exec_count_total", model="mlp"))
            return execs < rows

        try:
            while not failures and not batched_once() and time.monotonic() - t0 < MAX_DURATION:
                time.sleep(0.25)
        finally:
            elapsed = time.monotonic() - t0
            stop.set()
        for t in threads:
            t.join(timeout=60)
        self.assertFalse(any(t.is_alive() for t in threads), "a client hung")
        self.assertEqual(failures[:5], [])
        total = sum(counts)
        self.assertTrue(all(c > 0 for c in counts), "a client got no answer: %s" % counts)

        after = e2e.scrape(self.url)

        def delta(name):
            return (e2e.metric(after, name, model="mlp") - e2e.metric(before, name, model="mlp"))

        rows_done = delta("myelin_inference_count_total")
        execs = delta("myelin_inference_exec_count_total")
        print("\n  %d answers from %d clients in %.1f s; %d rows in %d batches (%.2f rows/batch)"
              % (total, CLIENTS, elapsed, rows_done, execs, rows_done / max(execs, 1)),
              file=sys.stderr)
        self.assertEqual(delta("myelin_inference_request_success_total"), total)
        self.assertEqual(delta("myelin_inference_request_failure_total"), 0)
        self.assertEqual(rows_done, total)
        self.assertGreater(execs, 0)
        self.assertLess(execs, rows_done,
                        "no batch held more than one request's row in %.1f s" % elapsed)
        # The batch-size histogram agrees: some batch had more than one row.
        self.assertLess(e2e.metric(after, "myelin_inference_batch_size_bucket", model="mlp",
                                   le="1"),
                        e2e.metric(after, "myelin_inference_batch_size_count", model="mlp"))


if __name__ == "__main__":
    e2e.main()
