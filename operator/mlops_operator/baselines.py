"""A model version's drift baseline in MLflow: the MLflow half of profiles.py.

The training pipeline logs the profile of its training data (profiles.compute_profile) as the
artifact ``drift/baseline.json`` of the logged model; the runtime loads it from the version it
serves. MLflow is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_operator.profiles import BASELINE_ARTIFACT, Profile

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def log_baseline(profile: Profile, model: str, *, client: MlflowClient | None = None) -> str:
    """Write ``profile`` as ``drift/baseline.json`` into a logged model's artifacts.

    ``model`` names the model: a model id (``m-...``, e.g. ``ModelInfo.model_id`` from
    ``log_model``), ``models:/m-<id>``, or a registered version ``models:/<name>/<version>``.
    The file lands beside ``MLmodel``, so every registered version of that model serves it,
    and the runtime receives it with the model itself. Returns the artifact's URI.
    """
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    model_id = model_id_of(model, client)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(BASELINE_ARTIFACT).name
        path.write_text(profile.to_json())
        client.log_model_artifact(model_id, str(path), str(Path(BASELINE_ARTIFACT).parent))
    return f"models:/{model_id}/{BASELINE_ARTIFACT}"


def load_baseline(
    source: str | os.PathLike[str], *, client: MlflowClient | None = None
) -> Profile | None:
    """The baseline profile of a model, or ``None`` when it has none.

    ``source`` is a local model directory (``<dir>/drift/baseline.json``), a registered
    version ``models:/<name>/<version>`` (or ``@alias``), or ``models:/m-<id>``. For a
    registered version the model's own artifacts are read first, then the artifacts of the run
    that produced it (for training code that logged the profile to the run).
    Raises :class:`ProfileError` if a file exists but is not a profile.
    """
    local = Path(os.fspath(source))
    if local.is_dir():
        file = local / BASELINE_ARTIFACT
        return Profile.from_json(file.read_bytes()) if file.is_file() else None

    from mlflow.tracking import MlflowClient

    uri = os.fspath(source)
    if not uri.startswith("models:/"):
        raise ValueError(f"cannot read a baseline from {uri!r}: not a directory or models:/ URI")
    client = client or MlflowClient()
    ref = uri[len("models:/") :].rstrip("/")
    candidates: list[str] = []
    if ref.startswith("m-") and "/" not in ref:
        # "models:/m-<id>/<path>" is read as a registered model called m-<id>: go by location
        location = client.get_logged_model(ref).artifact_location
        candidates.append(f"{location.rstrip('/')}/{BASELINE_ARTIFACT}")
    else:
        name, version = _registered_version(ref, client)
        candidates.append(
            f"{client.get_model_version_download_uri(name, version)}/{BASELINE_ARTIFACT}"
        )
        run_id = client.get_model_version(name, version).run_id
        if run_id:
            candidates.append(f"runs:/{run_id}/{BASELINE_ARTIFACT}")
    for artifact in candidates:
        text = _download_text(artifact)
        if text is not None:
            return Profile.from_json(text)
    return None


def _registered_version(ref: str, client: MlflowClient) -> tuple[str, str]:
    if "@" in ref:
        name, alias = ref.rsplit("@", 1)
        return name, str(client.get_model_version_by_alias(name, alias).version)
    name, sep, version = ref.rpartition("/")
    if not sep or not name or not version:
        raise ValueError(f"expected models:/<name>/<version> or models:/<name>@<alias>: {ref!r}")
    return name, version


def model_id_of(model: str, client: MlflowClient) -> str:
    ref = model[len("models:/") :].rstrip("/") if model.startswith("models:/") else model
    if ref.startswith("m-") and "/" not in ref:
        return ref
    name, version = _registered_version(ref, client)
    mv = client.get_model_version(name, version)
    # the REST store does not always fill model_id; the source names the logged model too
    source = str(getattr(mv, "source", "") or "")
    model_id = getattr(mv, "model_id", None) or (
        source[len("models:/") :] if source.startswith("models:/m-") else None
    )
    if not model_id:
        raise ValueError(
            f"model version {name}/{version} has no logged model (source {source!r}); "
            "log the baseline to its run instead"
        )
    return str(model_id)


def _download_text(artifact_uri: str) -> str | None:
    """The artifact's text, or None when it does not exist (any other error propagates).

    Lists the parent directory first: downloading a missing file makes MLflow print the
    server's 404 at length, and its exception types differ between artifact stores.
    """
    import mlflow.artifacts

    parent, _, name = artifact_uri.rpartition("/")
    listed = mlflow.artifacts.list_artifacts(artifact_uri=parent)
    if not any(Path(f.path).name == name and not f.is_dir for f in listed):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=tmp)
        return Path(path).read_text()
