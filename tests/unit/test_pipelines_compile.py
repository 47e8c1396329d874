"""Compiled pipeline packages: the committed ones are fresh, and each lives once (packages/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops_operator.pipelines import compile as pipelines_compile
from mlops_operator.pipelines.catalog import PACKAGES

ROOT = Path(__file__).resolve().parents[2]


def test_committed_packages_are_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    rc = pipelines_compile.main(["--check", "--root", str(ROOT)])
    assert rc == 0, f"stale pipeline packages, run `make pipelines`:\n{capsys.readouterr().err}"


def test_every_pipeline_has_one_package_where_it_ships() -> None:
    sources = pipelines_compile.sources(ROOT)
    assert sources, "no pipelines/*/pipeline.py"
    for source in sources:
        assert (PACKAGES / f"{source.parent.name}.yaml").is_file()
        assert not list(source.parent.glob("*.yaml")), "a second copy beside the source"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A repository root holding a copy of tabular-train's source only."""
    src = ROOT / "pipelines" / "tabular-train" / "pipeline.py"
    (tmp_path / "pipelines" / "tabular-train").mkdir(parents=True)
    shutil.copy(src, tmp_path / "pipelines" / "tabular-train" / "pipeline.py")
    return tmp_path


def test_compile_writes_the_package_then_check_passes(checkout: Path) -> None:
    packages = checkout / "packages"
    packages.mkdir()
    (packages / "gone.yaml").write_text("a package whose source was deleted\n")
    args = ["--root", str(checkout), "--packages", str(packages)]

    assert pipelines_compile.main(["--check", *args]) == 1
    assert pipelines_compile.main(args) == 0
    # regenerated here from the committed source, byte for byte what is committed
    assert (packages / "tabular-train.yaml").read_text() == (
        PACKAGES / "tabular-train.yaml"
    ).read_text()
    assert not (checkout / "pipelines" / "tabular-train" / "pipeline.yaml").exists()
    assert not (packages / "gone.yaml").exists()
    assert pipelines_compile.main(["--check", *args]) == 0


def test_check_notices_a_changed_source(checkout: Path) -> None:
    packages = checkout / "packages"
    args = ["--root", str(checkout), "--packages", str(packages)]
    assert pipelines_compile.main(args) == 0
    source = checkout / "pipelines" / "tabular-train" / "pipeline.py"
    source.write_text(source.read_text().replace('"target"', '"label"'))
    assert pipelines_compile.main(["--check", *args]) == 1


def test_a_source_must_define_the_pipeline_named_like_its_directory(tmp_path: Path) -> None:
    source = tmp_path / "pipelines" / "other" / "pipeline.py"
    source.parent.mkdir(parents=True)
    source.write_text((ROOT / "pipelines" / "tabular-train" / "pipeline.py").read_text())
    with pytest.raises(pipelines_compile.PipelineSourceError, match="other"):
        pipelines_compile.load_pipeline(source)
