"""PURE: the Kubernetes platform spec that hands a RetrainJob's credentials to KFP task pods.

A Kubeflow Pipelines run takes, beside the pipeline spec, a platform spec read by KFP's
driver (the format of kfp-kubernetes' `use_secret_as_env`). KFP can map Secret keys to
environment variables but has no `envFrom`, so the keys are named: the environment variables
MLflow and its artifact stores read. Each mapping is optional, so a Secret holds only the keys
its setup needs (a token, or a user and password, plus the artifact store's).
"""

from __future__ import annotations

from typing import Any

# What the MLflow client and its artifact repositories read from the environment.
CREDENTIAL_KEYS = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCESS_KEY",
)


def executors(pipeline_spec: dict[str, Any]) -> list[str]:
    """The executor labels of a compiled pipeline (every task's container), sorted."""
    return sorted((pipeline_spec.get("deploymentSpec") or {}).get("executors") or {})


def secret_env(pipeline_spec: dict[str, Any], secret: str) -> dict[str, Any]:
    """The platform spec that sets CREDENTIAL_KEYS from Secret `secret` in every task's
    container. The name is written in both forms kfp-kubernetes writes: older KFP servers
    read `secretName`, newer ones `secretNameParameter`."""
    entry = {
        "secretName": secret,
        "secretNameParameter": {"runtimeValue": {"constant": secret}},
        "keyToEnv": [{"secretKey": k, "envVar": k} for k in CREDENTIAL_KEYS],
        "optional": True,
    }
    return {
        "platforms": {
            "kubernetes": {
                "deploymentSpec": {
                    "executors": {e: {"secretAsEnv": [entry]} for e in executors(pipeline_spec)}
                }
            }
        }
    }
