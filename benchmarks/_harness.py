"""Shared benchmark harness: run a snippet in a fresh process, report wall time and peak memory.

Each measured side runs in its own subprocess so that one side's caches,
imports and freed-but-kept memory never count for the other. The child polls
its resident set size from /proc (every 5 ms) and checks it against
``ru_maxrss``; imports happen before the clock and the memory baseline start,
and both the peak and the peak above that baseline are reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r'''
import json, resource, sys, threading, time

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0

class Peak:
    def __init__(self):
        self.peak = rss(); self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
    def poll(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss()); time.sleep(0.005)

{setup}
baseline = rss()
peak = Peak(); peak.thread.start()
started = time.perf_counter()
{body}
wall = time.perf_counter() - started
peak.stop.set(); peak.thread.join()
top = max(peak.peak, rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print("@@RESULT@@" + json.dumps({{"wall_s": wall, "peak_mb": top / 2**20,
      "peak_above_baseline_mb": (top - baseline) / 2**20, "result": result}}))
'''


def measure(setup: str, body: str, env: dict | None = None, timeout: float | None = None) -> dict:
    """Run ``setup`` (imports, untimed) then ``body`` (timed) in a fresh Python process.

    ``body`` must assign a JSON-able ``result``.

    Returns
    -------
    dict
        ``wall_s``, ``peak_mb``, ``peak_above_baseline_mb`` and ``result``.
    """
    code = _CHILD.format(setup=textwrap.dedent(setup), body=textwrap.dedent(body))
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO
    )
    for line in completed.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise RuntimeError(f"benchmark child failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}")


def print_table(title: str, rows: list[tuple], header: tuple) -> None:
    """Print rows as an aligned text table."""
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
