"""MLflow's registry webhooks on this machine: the local settings the tests', the benchmark's
and the demo's MLflow server run with, and registering the operator's receiver with it.

Local settings (docs/webhooks.md), none of which a production MLflow needs:
- MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true: the receiver is on 127.0.0.1, which MLflow refuses
  to deliver to otherwise;
- MLOPS_LOCAL_WEBHOOK_CA (hack/mlflow-local/sitecustomize.py): trust the local cluster's CA,
  which signed the receiver's certificate;
- MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY: a fixed key, so that a restarted server (the outage
  tests restart it) can still read the secrets it stored; without one MLflow makes a new key
  per process;
- MLFLOW_WEBHOOK_CACHE_TTL: how long MLflow keeps its list of webhooks (default 60 s); the
  tests register webhooks while other tests move aliases, so they keep it at 1 s.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PKI = ROOT / ".cluster" / "pki"
CA, CERT, KEY = PKI / "ca.crt", PKI / "webhook.crt", PKI / "webhook.key"
SITE = ROOT / "hack" / "mlflow-local"
ALIAS_EVENTS = [
    {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"},
    {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"},
]


def local_mlflow_env(cache_ttl: int = 60) -> dict[str, str]:
    """What to add to the local MLflow server's environment so it delivers to the receiver."""
    key = base64.urlsafe_b64encode(hashlib.sha256(b"mlops-operator local MLflow").digest())
    return {
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_CACHE_TTL": str(cache_ttl),
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": key.decode(),
        "MLOPS_LOCAL_WEBHOOK_CA": str(CA),
        "PYTHONPATH": os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p),
    }


def receiver_settings(port: int, secret: str) -> dict[str, str]:
    """The operator's settings for a receiver on `port` with the local certificate."""
    return {
        "MLOPS_WEBHOOK_PORT": str(port),
        "MLOPS_WEBHOOK_CERT_FILE": str(CERT),
        "MLOPS_WEBHOOK_KEY_FILE": str(KEY),
        "MLOPS_WEBHOOK_SECRET": secret,
    }


def register(mlflow_uri: str, name: str, url: str, secret: str) -> str:
    """Create the webhook in MLflow (REST API 2.0, as `MlflowClient().create_webhook` does);
    -> its id."""
    r = requests.post(
        f"{mlflow_uri}/api/2.0/mlflow/webhooks",
        json={"name": name, "url": url, "events": ALIAS_EVENTS, "secret": secret},
        timeout=30,
    )
    r.raise_for_status()
    return str(r.json()["webhook"]["webhook_id"])


def delete(mlflow_uri: str, webhook_id: str) -> None:
    r = requests.delete(f"{mlflow_uri}/api/2.0/mlflow/webhooks/{webhook_id}", timeout=30)
    r.raise_for_status()


def send_test_delivery(mlflow_uri: str, webhook_id: str) -> dict[str, object]:
    """MLflow's own test delivery (an example payload) to the webhook: its result."""
    r = requests.post(
        f"{mlflow_uri}/api/2.0/mlflow/webhooks/{webhook_id}/test", json={}, timeout=60
    )
    r.raise_for_status()
    return dict(r.json()["result"])
