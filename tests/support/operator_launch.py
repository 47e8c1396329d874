"""Operator processes for the install and high-availability tests: `launch` is
operator_process.start_operator, which takes the log line that means "up" (a standby never
logs "mlops-operator started", it logs that it stands by)."""

from __future__ import annotations

from tests.support.operator_process import STARTED, start_operator

STANDING_BY = "leader election: standing by"
launch = start_operator

__all__ = ["STANDING_BY", "STARTED", "launch"]
