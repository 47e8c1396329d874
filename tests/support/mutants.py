"""Generated bad objects, in the manner of Acto: a valid ModelDeployment spec with one field
mutated at a time, by type, range, length, encoding, unknown keys or a missing key, from a
seeded random source (the seed is printed, so a run can be replayed). The fault-injection
suite (tests/integration/test_chaos.py) sends each to the API server and checks that it is
refused with a message or reported in status, never silent."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]

NODE_TERM = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}


def base_spec(model: str, template: dict[str, Any]) -> dict[str, Any]:
    """Valid, and cheap to serve: no replicas (no pods), every optional part present so that
    its fields can be mutated."""
    return {
        "model": {"name": model, "alias": "champion"},
        "replicas": 0,
        "runtime": {"env": [{"name": "A", "value": "1"}], "args": ["--x"]},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1"}},
        "scheduling": {
            "nodeSelector": {"mlops.dev/pool": "cpu"},
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 10, "preference": NODE_TERM}
                    ]
                }
            },
            "priorityClassName": "",
        },
        "gpu": {"count": 0},
        "retraining": {"schedule": "0 3 * * *", "historyLimit": 1, "template": template},
    }


# one value of each JSON type
_TYPES: list[Any] = [7, 2.5, "text", True, None, [1, "a"], {"k": "v"}]
_NUMBERS: list[Any] = [-1, 0, 1001, 2**31, 2**63 - 1, 1e20, -1e20, 0.5]
_STRINGS: list[Any] = [
    "",
    "x" * 300,
    "x" * 70000,
    "\u0000",
    "é🙂",
    "\u202eevil",
    "a b",
    "../../etc/passwd",
    "${HOME}",
    "1Zi",
    "abc",
    "-1",
    "UPPER",
]


@dataclass(frozen=True)
class Mutant:
    spec: dict[str, Any]
    what: str  # "<kind> at <path>: <value>", for a failing assertion to name


def _paths(node: Any, path: Path = ()) -> Iterator[Path]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


def _get(node: Any, path: Path) -> Any:
    for p in path:
        node = node[p]
    return node


def _set(node: Any, path: Path, value: Any) -> None:
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def _delete(node: Any, path: Path) -> None:
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]


def mutants(base: dict[str, Any], n: int, seed: int) -> list[Mutant]:
    rnd = random.Random(seed)
    paths = [p for p in _paths(base) if p]  # not the spec itself
    out = []
    for _ in range(n):
        spec = copy.deepcopy(base)
        path = rnd.choice(paths)
        old = _get(spec, path)
        kind = rnd.choice(["type", "range", "length", "encoding", "unknown-key", "missing"])
        if kind == "type":
            value = rnd.choice([v for v in _TYPES if type(v) is not type(old)])
        elif kind == "range":
            value = rnd.choice(_NUMBERS if not isinstance(old, str) else ["", "-1", "0"])
        elif kind in ("length", "encoding"):
            value = rnd.choice(_STRINGS)
            if isinstance(old, list) and kind == "length":
                value = [copy.deepcopy(old[0]) if old else "x"] * 300
        elif kind == "unknown-key":
            target = old if isinstance(old, dict) else _get(spec, path[:-1])
            if isinstance(target, dict):
                target["zzUnknown" + str(rnd.randrange(100))] = rnd.choice(_TYPES)
                out.append(Mutant(spec, f"unknown key under {_name(path)}"))
                continue
            kind, value = "type", {"zzUnknown": 1}
        else:  # missing
            _delete(spec, path)
            out.append(Mutant(spec, f"missing {_name(path)}"))
            continue
        _set(spec, path, copy.deepcopy(value))
        shown = repr(value)
        out.append(Mutant(spec, f"{kind} at {_name(path)}: {shown[:60]}"))
    return out


def _name(path: Path) -> str:
    return "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
