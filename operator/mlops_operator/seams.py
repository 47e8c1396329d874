"""Where tests may reach into a running operator, and production never does.

Two seams, both arguments of the wiring (wiring.build) rather than environment reads inside
the reconcilers: the clock the ModelDeployment triggers take as now (a schedule test sets the
time instead of waiting for it), and named crash points (a crash test ends the process at an
exact step to prove the next process recovers). `mlops-operator run` always uses the defaults;
only the tests' entry point (tests/support/operator_main.py) passes others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

Clock = Callable[[], dt.datetime]
CrashPoint = Callable[[str], None]  # called with the point's name; may end the process

# the crash points the reconcilers pass (a test names them to crash there)
AFTER_SUBMIT: Final = "retrainjob.after-submit"  # the run exists, its id is not in status yet
# after the process's n-th API write (apply, create, merge patch, delete), n = 1, 2, ...:
# the fault-injection suite kills the operator after each write of a reconcile in turn
AFTER_WRITE: Final = "kube.after-write-{n}"


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def no_crash(point: str) -> None:
    del point


@dataclass(frozen=True)
class Seams:
    trigger_clock: Clock = system_clock
    crash_point: CrashPoint = no_crash


PRODUCTION: Final = Seams()
