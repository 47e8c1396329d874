"""data_uri dvc://<path>?repo=<dir>&rev=<rev>: training data from a real DVC project (a temporary
git repository with a local DVC remote, tests/support/dvc_repo.py), read by the shipped pipeline
under the real operator and kfp's local runner, with a real MLflow."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlops_operator.contract import TAG_DATA_REPO, TAG_DATA_REV, TAG_DATA_SHA256, TAG_DATA_URI
from mlops_operator.datasets import parse_dvc_uri, read_dvc
from tests.support.dvc_repo import DvcRepo, dvc_env, make_repo
from tests.support.env import Env
from tests.support.objects import unique
from tests.support.retrain_jobs import rtj


def _table(rows: int | None = None) -> bytes:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    text: str = (frame.head(rows) if rows else frame).to_csv(index=False)
    return text.encode()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DvcRepo:
    env = dvc_env(tmp_path / "site-cache")
    for k, v in env.items():  # read_dvc in this process, too
        monkeypatch.setenv(k, v)
    return make_repo(tmp_path, env)


def test_a_revision_reads_the_data_of_its_commit_from_the_remote(repo: DvcRepo) -> None:
    v1 = repo.commit_file("data/train.csv", _table(), "all rows", tag="v1")
    v2 = repo.commit_file("data/train.csv", _table(100), "the first 100")
    repo.drop_cache()
    for rev, commit, data in (("v1", v1, _table()), (None, v2, _table(100)), (v1, v1, _table())):
        uri = f"dvc://data/train.csv?repo={repo.root}" + (f"&rev={rev}" if rev else "")
        assert read_dvc(parse_dvc_uri(uri)) == (data, commit), rev
    with pytest.raises(Exception, match=r"nope\.csv"):
        read_dvc(parse_dvc_uri(f"dvc://data/nope.csv?repo={repo.root}&rev=v1"))


@pytest.mark.usefixtures("operator")
def test_the_same_data_revision_trains_the_same_model_and_the_lineage_names_it(
    env: Env, repo: DvcRepo
) -> None:
    v1 = repo.commit_file("data/train.csv", _table(), "all rows", tag="v1")
    repo.commit_file("data/train.csv", _table(100), "the first 100")  # HEAD moves on
    repo.drop_cache()
    uri = f"dvc://data/train.csv?repo={repo.root}&rev=v1"
    model = unique("dvc")
    for name in ("dvc-a", "dvc-b"):
        env.apply(rtj(name, model, data_uri=uri, model_type="random_forest", n_estimators=20))
    a, b = (env.rtj.finished(n, timeout=240)["status"] for n in ("dvc-a", "dvc-b"))
    for name in ("dvc-a", "dvc-b"):
        assert env.rtj.cond(name, "Succeeded")["status"] == "True", env.rtj.get(name)["status"]
    # the same data revision, the same seed: the same metrics
    assert a["result"]["metrics"] == b["result"]["metrics"]
    assert a["result"]["version"] != b["result"]["version"]
    digest = hashlib.sha256(_table()).hexdigest()
    digests = set()
    for st in (a, b):
        mv = env.mlflow.get_model_version(model, st["result"]["version"])
        assert mv.tags[TAG_DATA_URI] == uri
        assert mv.tags[TAG_DATA_REPO] == str(repo.root)
        assert mv.tags[TAG_DATA_REV] == v1  # the commit the tag named, not the tag
        assert mv.tags[TAG_DATA_SHA256] == digest
        # MLflow's own record of the run's input
        assert mv.run_id
        inputs = env.mlflow.get_run(mv.run_id).inputs
        assert inputs is not None
        [given] = inputs.dataset_inputs
        assert given.dataset.name == "train" and given.dataset.source_type == "dvc"
        assert json.loads(given.dataset.source) == {"uri": uri}
        assert [t.value for t in given.tags if t.key == "mlflow.data.context"] == ["training"]
        digests.add(given.dataset.digest)
    assert len(digests) == 1
