"""Compile every ``pipelines/<name>/pipeline.py`` into its KFP package.

    python -m mlops_operator.pipelines.compile            # write what changed (make pipelines)
    python -m mlops_operator.pipelines.compile --check    # exit 1 if a committed file is stale

Each package is written once, to ``operator/mlops_operator/pipelines/packages/<name>.yaml``:
the package data the operator ships and runs, and the file to upload to KFP by hand. A package
whose source is gone is removed from ``packages/``.

``pipeline.py`` must define exactly one ``@dsl.pipeline`` whose name is the directory name.
The kfp compiler's output depends only on the source and the pinned kfp version, so a stale
file is a real difference, not noise.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_operator.pipelines.catalog import PACKAGES

SOURCE = "pipeline.py"
COMPILED = "pipeline.yaml"


class PipelineSourceError(RuntimeError):
    """A pipeline.py that does not define its pipeline the expected way."""


@dataclass(frozen=True)
class Output:
    path: Path
    text: str | None  # None: the file should not exist

    def current(self) -> bool:
        if self.text is None:
            return not self.path.exists()
        return self.path.is_file() and self.path.read_text() == self.text

    def write(self) -> None:
        if self.text is None:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(self.text)
        tmp.replace(self.path)


def default_root() -> Path:
    """The repository root when running from a checkout (``<root>/operator/mlops_operator``),
    else the current directory."""
    here = Path(__file__).resolve().parents[3]
    return here if (here / "pipelines").is_dir() else Path.cwd()


def sources(root: Path) -> list[Path]:
    return sorted((root / "pipelines").glob(f"*/{SOURCE}"))


def load_pipeline(source: Path) -> Any:
    """Import ``source`` and return its pipeline (a kfp ``GraphComponent``)."""
    from kfp.dsl.graph_component import GraphComponent

    name = source.parent.name
    module_name = f"_mlops_pipeline_{name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, source)
    if spec is None or spec.loader is None:
        raise PipelineSourceError(f"{source}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, GraphComponent) and value.name == name
    ]
    if len(found) != 1:
        raise PipelineSourceError(
            f"{source}: expected one @dsl.pipeline(name={name!r}), found {len(found)}"
        )
    return found[0]


def compile_source(source: Path) -> str:
    """The compiled package of ``source``, as YAML text."""
    from kfp import compiler

    pipeline = load_pipeline(source)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / COMPILED
        compiler.Compiler().compile(pipeline, str(out))
        return out.read_text()


def outputs(root: Path, packages: Path = PACKAGES) -> list[Output]:
    """Every file compilation should leave behind (or remove), with its content."""
    result: list[Output] = []
    names = set()
    for source in sources(root):
        text = compile_source(source)
        names.add(source.parent.name)
        result.append(Output(packages / f"{source.parent.name}.yaml", text))
    result += [Output(p, None) for p in sorted(packages.glob("*.yaml")) if p.stem not in names]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_operator.pipelines.compile",
        description="Compile pipelines/*/pipeline.py into their KFP packages.",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--root", type=Path, default=None, help="repository root")
    parser.add_argument("--packages", type=Path, default=PACKAGES, help="where the packages go")
    args = parser.parse_args(argv)
    root = (args.root or default_root()).resolve()
    if not sources(root):
        print(f"no pipelines/*/{SOURCE} under {root}", file=sys.stderr)
        return 1

    stale = [o for o in outputs(root, args.packages) if not o.current()]
    for o in stale:
        shown = o.path.relative_to(root) if o.path.is_relative_to(root) else o.path
        what = "stale" if o.text is not None else "has no source"
        if args.check:
            print(f"{shown}: {what}", file=sys.stderr)
        else:
            o.write()
            print(f"{'wrote' if o.text is not None else 'removed'} {shown}")
    if args.check and stale:
        print("run `make pipelines` and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
