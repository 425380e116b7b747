#!/usr/bin/env python3
"""Tests of bench/render/charts.py: an SVG per listed chart, a warning and
exit 3 without matplotlib (simulated with python3 -S, which hides the Debian
dist-packages), and exit 1 naming the problem for a malformed report."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHARTS = os.path.join(HERE, "charts.py")

REPORT = {
    "title": "demo",
    "data": {
        "part": "demo",
        "tables": {"cost": [{"clock": "a", "p50_ns": 20.5, "p99_ns": 30},
                            {"clock": "b", "p50_ns": 4, "p99_ns": None}]},
        "charts": [{"key": "cost", "title": "Cost", "table": "cost", "x": "clock",
                    "series": ["p50_ns", "p99_ns"], "y_label": "ns", "kind": "bar", "log": True},
                   {"key": "trend", "title": "Trend", "table": "cost", "x": "clock",
                    "series": ["p50_ns"], "y_label": "ns", "kind": "line", "log": False}],
    },
}


def run(args, python=(sys.executable,)):
    return subprocess.run([*python, CHARTS, *args], capture_output=True, text=True, timeout=120)


class Charts(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.json = os.path.join(self.dir.name, "demo.json")
        with open(self.json, "w", encoding="utf-8") as f:
            json.dump(REPORT, f)

    def tearDown(self):
        self.dir.cleanup()

    def test_draws_one_svg_per_chart_and_names_it(self):
        r = run([self.json, self.dir.name, "demo"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["demo-cost.svg", "demo-trend.svg"])
        for name in r.stdout.split():
            with open(os.path.join(self.dir.name, name), encoding="utf-8") as f:
                svg = f.read()
            self.assertIn("<svg", svg)
        with open(os.path.join(self.dir.name, "demo-cost.svg"), encoding="utf-8") as f:
            first = f.read()
        run([self.json, self.dir.name, "demo"])
        with open(os.path.join(self.dir.name, "demo-cost.svg"), encoding="utf-8") as f:
            self.assertEqual(f.read(), first, "the same figures must give the same SVG")

    def test_without_matplotlib_it_warns_and_draws_nothing(self):
        r = run([self.json, self.dir.name, "demo"], python=(sys.executable, "-S"))
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("charts skipped: matplotlib is not installed", r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertFalse(os.path.exists(os.path.join(self.dir.name, "demo-cost.svg")))

    def test_a_chart_of_a_missing_table_is_an_error_naming_it(self):
        bad = json.loads(json.dumps(REPORT))
        bad["data"]["charts"][0]["table"] = "nope"
        with open(self.json, "w", encoding="utf-8") as f:
            json.dump(bad, f)
        r = run([self.json, self.dir.name, "demo"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("chart 'cost' names table 'nope'", r.stderr)

    def test_not_json_is_an_error_naming_the_file(self):
        with open(self.json, "w", encoding="utf-8") as f:
            f.write("{not json")
        r = run([self.json, self.dir.name, "demo"])
        self.assertEqual(r.returncode, 1)
        self.assertIn(self.json, r.stderr)


if __name__ == "__main__":
    unittest.main()
