"""The project's own fault-injection suite, in the manner of Sieve and Acto.

`make test` runs its fast part (a fixed seed, 150 generated objects, a crash after each write
of one ModelDeployment reconcile, 30 rapid updates of one object, delete and re-create under
one name); `make test-chaos` runs the same with MLOPS_CHAOS_OBJECTS and a fresh seed
(MLOPS_CHAOS_SEED, printed). The figures are printed at the end of each test (`-s`).

Crash points go through the fault-injection seam (seams.AFTER_WRITE, passed by the tests' entry
point tests/support/operator_main.py), never through a switch read by production code.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from mlops_operator.contract import (
    API_VERSION,
    GROUP,
    LABEL_MODEL_DEPLOYMENT,
    MODEL_DEPLOYMENT_KIND,
    MODEL_DEPLOYMENT_PLURAL,
    VERSION,
)
from mlops_operator.seams import AFTER_WRITE
from tests.support import mutants
from tests.support.cluster import eventually
from tests.support.env import Env
from tests.support.models import register_iris
from tests.support.objects import make_model_deployment, unique
from tests.support.operator_main import CRASH_EXIT
from tests.support.operator_process import OperatorProcess, start_operator
from tests.support.retrain_jobs import rtj

OBJECTS = int(os.environ.get("MLOPS_CHAOS_OBJECTS", "150"))
SEED = int(os.environ.get("MLOPS_CHAOS_SEED", "1415"))
PLURAL = MODEL_DEPLOYMENT_PLURAL


def _reported(o: dict[str, Any]) -> str | None:
    """The Ready reason once the status speaks for the object's generation, else None."""
    st = o.get("status") or {}
    if st.get("observedGeneration") != o["metadata"]["generation"]:
        return None
    ready = [c for c in st.get("conditions") or [] if c.get("type") == "Ready"]
    return ready[0].get("reason") or None if ready else None


def test_generated_bad_objects_are_refused_or_reported_never_silent(
    env: Env, mlflow_uri: str, operator: OperatorProcess
) -> None:
    model = unique("chaos")
    register_iris(mlflow_uri, model, alias="champion")
    base = mutants.base_spec(model, rtj("x", model, backend="kfp")["spec"])
    # the unmutated object is valid and served: each mutant is one field away from it
    env.apply(make_model_deployment("chaos-base", **base))
    env.md.wait_ready("chaos-base")
    cases = mutants.mutants(base, OBJECTS, SEED)
    refused, errors = 0, []
    accepted: dict[str, str] = {}
    for i, m in enumerate(cases):
        body = {
            "apiVersion": API_VERSION,
            "kind": MODEL_DEPLOYMENT_KIND,
            "metadata": {"name": f"chaos-{i}"},
            "spec": m.spec,
        }
        try:
            env.custom.create_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, body)
            accepted[f"chaos-{i}"] = m.what
        except ApiException as e:
            message = (json.loads(e.body) if e.body else {}).get("message", "")
            if e.status in (400, 422) and message:
                refused += 1
            else:  # a refusal must name the problem; anything else is the server failing
                errors.append(f"{m.what}: {e.status} {message[:300]}")

    def silent() -> list[str]:
        seen = {o["metadata"]["name"]: o for o in env.md.list()}
        return [n for n in accepted if n not in seen or _reported(seen[n]) is None]

    with contextlib.suppress(AssertionError):  # counted and named below
        eventually(lambda: not silent(), 120, 1, "every accepted object reported")
    left = silent()
    reasons = collections.Counter(
        _reported(o) for o in env.md.list() if o["metadata"]["name"] in accepted
    )
    failed = [
        ln for ln in operator.logs().splitlines() if "reconcile failed" in ln and env.ns in ln
    ]
    print(
        f"\nchaos (seed {SEED}): {len(cases)} objects, {refused} refused by the API server, "
        f"{len(accepted) - len(left)} reported ({dict(reasons)}), {len(left)} silent, "
        f"{len(errors)} server errors, {len(failed)} reconciles that raised"
    )
    assert errors == []
    assert left == [], [accepted[n] for n in left][:10]
    assert failed == [], failed[:5]


@pytest.fixture
def own_namespaces(kube: client.ApiClient) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    core = client.CoreV1Api(kube)
    for ns in made:
        core.delete_namespace(ns, propagation_policy="Background")


