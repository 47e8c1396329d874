"""Loading the MLflow pyfunc model once, and calling it.

Two ways into the model, both giving exactly ``PyFuncModel.predict``'s result:

* the *direct* call, for frames the codec built against a column schema: such a frame already
  has the signature's columns, in order, with the dtypes MLflow's enforcement produces, so the
  enforcement (which rebuilds the DataFrame column by column; ~3x the cost of a small sklearn
  model's own predict) would be an identity and is skipped. Only for models where
  ``PyFuncModel.predict`` does nothing else: no params schema, no type-hint signature, no
  dependency schemas.
* ``PyFuncModel.predict`` itself, for everything else, after MLflow's own request parsing.

Errors are sorted once here: what the input caused becomes :class:`BadRequest` (HTTP 400),
anything else propagates (HTTP 500, logged with its traceback, never sent to the client).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_operator import baselines, profiles
from mlops_operator.runtime import schema as schema_mod
from mlops_operator.runtime.codec import BadRequest, Parsed

log = logging.getLogger("mlops_operator.runtime")

# MlflowException codes that mean "the request was wrong".
_CLIENT_ERROR_CODES = frozenset({"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"})


@dataclass(frozen=True)
class ModelRef:
    """What MODEL_URI points at, for labels and logs."""

    uri: str
    name: str
    version: str


def parse_model_uri(uri: str) -> ModelRef:
    """Name and version from ``models:/<name>/<version>``; other URIs keep what they can."""
    if uri.startswith("models:/"):
        ref = uri[len("models:/") :].rstrip("/")
        if "@" in ref:
            name, alias = ref.rsplit("@", 1)
            return ModelRef(uri, name, f"@{alias}")
        name, sep, version = ref.rpartition("/")
        if sep:
            return ModelRef(uri, name, version)
        return ModelRef(uri, ref, "")
    return ModelRef(uri, Path(uri.rstrip("/")).name or uri, "")


class LoadedModel:
    """A loaded pyfunc model, its column schema and its drift baseline."""

    def __init__(
        self,
        pyfunc: Any,
        ref: ModelRef,
        *,
        baseline: profiles.Profile | None,
        load_seconds: float,
        direct: bool = True,
    ) -> None:
        self.pyfunc = pyfunc
        self.ref = ref
        self.baseline = baseline
        self.load_seconds = load_seconds
        meta = pyfunc.metadata
        self.mlflow_schema = meta.get_input_schema()
        self.output_schema = meta.get_output_schema()
        self.schema = schema_mod.from_mlflow(self.mlflow_schema)
        self._direct_fn = self._direct_predict_fn(pyfunc) if direct else None

    @staticmethod
    def _direct_predict_fn(pyfunc: Any) -> Any:
        """The model's own predict, when calling it equals PyFuncModel.predict (module doc)."""
        import inspect

        from mlflow.models.dependencies_schemas import _get_dependencies_schema_from_model

        meta = pyfunc.metadata
        if (
            schema_mod.from_mlflow(meta.get_input_schema()) is None
            or meta.get_params_schema() is not None
            or meta._is_signature_from_type_hint()
            or meta._is_type_hint_from_example()
            or _get_dependencies_schema_from_model(meta)
            or not hasattr(pyfunc, "_predict_fn")
        ):
            return None
        fn = pyfunc._predict_fn
        p = inspect.signature(fn).parameters.get("params")
        if p is not None and p.kind is not inspect.Parameter.VAR_KEYWORD:
            return lambda frame: fn(frame, params=None)
        return fn

    @property
    def direct(self) -> bool:
        return self._direct_fn is not None

    def predict(self, parsed: Parsed) -> tuple[Any, Any]:
        """Score a parsed request; returns (model input, predictions)."""
        if parsed.frame is not None:
            if self._direct_fn is not None and parsed.params is None:
                return parsed.frame, self._call(self._direct_fn, parsed.frame)
            return parsed.frame, self._call(self.pyfunc.predict, parsed.frame, parsed.params)
        data = self._parse_with_mlflow(parsed.payload)
        return data, self._call(self.pyfunc.predict, data, parsed.params)

    def _parse_with_mlflow(self, payload: dict[str, Any]) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc.scoring_server import infer_and_parse_data

        data = {k: v for k, v in payload.items() if k != "params"}
        if set(data) == {"inputs"} and isinstance(data["inputs"], dict):
            arrays = data["inputs"]
            if arrays and all(hasattr(v, "dtype") for v in arrays.values()):  # OIP tensors
                return next(iter(arrays.values())) if len(arrays) == 1 else arrays
        try:
            return infer_and_parse_data(data, self.mlflow_schema)
        except MlflowException as e:
            raise BadRequest(_clean(e.message)) from None
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            raise BadRequest(f"cannot read the input: {e}") from None

    @staticmethod
    def _call(fn: Any, data: Any, params: dict[str, Any] | None = None, /) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn(data) if params is None else fn(data, params=params)
        except MlflowException as e:
            if e.error_code in _CLIENT_ERROR_CODES:
                raise BadRequest(_clean(e.message)) from None
            raise
        except (ValueError, TypeError, KeyError, IndexError) as e:
            # raised by the model on input that passed the signature (NaN for a model that
            # cannot take it, an unknown category, ...): the input's fault, so a 400
            log.info("model rejected input: %s: %s", type(e).__name__, e)
            raise BadRequest(f"the model could not score the input: {e}") from None


