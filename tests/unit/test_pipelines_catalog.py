"""The catalog of shipped pipeline packages and their parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_operator.pipelines import catalog


def test_names_lists_the_shipped_pipelines() -> None:
    assert "tabular-train" in catalog.names()


def test_package_path_finds_the_compiled_package() -> None:
    path = catalog.package_path("tabular-train")
    assert path.is_file()
    assert path.parent == catalog.PACKAGES
    assert "\n  name: tabular-train\n" in path.read_text()


@pytest.mark.parametrize("name", ["no-such-pipeline", "../tabular-train", "", "Tabular-Train"])
def test_unknown_names_are_refused_with_the_known_ones(name: str) -> None:
    with pytest.raises(catalog.UnknownPipelineError, match=r"known pipelines: .*tabular-train"):
        catalog.package_path(name)


def test_a_packages_directory_adds_pipelines_and_never_shadows_a_shipped_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "mine.yaml").write_text("root: {}\n")
    (tmp_path / "tabular-train.yaml").write_text("root: {}\n")
    (tmp_path / "notes.txt").write_text("not a package\n")
    both = catalog.Catalog.with_extra(tmp_path)
    assert both.package_path("mine") == tmp_path / "mine.yaml"
    assert both.package_path("tabular-train") == catalog.package_path("tabular-train")
    assert "mine" in both.names() and "tabular-train" in both.names()
    assert "notes" not in both.names()
    with pytest.raises(catalog.UnknownPipelineError, match=r"known pipelines: mine, tabular"):
        both.package_path("../mine")
    # the shipped catalog knows nothing of the directory
    assert catalog.Catalog.with_extra("") == catalog.SHIPPED
    with pytest.raises(catalog.UnknownPipelineError):
        catalog.SHIPPED.package_path("mine")


def test_parameters_come_from_the_package() -> None:
    params = catalog.parameters("tabular-train")
    required = {p.name for p in params.values() if p.required}
    assert required == {"model_name", "retrainjob", "mlflow_tracking_uri", "data_uri"}
    assert params["max_iter"].type == "NUMBER_INTEGER"
    assert params["max_iter"].default == 1000
    assert isinstance(params["max_iter"].default, int)
    assert params["c"].default == 1.0
    assert params["columns"].type == "STRUCT"
    assert params["label_column"].default == "target"
    assert "RetrainJob" in params["retrainjob"].description


def test_check_parameters_accepts_a_complete_set() -> None:
    values = {
        "model_name": "m",
        "retrainjob": "ns/name/uid",
        "mlflow_tracking_uri": "http://mlflow:5000",
        "data_uri": "sklearn:iris",
        "c": 2,  # an integer is a fine double
        "max_iter": 50,
        "ranges": {"petal length (cm)": [0, 10]},
    }
    assert catalog.check_parameters("tabular-train", values) == []


def test_check_parameters_names_every_problem() -> None:
    problems = catalog.check_parameters(
        "tabular-train",
        {"model_name": "m", "dta_uri": "x", "max_iter": 1.5, "seed": True, "columns": []},
    )
    text = "\n".join(problems)
    assert "dta_uri: unknown parameter" in text
    for missing in ("retrainjob", "mlflow_tracking_uri", "data_uri"):
        assert f"{missing}: required parameter is missing" in text
    assert "max_iter: expected an integer" in text
    assert "seed: expected an integer, got bool" in text
    assert "columns: expected an object" in text
