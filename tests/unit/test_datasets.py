from __future__ import annotations

import pytest

from mlops_operator.datasets import DvcRef, parse_dvc_uri

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        (
            "dvc://data/train.csv?repo=/srv/data&rev=v1",
            DvcRef("data/train.csv", "/srv/data", "v1"),
        ),
        ("dvc://train.csv?repo=/srv/data", DvcRef("train.csv", "/srv/data", None)),
        (
            "dvc://data/a%20b.csv?repo=https://git.example/d.git&rev=abc123",
            DvcRef("data/a b.csv", "https://git.example/d.git", "abc123"),
        ),
        ("dvc://x.parquet?repo=/r&rev=", DvcRef("x.parquet", "/r", None)),
    ],
)
def test_a_dvc_uri_names_a_path_a_repo_and_a_revision(uri: str, ref: DvcRef) -> None:
    assert parse_dvc_uri(uri) == ref


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("dvc://data/train.csv", "needs a path and a repo"),
        ("dvc://?repo=/r", "needs a path and a repo"),
        ("dvc://x.csv?repo=/r&branch=main", "unknown parameters ['branch']"),
        ("dvc://x.csv?repo=/r&rev=a&rev=b", "once"),
        ("dvc://../etc/passwd?repo=/r", "inside the repository"),
        ("s3://bucket/x.csv", "not a dvc:// URI"),
    ],
)
def test_a_bad_dvc_uri_says_what_is_wrong(uri: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_dvc_uri(uri)
