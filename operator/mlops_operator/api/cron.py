"""The cron schedules CEL can check by themselves: each field within its range (RE2, as the
API server's `matches` runs it). What needs a calendar (a 30 February) is the operator's to find
(reconcilers/triggers.schedule_problem: Stalled, reason InvalidSchedule)."""

from __future__ import annotations


def _cron_field(value: str, question: bool = False) -> str:
    # *, a value or a range a-b, each with an optional /step >= 1, in a comma list
    item = rf"(\*|({value})(-({value}))?)(/[1-9][0-9]*)?"
    one = rf"{item}(,{item})*"
    return rf"(\?|{one})" if question else one


_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DAYS = "sun|mon|tue|wed|thu|fri|sat"
CRON = (
    r"^(?i)(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + r"\s+".join(
        [
            _cron_field(r"[0-5]?[0-9]"),
            _cron_field(r"[01]?[0-9]|2[0-3]"),
            _cron_field(r"0?[1-9]|[12][0-9]|3[01]", question=True),
            _cron_field(rf"0?[1-9]|1[0-2]|{_MONTHS}"),
            _cron_field(rf"[0-7]|{_DAYS}", question=True),
        ]
    )
    + r")$"
)
