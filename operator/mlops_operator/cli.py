"""`mlops-operator`: the operator's command line.

    mlops-operator run            start the operator (settings from the environment)
    mlops-operator settings       print the settings it would run with, and exit

Settings are validated before anything connects anywhere, so a bad value is a one-line
error and exit status 2, not a traceback from inside a handler.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mlops_operator.seams import PRODUCTION, Seams
from mlops_operator.settings import Settings, SettingsError, documented_variables


def main(argv: list[str] | None = None, seams: Seams = PRODUCTION) -> int:
    """`seams` is for the tests' entry point only (tests/support/operator_main.py)."""
    ap = argparse.ArgumentParser(
        prog="mlops-operator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the operator")
    sub.add_parser("settings", help="print the effective settings and exit")
    args = ap.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"mlops-operator: {e}", file=sys.stderr)
        return 2

    if args.command == "settings":
        docs = documented_variables()
        for f, env in zip(type(settings).model_fields, docs, strict=True):
            value = getattr(settings, f)
            # a secret is shown as set or not, never printed
            print(f"{env}={'<set>' if value and f.endswith('_secret') else repr(value)}")
        return 0

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from mlops_operator.main import run_operator

    return run_operator(settings, seams)


if __name__ == "__main__":
    sys.exit(main())
