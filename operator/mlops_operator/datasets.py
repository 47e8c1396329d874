"""Where a pipeline's training data comes from, for the pipelines' load and register steps
(training side, like profiles.py; the operator never imports it).

``dvc://<path>?repo=<url-or-dir>&rev=<rev>`` names a file tracked by DVC (or by git) in a
repository, read with DVC's Python API. The revision is resolved to its commit first and the
file read at that commit, so what the lineage records (repository, commit, content hash) is one
state of the data, whatever a branch or tag points at later.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

DVC_SCHEME = "dvc"


@dataclass(frozen=True)
class DvcRef:
    path: str  # relative to the repository's root
    repo: str  # a git URL or a directory
    rev: str | None  # a branch, tag or commit; None: the repository's HEAD


def parse_dvc_uri(uri: str) -> DvcRef:
    """The parts of ``dvc://<path>?repo=<url-or-dir>&rev=<rev>``; ValueError says what is wrong."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != DVC_SCHEME:
        raise ValueError(f"not a dvc:// URI: {uri!r}")
    path = urllib.parse.unquote(parsed.netloc + parsed.path).strip("/")
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"repo", "rev"})
    form = "dvc://<path>?repo=<url-or-dir>&rev=<rev>"
    if unknown:
        raise ValueError(f"{uri!r}: unknown parameters {unknown}; the form is {form}")
    if any(len(v) > 1 for v in query.values()):
        raise ValueError(f"{uri!r}: repo and rev may each be given once")
    repo = (query.get("repo") or [""])[0]
    rev = (query.get("rev") or [""])[0] or None
    if not path or not repo:
        raise ValueError(f"{uri!r} needs a path and a repo: {form}")
    if ".." in path.split("/"):
        raise ValueError(f"{uri!r}: the path must stay inside the repository")
    return DvcRef(path, repo, rev)


def read_dvc(ref: DvcRef) -> tuple[bytes, str]:
    """(the file's bytes, the commit they were read at)."""
    import os

    # DVC's CLI reports usage to a server of its own; nothing here may talk off the machine
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import dvc.api
    from dvc.repo import Repo

    with Repo.open(ref.repo, uninitialized=True) as repo:
        commit = str(repo.scm.resolve_rev(ref.rev or "HEAD"))
    raw = dvc.api.read(ref.path, repo=ref.repo, rev=commit, mode="rb")
    return bytes(raw), commit


def dataset_source(uri: str) -> Any:
    """An MLflow DatasetSource naming where the training data came from, for
    ``mlflow.data.from_pandas``: MLflow's own for paths, ours for dvc:// and sklearn:."""
    from mlflow.data.dataset_source import DatasetSource

    if "://" not in uri and not uri.startswith("sklearn:"):
        return uri  # a path: MLflow resolves it (LocalArtifactDatasetSource)
    if uri.startswith("file://"):
        return uri

    class UriSource(DatasetSource):
        """A data set named by a URI MLflow has no reader for (it is only recorded)."""

        def __init__(self, uri: str) -> None:
            self.uri = uri

        @staticmethod
        def _get_source_type() -> str:
            return DVC_SCHEME if uri.startswith(f"{DVC_SCHEME}://") else "uri"

        def load(self) -> Any:
            raise NotImplementedError("recorded for lineage; the pipeline reads it")

        @staticmethod
        def _can_resolve(raw_source: Any) -> bool:
            return False

        @classmethod
        def _resolve(cls, raw_source: Any) -> DatasetSource:
            return cls(str(raw_source))

        def to_dict(self) -> dict[str, Any]:
            return {"uri": self.uri}

        @classmethod
        def from_dict(cls, source_dict: dict[Any, Any]) -> DatasetSource:
            return cls(str(source_dict["uri"]))

    return UriSource(uri)
