#!/usr/bin/env python3
"""Draws the charts of one `myelin bench` report from its JSON.

usage: charts.py REPORT.json OUT_DIR STEM

The report's data.charts lists what to draw (see docs/benchmarks.md): each
chart names a table of data.tables, the column for the x axis and the
columns to plot. Each chart is written as OUT_DIR/STEM-KEY.svg and its file
name printed on stdout, one a line. Without matplotlib (Debian
python3-matplotlib) nothing is drawn: a warning goes to stderr and the exit
status is 3, which `myelin bench` reports and otherwise ignores.
Exit 1 on a malformed report, naming what is wrong.
"""
import json
import math
import os
import sys


def fail(msg):
    print(f"charts.py: {msg}", file=sys.stderr)
    sys.exit(1)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        fail(f"{path}: no 'data' object")
    return data


def number(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def series_of(path, data, chart):
    for field in ("key", "title", "table", "x", "series"):
        if field not in chart:
            fail(f"{path}: a chart has no '{field}'")
    rows = data.get("tables", {}).get(chart["table"])
    if not isinstance(rows, list) or not rows:
        fail(f"{path}: chart '{chart['key']}' names table '{chart['table']}', which has no rows")
    xs = [str(r.get(chart["x"], "")) for r in rows]
    ys = {s: [number(r.get(s)) for r in rows] for s in chart["series"]}
    return xs, ys


def draw(plt, chart, xs, ys, out_path):
    fig, ax = plt.subplots(figsize=(7.5, 0.5 + 0.45 * len(xs) * max(1, len(ys)) ** 0.5)
                           if chart.get("kind", "bar") == "bar" else (7.5, 4.5))
    if chart.get("kind", "bar") == "bar":
        height = 0.8 / max(1, len(ys))
        for i, (name, values) in enumerate(ys.items()):
            pos = [k + i * height for k in range(len(xs))]
            ax.barh(pos, values, height=height,  # NaN (not measured): no bar
                    label=chart.get("labels", {}).get(name, name))
        ax.set_yticks([k + height * (len(ys) - 1) / 2 for k in range(len(xs))])
        ax.set_yticklabels(xs)
        ax.invert_yaxis()
        ax.set_xlabel(chart.get("y_label", ""))
        if chart.get("log", False):
            ax.set_xscale("log")
    else:
        for name, values in ys.items():
            ax.plot(xs, values, marker="o", label=chart.get("labels", {}).get(name, name))
        ax.set_ylabel(chart.get("y_label", ""))
        if chart.get("log", False):
            ax.set_yscale("log")
    ax.set_title(chart["title"])
    if len(ys) > 1:
        ax.legend()
    ax.grid(True, axis="x" if chart.get("kind", "bar") == "bar" else "y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, format="svg", metadata={"Date": None})
    plt.close(fig)


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, out_dir, stem = argv[1:]
    data = load(path)
    charts = data.get("charts", [])
    if not isinstance(charts, list):
        fail(f"{path}: data.charts is not a list")
    prepared = [(c, *series_of(path, data, c)) for c in charts]  # validate before drawing
    if not prepared:
        return 0
    try:
        import matplotlib
        matplotlib.use("Agg")
        matplotlib.rcParams["svg.hashsalt"] = "myelin"  # the same SVG for the same figures
        import matplotlib.pyplot as plt
    except ImportError:
        print("charts.py: charts skipped: matplotlib is not installed "
              "(Debian: apt-get install python3-matplotlib)", file=sys.stderr)
        return 3
    for chart, xs, ys in prepared:
        name = f"{stem}-{chart['key']}.svg"
        draw(plt, chart, xs, ys, os.path.join(out_dir, name))
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
