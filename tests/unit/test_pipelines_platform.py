"""The platform spec that gives KFP task pods a RetrainJob's credentials (pipelines/platform.py,
clients/kfp_backend.py), checked with kfp-kubernetes' proto and kfp.Client's own reader."""

from __future__ import annotations

from pathlib import Path

import yaml
from google.protobuf import json_format
from kfp.client.client import _extract_pipeline_yaml
from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s

from mlops_operator.clients.kfp_backend import _with_secret_env
from mlops_operator.pipelines import catalog, platform

PACKAGE = catalog.package_path("tabular-train")
SPEC = yaml.safe_load(PACKAGE.read_text())


def test_every_task_gets_every_credential_key_from_the_secret_optionally() -> None:
    doc = platform.secret_env(SPEC, "mlflow-creds")
    executors = doc["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert sorted(executors) == sorted(SPEC["deploymentSpec"]["executors"])
    assert len(executors) == 6  # the six steps of tabular-train
    for cfg in executors.values():
        parsed = k8s.KubernetesExecutorConfig()
        json_format.ParseDict(cfg, parsed)  # the driver's own schema: unknown fields fail
        [ref] = parsed.secret_as_env
        assert ref.secret_name == "mlflow-creds"
        assert ref.secret_name_parameter.runtime_value.constant.string_value == "mlflow-creds"
        assert ref.optional
        assert [(m.secret_key, m.env_var) for m in ref.key_to_env] == [
            (k, k) for k in platform.CREDENTIAL_KEYS
        ]
    assert "MLFLOW_TRACKING_TOKEN" in platform.CREDENTIAL_KEYS
    assert "AWS_SECRET_ACCESS_KEY" in platform.CREDENTIAL_KEYS


def test_the_submitted_package_carries_it_as_kfp_client_reads_it(tmp_path: Path) -> None:
    shipped = PACKAGE.read_text()
    plain = _extract_pipeline_yaml(str(PACKAGE)).to_dict()
    assert "platform_spec" not in plain  # nothing added without a Secret
    path = _with_secret_env(PACKAGE, tmp_path, "mlflow-creds")
    sent = _extract_pipeline_yaml(str(path)).to_dict()
    assert sent["pipeline_spec"] == plain
    kube = sent["platform_spec"]["platforms"]["kubernetes"]
    assert kube == platform.secret_env(SPEC, "mlflow-creds")["platforms"]["kubernetes"]
    assert PACKAGE.read_text() == shipped  # a copy was sent; the shipped package is as it was