def test_a_crash_after_each_write_of_a_reconcile_converges(
    kube: client.ApiClient,
    kubeconfig: tuple[str, str | None],
    mlflow_uri: str,
    own_namespaces: list[str],
    tmp_path: Path,
) -> None:
    # An operator of its own per crash point, watching a namespace of its own (not the
    # session operator's), so that its writes are those of this one object's reconcile.
    model = unique("crash")
    register_iris(mlflow_uri, model, alias="champion")
    core = client.CoreV1Api(kube)
    log = tmp_path / "operator.log"
    kills, n = 0, 0
    while True:
        n += 1
        assert n <= 20, "a reconcile that never stops writing"
        ns = f"t-crash-{uuid.uuid4().hex[:6]}"
        core.create_namespace({"metadata": {"name": ns, "labels": {"mlops.dev/test": "1"}}})
        own_namespaces.append(ns)
        env = Env(kube, ns, mlflow_uri)
        crashing = start_operator(
            kubeconfig[0],
            mlflow_uri,
            log,
            MLOPS_NAMESPACES=ns,
            MLOPS_TEST_CRASH_AT=AFTER_WRITE.format(n=n),
        )
        try:
            env.apply(make_model_deployment("md", model={"name": model, "alias": "champion"}))
            try:
                crashing.process.wait(30)
            except Exception:  # no n-th write: the reconcile had converged with fewer
                env.md.wait_ready("md")
                break
        finally:
            crashing.stop()
        assert crashing.process.returncode == CRASH_EXIT, log.read_text()[-2000:]
        kills += 1
        # the next process picks it up from whatever the killed one left
        healthy = start_operator(kubeconfig[0], mlflow_uri, log, MLOPS_NAMESPACES=ns)
        try:
            env.md.wait_ready("md")
            deps = client.AppsV1Api(kube).list_namespaced_deployment(
                ns, label_selector=f"{LABEL_MODEL_DEPLOYMENT}=md"
            )
            services = core.list_namespaced_service(ns).items
            assert [d.metadata.name for d in deps.items] == ["md"]
            assert [s.metadata.name for s in services] == ["md"]
        finally:
            healthy.stop()
    print(f"\ncrash after each write: {kills} kills (writes 1..{n - 1}), all converged, "
          "no duplicate children")  # fmt: skip
    assert kills >= 3  # a fresh object's reconcile writes its children and its status


def test_rapid_updates_end_with_the_status_of_the_last_generation(
    env: Env, mlflow_uri: str, operator: OperatorProcess
) -> None:
    # (d) tens of updates of one object in about a second
    model = unique("rapid")
    register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("rapid", model={"name": model, "alias": "champion"}))
    env.md.wait_ready("rapid")
    for i in range(30):
        env.custom.patch_namespaced_custom_object(
            GROUP, VERSION, env.ns, PLURAL, "rapid", {"spec": {"runtime": {"args": [f"--n={i}"]}}}
        )
    final = env.md.get("rapid")["metadata"]["generation"]
    o = env.md.wait_ready("rapid", timeout=90)
    assert o["status"]["observedGeneration"] == final
    dep = client.AppsV1Api(env.kube).read_namespaced_deployment("rapid", env.ns)
    assert dep.spec.template.spec.containers[0].args[-1] == "--n=29"
    print(f"\nrapid updates: 30 patches, generation {final}, status and Deployment at the last")


def test_a_re_created_object_converges_and_never_keeps_the_old_children(
    env: Env, mlflow_uri: str, operator: OperatorProcess
) -> None:
    # (e) deleted and created again under the same name while the old children are collected
    model = unique("again")
    register_iris(mlflow_uri, model, alias="champion")
    md = make_model_deployment("again", model={"name": model, "alias": "champion"})
    for round_ in range(3):
        env.apply(md)
        o = env.md.wait_ready("again")
        uid = o["metadata"]["uid"]
        dep = client.AppsV1Api(env.kube).read_namespaced_deployment("again", env.ns)
        assert [r.uid for r in dep.metadata.owner_references] == [uid], round_
        env.custom.delete_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, "again")
        eventually(lambda: not env.md.list(), 30, what="deleted")
    env.apply(md)
    uid = env.md.wait_ready("again")["metadata"]["uid"]
    deps = client.AppsV1Api(env.kube).list_namespaced_deployment(env.ns).items
    assert [(d.metadata.name, d.metadata.owner_references[0].uid) for d in deps] == [("again", uid)]
