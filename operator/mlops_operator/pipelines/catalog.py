"""The compiled pipelines shipped with the operator, and the parameters each one takes.

    package_path("tabular-train")   # .../mlops_operator/pipelines/packages/tabular-train.yaml
    names()                         # ["tabular-train"]
    Catalog.with_extra("/etc/pipelines").package_path("mine")   # a package of your own
    parameters("tabular-train")     # {"model_name": Parameter(...), ...}
    check_parameters("tabular-train", {"data_uri": 3})   # ["data_uri: expected a string ..."]

Parameters are read from the package's ``root.inputDefinitions`` with PyYAML alone (no kfp
import), so the operator can refuse a RetrainJob with a misspelt parameter before it starts a
run, in microseconds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PACKAGES = Path(__file__).resolve().parent / "packages"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# KFP parameter types -> the Python types a value may have (JSON numbers: an integer is a
# valid double; a bool is not a number even though Python says it is an int)
_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "STRUCT": (dict,),
    "LIST": (list,),
}
_TYPE_WORDS = {
    "STRING": "a string",
    "NUMBER_INTEGER": "an integer",
    "NUMBER_DOUBLE": "a number",
    "BOOLEAN": "true or false",
    "STRUCT": "an object",
    "LIST": "a list",
}


class UnknownPipelineError(LookupError):
    """No compiled pipeline of that name ships with the operator."""


@dataclass(frozen=True)
class Parameter:
    """One input parameter of a pipeline, as its compiled package declares it."""

    name: str
    type: str  # the KFP parameterType: STRING, NUMBER_INTEGER, NUMBER_DOUBLE, BOOLEAN, ...
    required: bool
    default: Any = None
    description: str = ""


@dataclass(frozen=True)
class Catalog:
    """Where pipeline names are looked up: the shipped packages first, then the directories of
    MLOPS_PIPELINE_PACKAGES_DIR, so a shipped name always means the shipped pipeline."""

    dirs: tuple[Path, ...] = (PACKAGES,)

    @classmethod
    def with_extra(cls, extra: str | Path) -> Catalog:
        return cls((PACKAGES, Path(extra))) if str(extra) else cls()

    def names(self) -> list[str]:
        """Names of the pipelines in every directory, sorted."""
        return sorted({p.stem for d in self.dirs for p in d.glob("*.yaml")})

    def package_path(self, name: str) -> Path:
        """The compiled package (KFP IR YAML) of pipeline ``name``."""
        # the name is user input (spec.pipeline.name): never let it walk out of a directory
        if _NAME.match(name):
            for d in self.dirs:
                if (path := d / f"{name}.yaml").is_file():
                    return path
        known = ", ".join(self.names()) or "none"
        raise UnknownPipelineError(f"unknown pipeline {name!r}; known pipelines: {known}")


SHIPPED = Catalog()


def names() -> list[str]:
    """Names of the shipped pipelines, sorted."""
    return SHIPPED.names()


def package_path(name: str) -> Path:
    """The compiled package (KFP IR YAML) of the shipped pipeline ``name``."""
    return SHIPPED.package_path(name)


def parameters(name: str) -> dict[str, Parameter]:
    """The input parameters of pipeline ``name``, by name."""
    return package_parameters(package_path(name))


def package_parameters(path: Path) -> dict[str, Parameter]:
    """The input parameters declared by the compiled package at ``path``, by name."""
    resolved = path.resolve()
    # keyed by mtime too, so a package recompiled while the process runs is read again
    return dict(_parameters(resolved, resolved.stat().st_mtime_ns))


@functools.lru_cache(maxsize=32)
def _parameters(path: Path, mtime_ns: int) -> tuple[tuple[str, Parameter], ...]:
    doc = yaml.safe_load(path.read_text())
    declared = doc.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    out = []
    for pname, spec in declared.items():
        ptype = str(spec.get("parameterType", "STRING"))
        default = spec.get("defaultValue")
        # IR stores every number as a double; give integer parameters back an int
        if ptype == "NUMBER_INTEGER" and isinstance(default, float) and default.is_integer():
            default = int(default)
        out.append(
            (
                pname,
                Parameter(
                    name=pname,
                    type=ptype,
                    required=not spec.get("isOptional", False),
                    default=default,
                    description=" ".join(str(spec.get("description", "")).split()),
                ),
            )
        )
    return tuple(out)


def check_parameters(name: str, values: Mapping[str, Any]) -> list[str]:
    """Problems with ``values`` as arguments of pipeline ``name``; empty when they are fine.

    Unknown names, missing required parameters and values of the wrong JSON type.
    """
    return check_values(parameters(name), values)


def check_values(declared: Mapping[str, Parameter], values: Mapping[str, Any]) -> list[str]:
    """Problems with ``values`` as arguments for the ``declared`` parameters."""
    problems = [
        f"{key}: unknown parameter (known: {', '.join(sorted(declared))})"
        for key in values
        if key not in declared
    ]
    problems += [
        f"{p.name}: required parameter is missing"
        for p in declared.values()
        if p.required and p.name not in values
    ]
    for key, value in values.items():
        spec = declared.get(key)
        if spec is None or spec.type not in _TYPES:
            continue
        wrong_bool = isinstance(value, bool) and spec.type != "BOOLEAN"
        if wrong_bool or not isinstance(value, _TYPES[spec.type]):
            problems.append(
                f"{key}: expected {_TYPE_WORDS[spec.type]}, got {type(value).__name__} {value!r}"
            )
    return problems


def coerce_parameters(declared: dict[str, Parameter], values: dict[str, Any]) -> dict[str, Any]:
    """PURE: JSON numbers as the pipeline declares them. Kubernetes stores 1.0 as 1, and
    KFP refuses an integer for a float parameter, so whole numbers are converted back."""
    out = dict(values)
    for name, value in values.items():
        p = declared.get(name)
        if p is None or isinstance(value, bool):
            continue
        if p.type == "NUMBER_DOUBLE" and isinstance(value, int):
            out[name] = float(value)
        elif p.type == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
            out[name] = int(value)
    return out
