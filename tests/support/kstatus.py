"""kstatus's own verdict on objects (sigs.k8s.io/cli-utils, built from hack/kstatus by
`make setup`): how Flux's health checks and `kpt live status` read them. Not a
re-implementation: the tests hand the live objects to the library itself."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.support.helm import find_binary


def judge(*objects: dict[str, Any]) -> list[tuple[str, str]]:
    """(status, message) per object: Current, InProgress, Failed, Terminating, NotFound, Unknown."""
    binary = find_binary("kstatus")
    if binary is None:
        raise FileNotFoundError("kstatus is not built: run `make setup-binaries`")
    done = subprocess.run(
        [binary], input=json.dumps(list(objects)), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == len(objects), done.stdout
    errors = [line["error"] for line in lines if "error" in line]
    assert not errors, errors
    return [(line["status"], line["message"]) for line in lines]
