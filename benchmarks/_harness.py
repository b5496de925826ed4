"""Shared benchmark harness: run a snippet in a fresh process, report wall time and peak memory.

Each measured side runs in its own subprocess so that one side's caches,
imports and freed-but-kept memory never count for the other. Peak memory is
the process's own high-water mark, ``VmHWM`` of ``/proc/self/status``: it
starts afresh at exec, whereas ``ru_maxrss`` of a child inherits the peak of
the parent that forked it (so a large parent would inflate every row).
Imports happen before the clock; the high-water mark is then reset (writing
``5`` to ``/proc/self/clear_refs``) so that the peak of the timed body alone
is known too. Worker processes the body starts (a ``distributed`` cluster)
are not counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r'''
import json, sys, time

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {{field}} in /proc/self/status")

{setup}
setup_peak = status("VmHWM")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current resident size
baseline = status("VmRSS")
started = time.perf_counter()
{body}
wall = time.perf_counter() - started
body_peak = status("VmHWM")
{epilogue}
print("@@RESULT@@" + json.dumps({{"wall_s": wall, "peak_mb": max(setup_peak, body_peak) / 2**20,
      "peak_above_baseline_mb": (body_peak - baseline) / 2**20, "result": result}}))
'''


def compile_bytecode(package: str = "brainxr") -> None:
    """Write ``package``'s bytecode (``__pycache__``) as ``pip install`` does.

    A fresh process then imports brainxr as an installed copy does. An
    editable install run under ``PYTHONDONTWRITEBYTECODE`` (set on these
    machines) never writes its bytecode, so every fresh process would compile
    brainxr's sources again (0.1-0.2 s for the maskers, plotting and
    reports), which an installed brainxr does not pay, nor do nilearn and
    scikit-learn (their wheels are compiled at install). Sources edited later
    are compiled again on import, as without this.
    """
    import compileall
    import importlib.util

    origin = importlib.util.find_spec(package).origin
    compileall.compile_dir(str(Path(origin).parent), quiet=1)


def measure(setup: str, body: str, env: dict | None = None, timeout: float | None = None, epilogue: str = "") -> dict:
    """Run ``setup`` (imports, untimed) then ``body`` (timed) in a fresh Python process.

    ``body`` must assign a JSON-able ``result``; ``epilogue`` runs after the
    clock and the memory reading (e.g. to save outputs for comparison).

    Returns
    -------
    dict
        ``wall_s``, ``peak_mb`` (the process's peak resident memory, imports
        included), ``peak_above_baseline_mb`` (the timed body's peak above
        the resident memory it started with) and ``result``.
    """
    code = _CHILD.format(setup=textwrap.dedent(setup), body=textwrap.dedent(body), epilogue=textwrap.dedent(epilogue))
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


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages, to print beside timings (the machine is shared)."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
