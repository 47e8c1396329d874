"""The operator as the tests run it: `mlops-operator run` with the test seams switched on.

Production (`mlops-operator run`) always runs with seams.PRODUCTION; this entry point is the only
place that passes others, read from two variables that only the tests set:
- MLOPS_TEST_NOW_FILE: a file holding an ISO-8601 time that the ModelDeployment triggers take
  as now while it exists, so schedule tests need not wait for real time;
- MLOPS_TEST_CRASH_AT: a crash point (seams.py) where the process exits at once with status 17,
  as a kill at that instant would leave things (the RetrainJob idempotency test).
And one for `bench/bench_reconcile.py --memory`: with MLOPS_TEST_MEMORY_DUMP set (and tracemalloc
started by PYTHONTRACEMALLOC), SIGUSR2 writes where the live memory is to that file.
"""

from __future__ import annotations

import collections
import datetime as dt
import gc
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

from mlops_operator import cli, seams

CRASH_EXIT = 17


def file_clock(path: Path) -> seams.Clock:
    def now() -> dt.datetime:
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return seams.system_clock()
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)

    return now


def crash_at(wanted: str) -> seams.CrashPoint:
    def point(name: str) -> None:
        if name == wanted:
            sys.stderr.flush()
            os._exit(CRASH_EXIT)

    return point


def seams_from_env(env: dict[str, str]) -> seams.Seams:
    now_file, crash = env.get("MLOPS_TEST_NOW_FILE"), env.get("MLOPS_TEST_CRASH_AT")
    return seams.Seams(
        trigger_clock=file_clock(Path(now_file)) if now_file else seams.system_clock,
        crash_point=crash_at(crash) if crash else seams.no_crash,
    )


def memory_report() -> str:
    """RSS beside what Python holds: the traced total, the biggest allocation sites and the most
    numerous object types (the difference to RSS is the allocator's and the C libraries')."""
    status = Path("/proc/self/status").read_text()
    rss = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")), "?")
    lines = [f"RSS {int(rss) / 1024:.1f} MB" if rss != "?" else "RSS ?"]
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        lines.append(
            f"traced by tracemalloc: {current / 2**20:.1f} MB now, {peak / 2**20:.1f} MB peak"
        )
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        lines.append("by file:")
        for st in snap.statistics("filename")[:20]:
            frame = st.traceback[0]
            lines.append(f"  {st.size / 2**20:8.2f} MB {st.count:>9} blocks  {frame.filename}")
        lines.append("by line (with the callers):")
        for st in snap.statistics("traceback")[:25]:
            lines.append(f"  {st.size / 2**20:8.2f} MB {st.count:>9} blocks")
            lines.extend(f"      {f.filename}:{f.lineno}" for f in reversed(st.traceback[-6:]))
    counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
    lines.append(
        "objects the collector tracks, by type: "
        + ", ".join(f"{k} {v}" for k, v in counts.most_common(15))
    )
    return "\n".join(lines) + "\n"


def dump_memory_on_signal(path: Path) -> None:
    def dump(signum: int, frame: FrameType | None) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(memory_report())
        tmp.replace(path)

    signal.signal(signal.SIGUSR2, dump)


if __name__ == "__main__":
    if dump_to := os.environ.get("MLOPS_TEST_MEMORY_DUMP"):
        dump_memory_on_signal(Path(dump_to))
    sys.exit(cli.main(sys.argv[1:], seams=seams_from_env(dict(os.environ))))
