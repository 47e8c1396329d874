"""RetrainJob end to end: the real operator, the real pipeline (kfp's local runner), the real
MLflow; the kfp backend against the FAKE KFP API of tests/support/fake_kfp.py."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from kubernetes import client

from mlops_operator.contract import GROUP, TAG_CHECKS, TAG_ROLLED_BACK, VERSION
from mlops_operator.seams import AFTER_SUBMIT
from mlops_operator.status.retrain_job import verdict
from tests.support.cluster import eventually
from tests.support.env import Env
from tests.support.fake_kfp import FakeKfp
from tests.support.models import register_iris
from tests.support.objects import make_model_deployment, unique
from tests.support.operator_main import CRASH_EXIT
from tests.support.operator_process import OperatorProcess
from tests.support.retrain_jobs import rtj, worker_pid

pytestmark = pytest.mark.usefixtures("operator")


def test_better_model_is_promoted_and_rolled_out(env: Env) -> None:
    model = unique("iris")
    # the holder's recorded accuracy is poor, so the retrained model beats it
    v1 = register_iris(env.mlflow_uri, model, alias="champion", tags={"metric.accuracy": "0.5"})
    env.apply(make_model_deployment("serve", model={"name": model, "alias": "champion"}))
    eventually(
        lambda: (env.md.get("serve").get("status") or {}).get("model", {}).get("version") == v1,
        what="serving v1",
    )
    job = rtj("better", model)
    job["spec"]["promotion"]["checks"] = {
        "floor": 0.6,
        # generous bounds: this test is about a sound model getting through every check
        "latency": {"p99": "2s"},
        "robustness": {"maxChangedShare": 0.3},
        "slices": {
            "columns": [{"name": "petal length (cm)", "bins": [0, 2.5, 5, 8]}],
            "minSize": 5,
            "maxGap": 0.5,
        },
        "signature": {},
    }
    env.apply(job)
    obj = env.rtj.finished("better")
    st = obj["status"]
    assert env.rtj.cond("better", "Succeeded")["status"] == "True"
    promoted = env.rtj.cond("better", "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("True", "Better")
    new = st["result"]["version"]
    accuracy = st["result"]["metrics"]["accuracy"]
    checks = {c["check"]: c for c in st["result"]["checks"]}
    assert checks.pop("floor") == {
        "check": "floor",
        "value": accuracy,
        "bound": 0.6,
        "passed": True,
        "message": f"floor: accuracy {accuracy:g}, must be at least 0.6",
    }
    # the shipped pipeline's check step measured the rest, and each passed
    assert set(checks) == {
        "latency",
        "robustness.noise",
        "robustness.outOfRange",
        "robustness.missing",
        "slices",
        "signature",
    }
    assert all(c["passed"] for c in checks.values()), checks
    report = json.loads(
        env.mlflow.get_model_version(model, st["result"]["version"]).tags[TAG_CHECKS]
    )
    # the far values are far from the training data's range (the drift baseline's)
    assert report["robustness"]["outOfRange"]["range"] == "training", report
    assert st["result"]["promoted"] is True and st["result"]["previousVersion"] == v1
    assert st["result"]["metrics"]["accuracy"] > 0.5
    assert st["run"]["id"] and st["run"]["startedAt"] and st["run"]["completedAt"]
    assert Path(st["run"]["logs"]).exists()
    assert env.mlflow.get_model_version_by_alias(model, "champion").version == new
    mv = env.mlflow.get_model_version(model, new)
    uid = obj["metadata"]["uid"]
    assert mv.tags["mlops.dev/retrainjob"] == f"{env.ns}/better/{uid}"
    for tag in (
        "mlops.dev/data-uri",
        "mlops.dev/data-sha256",
        "mlops.dev/pipeline",
        "mlops.dev/code-version",
    ):
        assert mv.tags.get(tag), tag
    assert env.rtj.cond("better", "Ready")["status"] == "True"
    assert not obj["metadata"].get("finalizers")
    # the ModelDeployment following the alias rolls forward by itself
    eventually(
        lambda: (env.md.get("serve").get("status") or {}).get("model", {}).get("version") == new,
        timeout=60,
        what="rolled to the new version",
    )
    # A canary that rolls the version back tags it with why (tests/integration/test_canary.py
    # sees the ModelDeployment write it); the job that promoted it reads that into its status.
    why = f"{env.ns}/serve: analysis failed 2 time(s): error rate 9.00% (budget 1.00%)"
    env.mlflow.set_model_version_tag(model, new, TAG_ROLLED_BACK, why)
    seen = eventually(
        lambda: env.rtj.get("better")["status"]["result"].get("rolledBack"),
        timeout=30,
        what="result.rolledBack",
    )
    assert seen == why
    env.rtj.wait_event("better", "Warning", "RolledBack")
    assert env.rtj.get("better")["status"]["result"]["promoted"] is True  # what it did stays


def test_worse_model_is_registered_but_not_promoted(env: Env) -> None:
    model = unique("iris")
    v1 = register_iris(env.mlflow_uri, model, alias="champion", tags={"metric.accuracy": "0.999"})
    # the longest name Kubernetes allows: its run directory and run name stay within bounds
    # (it failed with "File name too long" before any status was written)
    worse = "worse-" + "w" * 247
    env.apply(rtj(worse, model, label_noise=0.4))
    st = env.rtj.finished(worse)["status"]
    assert len(Path(st["run"]["logs"]).parent.name) <= 255
    promoted = env.rtj.cond(worse, "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("False", "NotBetter")
    assert "0.999" in promoted["message"]
    assert st["result"]["promoted"] is False and st["result"]["version"] != v1
    assert env.mlflow.get_model_version_by_alias(model, "champion").version == v1
    assert len(env.versions(model)) == 2
    assert env.rtj.cond(worse, "Ready")["status"] == "True"  # the job did its work


def test_a_model_below_the_floor_is_not_promoted_over_a_weaker_holder(env: Env) -> None:
    model = unique("floor")
    v1 = register_iris(env.mlflow_uri, model, alias="champion", tags={"metric.accuracy": "0.5"})
    job = rtj("floor", model)
    job["spec"]["promotion"]["checks"] = {"floor": 1.01}  # no accuracy reaches it
    env.apply(job)
    st = env.rtj.finished("floor")["status"]
    promoted = env.rtj.cond("floor", "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("False", "ChecksFailed"), promoted
    accuracy = st["result"]["metrics"]["accuracy"]
    assert accuracy > 0.5  # it beats the holder: the floor alone keeps the alias
    assert promoted["message"] == (
        f"failed check floor: accuracy {accuracy:g}, must be at least 1.01; the alias stays"
    )
    assert st["result"]["checks"] == [
        {
            "check": "floor",
            "value": accuracy,
            "bound": 1.01,
            "passed": False,
            "message": f"floor: accuracy {accuracy:g}, must be at least 1.01",
        }
    ]
    assert st["result"]["promoted"] is False
    assert env.mlflow.get_model_version_by_alias(model, "champion").version == v1
    assert env.rtj.cond("floor", "Ready")["status"] == "True"  # the job did its work


def test_invalid_data_fails_with_the_validation_reason(env: Env, tmp_path: Path) -> None:
    model = unique("bad")
    data = tmp_path / "train.csv"
    data.write_text("a,b,target\n1.0,2.0,0\n,3.0,1\n" + "1.5,2.5,1\n" * 30)
    env.apply(rtj("invalid", model, data_uri=str(data)))
    env.rtj.finished("invalid")
    s = env.rtj.cond("invalid", "Succeeded")
    assert s["status"] == "False" and s["reason"] == "ValidationFailed", s
    assert "null" in s["message"].lower()
    stalled = env.rtj.cond("invalid", "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "ValidationFailed")
    assert env.rtj.cond("invalid", "Ready")["status"] == "False"
    assert not env.versions(model)


def test_unknown_pipeline_and_parameters_are_refused_before_any_run(
    env: Env, operator: OperatorProcess
) -> None:
    model = unique("refused")
    typo = rtj("typo", model, n_estimator=10)  # the pipeline declares n_estimators
    nopipe = rtj("nopipe", model)
    nopipe["spec"]["pipeline"]["name"] = "tabular-trian"
    env.apply(typo)
    env.apply(nopipe)
    for name, reason, words in (
        ("typo", "InvalidParameters", ["n_estimator"]),
        ("nopipe", "PipelineNotFound", ["tabular-trian", "tabular-train"]),
    ):
        env.rtj.finished(name, timeout=60)
        s = env.rtj.cond(name, "Succeeded")
        assert (s["status"], s["reason"]) == ("False", reason), s
        assert all(w in s["message"] for w in words), s["message"]
        stalled = env.rtj.cond(name, "Stalled")
        assert (stalled["status"], stalled["reason"]) == ("True", reason)
        env.rtj.released(name)
        assert not (env.rtj.get(name).get("status") or {}).get("run")
    # nothing ran: no run directory, no version
    work = Path(operator.env["MLOPS_WORK_DIR"]) / env.ns
    started = [p.name for p in work.iterdir()] if work.exists() else []
    assert not [p for p in started if p.startswith(("typo-", "nopipe-"))], started
    assert not env.versions(model)


def test_kfp_backend_against_the_fake_api(env: Env, fake_kfp: FakeKfp) -> None:
    model = unique("kfp")
    before = len(fake_kfp.runs)
    # the test-only quick-train: the backend is under test here; every task of the shipped
    # tabular-train goes through it in test_kfp_task_pods_get_the_credentials_secret
    env.apply(rtj("on-kfp", model, backend="kfp", pipeline="quick-train"))
    obj = env.rtj.finished("on-kfp")
    st = obj["status"]
    assert env.rtj.cond("on-kfp", "Succeeded")["status"] == "True"
    assert env.rtj.cond("on-kfp", "Promoted")["reason"] == "NoHolder"
    assert st["run"]["backend"] == "kfp" and st["run"]["id"] in fake_kfp.runs
    assert st["run"]["name"].endswith(obj["metadata"]["uid"])
    assert st["run"]["state"] == "SUCCEEDED"
    assert len(fake_kfp.runs) == before + 1
    assert (
        env.mlflow.get_model_version_by_alias(model, "champion").version == st["result"]["version"]
    )
    calls = {
        (m, p.split("/runs/")[0] + ("/runs/{id}" if "/runs/" in p else ""))
        for m, p in fake_kfp.requests
    }
    assert ("GET", "/apis/v2beta1/healthz") in calls
    assert ("POST", "/apis/v2beta1/runs") in calls and ("GET", "/apis/v2beta1/runs") in calls
    assert ("GET", "/apis/v2beta1/runs/{id}") in calls
    assert fake_kfp.runs[st["run"]["id"]].executors == {}  # no credentialsSecret, no platform


def test_kfp_task_pods_get_the_credentials_secret(env: Env, fake_kfp: FakeKfp) -> None:
    model = unique("creds")
    data = {"MLFLOW_TRACKING_TOKEN": "t0k3n", "AWS_ACCESS_KEY_ID": "AKIA-TEST", "OTHER": "x"}
    env.core.create_namespaced_secret(
        env.ns, client.V1Secret(metadata=client.V1ObjectMeta(name="mlflow-creds"), string_data=data)
    )

    def read_secret(name: str) -> dict[str, str] | None:
        # KFP reads the Secret in the namespace where it runs the pods: here, the test's
        try:
            secret = env.core.read_namespaced_secret(name, env.ns)
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    job = rtj("with-creds", model, backend="kfp")
    job["spec"]["credentialsSecret"] = "mlflow-creds"
    fake_kfp.read_secret = read_secret
    try:
        env.apply(job)
        st = env.rtj.finished("with-creds")["status"]
    finally:
        fake_kfp.read_secret = None
    assert env.rtj.cond("with-creds", "Succeeded")["status"] == "True"
    run = fake_kfp.runs[st["run"]["id"]]
    # every task of the pipeline, each credential key mapped, all of them optional
    assert sorted(run.executors) == [
        "exec-check-model",
        "exec-evaluate-model",
        "exec-load-data",
        "exec-register-model",
        "exec-train-model",
        "exec-validate-data",
    ]
    for cfg in run.executors.values():
        [ref] = cfg["secretAsEnv"]
        assert ref["secretName"] == "mlflow-creds" and ref["optional"] is True
        assert {"secretKey": "MLFLOW_TRACKING_TOKEN", "envVar": "MLFLOW_TRACKING_TOKEN"} in ref[
            "keyToEnv"
        ]
    # what the tasks ran with: the Secret's credential keys, nothing else of it
    assert run.env == {"MLFLOW_TRACKING_TOKEN": "t0k3n", "AWS_ACCESS_KEY_ID": "AKIA-TEST"}
    assert st["result"]["version"] == env.versions(model)[0].version


def _worker_pids(work_dir: Path) -> list[int]:
    return [p for d in work_dir.glob("*/") if (p := worker_pid(d)) is not None]


def test_deleting_a_running_job_stops_its_worker(env: Env, operator: OperatorProcess) -> None:
    model = unique("slow")
    # a big synthetic data set keeps the run busy long enough to be caught running
    env.apply(rtj("slow", model, model_type="random_forest", n_estimators=3000))
    work = Path(operator.env["MLOPS_WORK_DIR"]) / env.ns
    pids = eventually(lambda: _worker_pids(work), timeout=60, what="worker running")
    assert env.rtj.get("slow")["metadata"]["finalizers"] == ["mlops.dev/stop-run"]
    env.custom.delete_namespaced_custom_object(GROUP, VERSION, env.ns, "retrainjobs", "slow")
    eventually(lambda: not _worker_pids(work), timeout=30, what="worker stopped")
    eventually(lambda: not env.rtj.list(), timeout=30, what="RetrainJob gone")
    for pid in pids:  # gone, or at most a zombie nobody has collected yet
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        assert state == "Z", f"worker {pid} still running ({state})"
    assert not env.versions(model)


@pytest.mark.parametrize("backend", ["local", "kfp"])
def test_operator_killed_right_after_submit_runs_once(
    env: Env, operator: OperatorProcess, fake_kfp: FakeKfp, backend: str
) -> None:
    model = unique(f"crash-{backend}")
    kfp_before = len(fake_kfp.runs)
    # the crash seam ends the operator right after submitting, before the run id reaches
    # status: the worst moment for a restart
    operator.start_again(MLOPS_TEST_CRASH_AT=AFTER_SUBMIT)
    try:
        # the test-only quick-train: what runs does not matter here, only that it runs once
        env.apply(rtj("crash", model, backend=backend, pipeline="quick-train"))
        operator.process.wait(60)
        assert operator.process.returncode == CRASH_EXIT
        assert not (env.rtj.get("crash").get("status") or {}).get("run")
    finally:
        operator.start_again()
    st = env.rtj.finished("crash")["status"]
    assert env.rtj.cond("crash", "Succeeded")["status"] == "True"
    assert len(env.versions(model)) == 1
    assert st["result"]["version"] == env.versions(model)[0].version
    if backend == "kfp":
        assert len(fake_kfp.runs) == kfp_before + 1
    else:
        assert st["run"]["id"].startswith("local-")
        assert (st["run"].get("attempt") or 0) == 0  # adopted, not restarted


def _set_now(now_file: Path, t: dt.datetime) -> None:
    tmp = now_file.with_suffix(".tmp")
    tmp.write_text(t.isoformat())
    tmp.replace(now_file)


def test_schedule_trigger_creates_one_job_no_overlap_and_prunes(
    env: Env, now_file: Path, fake_kfp: FakeKfp
) -> None:
    model = unique("sched")
    register_iris(env.mlflow_uri, model, alias="champion", tags={"metric.accuracy": "0.99"})
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _set_now(now_file, t0)
    fake_kfp.hold = True  # runs stay RUNNING until released
    try:
        env.apply(
            make_model_deployment(
                "sched",
                model={"name": model, "alias": "champion"},
                retraining={
                    "schedule": "0 3 * * *",
                    "historyLimit": 1,
                    # the test-only quick-train: the schedule is under test, not the pipeline
                    "template": rtj("x", model, backend="kfp", pipeline="quick-train")["spec"],
                },
            )
        )
        time.sleep(8)  # a few resyncs at t0: nothing is due
        assert env.rtj.of("sched") == []
        first_due = (t0 + dt.timedelta(days=1)).replace(hour=3, minute=0, second=0)
        _set_now(now_file, first_due + dt.timedelta(minutes=1))
        jobs = eventually(lambda: env.rtj.of("sched"), timeout=30, what="one RetrainJob")
        time.sleep(8)
        jobs = env.rtj.of("sched")
        assert len(jobs) == 1
        j = jobs[0]
        assert j["metadata"]["labels"]["mlops.dev/trigger"] == "schedule"
        assert j["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
        # the next firing comes while the first still runs: skipped, no overlap
        _set_now(now_file, first_due + dt.timedelta(days=1, minutes=1))
        time.sleep(8)
        assert len(env.rtj.of("sched")) == 1
        md = env.md.get("sched")
        assert "still running" in md["status"]["retraining"]["message"]
    finally:
        fake_kfp.release()
    done = env.rtj.finished(j["metadata"]["name"])
    # the ModelDeployment says what its newest finished job decided (kubectl describe mdep);
    # what a verdict holds is table-tested in tests/unit/test_status_retrain_job.py
    expected = verdict(done)
    assert expected is not None and expected["name"] == j["metadata"]["name"], expected
    eventually(
        lambda: env.md.get("sched")["status"]["retraining"].get("lastResult") == expected,
        timeout=30,
        what=f"lastResult {expected}",
    )
    # a third firing creates a second job; with historyLimit 1 the first is pruned
    _set_now(now_file, first_due + dt.timedelta(days=2, minutes=1))
    eventually(
        lambda: [x for x in env.rtj.of("sched") if x["metadata"]["name"] != j["metadata"]["name"]],
        timeout=30,
        what="second RetrainJob",
    )
    second = next(x for x in env.rtj.of("sched") if x["metadata"]["name"] != j["metadata"]["name"])
    env.rtj.finished(second["metadata"]["name"])
    eventually(
        lambda: (
            [x["metadata"]["name"] for x in env.rtj.of("sched")] == [second["metadata"]["name"]]
        ),
        timeout=30,
        what="history pruned to 1",
    )
    last = env.md.get("sched")["status"]["retraining"]["lastResult"]
    assert last["name"] == second["metadata"]["name"], last
    now_file.unlink()
