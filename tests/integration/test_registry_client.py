"""The operator's registry client (MLflow's REST API over aiohttp) against a real `mlflow server`:
the same answers as MLflow's own Python client, each missing thing named with its reason, an
unreachable server reported as unavailable (credentials and imports: tests/unit/
test_registry_client_http.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from mlops_operator.clients.registry import MlflowRegistry, RegistryError
from mlops_operator.contract import Reason
from tests.support.models import register_iris
from tests.support.objects import unique
from tests.support.operator_metrics import free_port

pytestmark = pytest.mark.integration
T = TypeVar("T")


def run(fn: Callable[[MlflowRegistry], Awaitable[T]], uri: str, **env: str) -> T:
    async def scenario() -> T:
        reg = MlflowRegistry(uri, env=env)
        try:
            return await fn(reg)
        finally:
            await reg.close()

    return asyncio.run(scenario())


def test_answers_match_mlflows_own_client(mlflow_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    name = unique("reg")
    v1 = register_iris(mlflow_uri, name, alias="champion", tags={"mlops.dev/retrainjob": "ns/a"})
    v2 = register_iris(mlflow_uri, name, max_iter=300, tags={"metric.accuracy": "0.5"})
    ml = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    run_id = ml.get_model_version(name, v1).run_id
    assert run_id
    ml.log_metric(run_id, "accuracy", 0.97)

    async def scenario(reg: MlflowRegistry) -> dict[str, Any]:
        return {
            "by_alias": await reg.resolve(name, "champion", None),
            "by_version": await reg.resolve(name, None, v2),
            "found": await reg.find_version_by_tag(name, "mlops.dev/retrainjob", "ns/a"),
            "not_found": await reg.find_version_by_tag(name, "mlops.dev/retrainjob", "ns/b"),
            "v2": await reg.version_info(name, v2),
            "holder": await reg.alias_holder(name, "champion"),
            "no_holder": await reg.alias_holder(name, "challenger"),
        }

    got = run(scenario, mlflow_uri)
    mv1 = ml.get_model_version(name, v1)
    assert got["by_alias"].version == v1 and got["by_alias"].alias == "champion"
    assert got["by_alias"].source == ml.get_model_version_download_uri(name, v1)
    assert got["by_alias"].run_id == mv1.run_id
    assert got["by_version"].version == v2
    assert got["by_version"].source == ml.get_model_version_download_uri(name, v2)
    assert got["found"].version == v1 and got["found"].metrics["accuracy"] == 0.97
    assert got["found"].tags["mlops.dev/retrainjob"] == "ns/a"
    assert got["not_found"] is None
    # the run logged no accuracy for v2: the version tag metric.accuracy is the fallback
    assert got["v2"].metrics["accuracy"] == 0.5
    assert got["holder"] == v1 and got["no_holder"] is None

    async def move(reg: MlflowRegistry) -> None:
        await reg.set_alias(name, "champion", v2)
        await reg.set_version_tag(name, v2, "mlops.dev/promoted-by", "ns/a")

    run(move, mlflow_uri)
    assert ml.get_model_version_by_alias(name, "champion").version == v2
    assert ml.get_model_version(name, v2).tags["mlops.dev/promoted-by"] == "ns/a"


def reason_of(fn: Callable[[MlflowRegistry], Awaitable[Any]], uri: str) -> tuple[str, str]:
    async def scenario(reg: MlflowRegistry) -> tuple[str, str]:
        try:
            await fn(reg)
        except RegistryError as e:
            return e.reason, e.message
        raise AssertionError("no RegistryError")

    return run(scenario, uri)


def test_each_missing_thing_is_named_and_a_dead_server_is_unavailable(mlflow_uri: str) -> None:
    name = unique("reg-missing")
    v1 = register_iris(mlflow_uri, name)
    cases = {
        Reason.MODEL_NOT_FOUND: lambda r: r.resolve(unique("nope"), "champion", None),
        Reason.ALIAS_NOT_SET: lambda r: r.resolve(name, "champion", None),
        Reason.VERSION_NOT_FOUND: lambda r: r.resolve(name, None, str(int(v1) + 5)),
    }
    for want, fn in cases.items():
        reason, message = reason_of(fn, mlflow_uri)
        assert reason == want, (reason, message)
        assert name in message or "does not exist" in message, message
    dead = f"http://127.0.0.1:{free_port()}"
    reason, message = reason_of(lambda r: r.resolve(name, "champion", None), dead)
    assert reason == Reason.REGISTRY_UNAVAILABLE and "unreachable" in message, message