def _clean(message: str) -> str:
    """MLflow's enforcement message without the dump of the whole input it starts with."""
    m = re.search(r"Error: (.*)\Z", message, flags=re.S)
    text = m.group(1) if m and message.startswith("Failed to enforce schema") else message
    return text.strip()[:2000]


def load(
    uri: str, *, drift: bool = True, direct: bool = True, preload: tuple[str, ...] = ()
) -> LoadedModel:
    """Download (if remote) and load the model at ``uri``, and its baseline if ``drift``.

    ``preload`` modules are imported before MLflow. skops (how MLflow 3 stores scikit-learn
    models) scans every loaded module for each of ~850 numpy/scipy functions when it is first
    imported; doing that before MLflow's ~1,500 modules are loaded saves about a second of cold
    start. Only the baseline stored beside the model is read here; a baseline elsewhere (the
    run's artifacts) is the caller's to fetch later with :func:`remote_baseline`, so that it
    does not delay readiness.
    """
    start = time.monotonic()
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:
            log.debug("preload: %s is not installed", name)
    import mlflow.artifacts
    import mlflow.pyfunc

    ref = parse_model_uri(uri)
    if os.path.isdir(uri):
        local = uri
    else:
        # download once into a directory we know, so the baseline next to MLmodel comes along
        dst = tempfile.mkdtemp(prefix="mlops-model-")
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst)
    # suppress_warnings skips MLflow's requirement check, which indexes every installed
    # distribution (~1 s); check_requirements does the same job for the model's pins only
    pyfunc = mlflow.pyfunc.load_model(local, suppress_warnings=True)
    check_requirements(Path(local))
    if ref.version.startswith("@"):
        ref = _resolve_alias(ref)
    baseline = None
    if drift:
        try:
            baseline = baselines.load_baseline(local)
        except Exception as e:
            log.warning("drift baseline unreadable, drift metrics off: %s", e)
    return LoadedModel(
        pyfunc, ref, baseline=baseline, load_seconds=time.monotonic() - start, direct=direct
    )


def check_requirements(model_dir: Path) -> list[str]:
    """Log (once) where installed packages differ from the model's pinned requirements."""
    from importlib import metadata

    req = model_dir / "requirements.txt"
    if not req.is_file():
        return []
    mismatches = []
    for line in req.read_text().splitlines():
        name, sep, want = line.split(";")[0].split("#")[0].strip().partition("==")
        if not sep or not name:
            continue
        have = "not installed"
        # MLflow pins itself as "mlflow"; the slim runtime image has its client, mlflow-skinny
        for dist in [name.split("[")[0]] + (["mlflow-skinny"] if name == "mlflow" else []):
            try:
                have = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        if have != want.strip():
            mismatches.append(f"{name} {want.strip()} (installed: {have})")
    if mismatches:
        log.warning("model was saved with different packages: %s", ", ".join(mismatches))
    return mismatches


def _resolve_alias(ref: ModelRef) -> ModelRef:
    from mlflow.tracking import MlflowClient

    try:
        mv = MlflowClient().get_model_version_by_alias(ref.name, ref.version[1:])
        return ModelRef(ref.uri, ref.name, str(mv.version))
    except Exception as e:  # only a label is at stake; keep serving
        log.warning("could not resolve %s to a version: %s", ref.uri, e)
        return ref


def remote_baseline(uri: str) -> profiles.Profile | None:
    """The baseline of a registered version when it is not beside the model (run artifacts)."""
    if not uri.startswith("models:/"):
        return None
    try:
        return baselines.load_baseline(uri)
    except Exception as e:
        log.warning("drift baseline unreadable, drift metrics off: %s", e)
        return None
