"""The operator as the tests run it: `mlops-operator run` with the test seams switched on.

Production (`mlops-operator run`) always runs with seams.PRODUCTION; this entry point is the only
place that passes others, read from two variables that only the tests set:
- MLOPS_TEST_NOW_FILE: a file holding an ISO-8601 time that the ModelDeployment triggers take
  as now while it exists, so schedule tests need not wait for real time;
- MLOPS_TEST_CRASH_AT: a crash point (seams.py) where the process exits at once with status 17,
  as a kill at that instant would leave things (the RetrainJob idempotency test).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

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


if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:], seams=seams_from_env(dict(os.environ))))
