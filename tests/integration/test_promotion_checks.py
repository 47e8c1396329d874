"""spec.promotion.checks end to end: candidates the test made (biased, slow, crashing, renamed,
sound), registered and measured by the test-only pipeline check-candidate, which runs the shipped
check step (tabular-train's check_model) on them; the real operator's gate decides. Real MLflow,
kfp's local runner; the ModelDeployment that rolls forward runs on the kwok GPU nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiException

from mlops_operator.contract import CHECKS_REPORT_ARTIFACT, GROUP, TAG_CHECKS, VERSION
from tests.support.candidates import log_candidate, make_data, register_holder
from tests.support.cluster import eventually
from tests.support.env import Env
from tests.support.objects import make_model_deployment, unique
from tests.support.retrain_jobs import rtj

pytestmark = pytest.mark.usefixtures("operator")

FAIRNESS = {
    "sensitiveColumn": "group",
    "maxDemographicParityDifference": 0.1,
    "maxEqualizedOddsDifference": 0.2,
}
SOUND = {
    "floor": 0.8,
    "latency": {"p99": "2s", "batchSize": 8},
    "robustness": {"maxChangedShare": 0.1},
    "slices": {
        "columns": [{"name": "group"}, {"name": "a", "bins": [-10, 0, 10]}],
        "minSize": 30,
        "maxGap": 0.15,
    },
    "fairness": {**FAIRNESS, "maxDemographicParityDifference": 0.25},
    "signature": {},
}


def _job(name: str, model: str, uri: str, accuracy: float, data: str, checks: Any) -> Any:
    body = rtj(
        name,
        model,
        pipeline="check-candidate",
        candidate_uri=uri,
        metrics={"accuracy": accuracy},
    )
    body["spec"]["pipeline"]["parameters"]["data_uri"] = data
    body["spec"]["promotion"]["checks"] = checks
    return body


def test_biased_slow_crashing_and_renamed_candidates_stay_out_and_a_sound_one_rolls_out(
    env: Env, tmp_path: Path
) -> None:
    data = make_data()
    held = data.write_held_out(tmp_path / "held-out.parquet")
    renamed = data.write_held_out(tmp_path / "renamed.parquet", {"a": "a_score"})
    # name: (how the candidate misbehaves, its held-out rows, the checks, the checks it fails)
    cases: dict[str, tuple[dict[str, Any], str, dict[str, Any], list[str]]] = {
        "biased": (
            {"favour_group": 1},
            held,
            {"fairness": FAIRNESS},
            ["fairness.demographicParity", "fairness.equalizedOdds"],
        ),
        # sleeps five times the budget
        "slow": ({"sleep_seconds": 0.1}, held, {"latency": {"p99": "20ms"}}, ["latency"]),
        "slow-ok": ({"sleep_seconds": 0.1}, held, {"latency": {"p99": "5s"}}, []),
        "crash": ({"crash_above": 50.0}, held, {"robustness": {}}, ["robustness.outOfRange"]),
        "renamed": ({"rename": {"a": "a_score"}}, renamed, {"signature": {}}, ["signature"]),
        "sound": ({}, held, SOUND, []),
    }
    models, holders, accuracy = {}, {}, {}
    for name, (odd, rows, checks, _) in cases.items():
        models[name] = unique(f"chk-{name}")
        holders[name] = register_holder(env.mlflow_uri, models[name], data)
        uri, accuracy[name] = log_candidate(env.mlflow_uri, data, **odd)
        env.apply(_job(name, models[name], uri, accuracy[name], rows, checks))
    # every candidate beats its holder on the metric: only the checks can stop it
    holder_accuracy = {
        n: float(env.mlflow.get_model_version(m, holders[n]).tags["metric.accuracy"])
        for n, m in models.items()
    }
    assert all(accuracy[n] > holder_accuracy[n] + 0.1 for n in cases), (accuracy, holder_accuracy)
    env.apply(make_model_deployment("sound", model={"name": models["sound"], "alias": "champion"}))

    for name, (_, _, _, failing) in cases.items():
        st = env.rtj.finished(name, timeout=300)["status"]
        promoted = env.rtj.cond(name, "Promoted")
        checks = {c["check"]: c for c in st["result"].get("checks", [])}
        assert [c for c, v in checks.items() if not v["passed"]] == failing, (name, checks)
        alias = env.mlflow.get_model_version_by_alias(models[name], "champion").version
        if failing:
            assert (promoted["status"], promoted["reason"]) == ("False", "ChecksFailed"), promoted
            assert all(f.split(".")[0] in promoted["message"] for f in failing), promoted
            assert alias == holders[name], (name, alias)
        else:
            assert (promoted["status"], promoted["reason"]) == ("True", "Better"), promoted
            assert alias == st["result"]["version"]
        print(f"{name}: {promoted['message']}")

    def check(name: str, which: str) -> dict[str, Any]:
        found = env.rtj.get(name)["status"]["result"]["checks"]
        return next(c for c in found if c["check"] == which)

    # the numbers behind each verdict are in status
    dpd = check("biased", "fairness.demographicParity")
    assert dpd["value"] > 0.1 and dpd["bound"] == 0.1, dpd
    assert "demographic parity difference" in dpd["message"], dpd
    assert check("biased", "fairness.equalizedOdds")["value"] > 0.2
    slow = check("slow", "latency")
    assert slow["value"] >= 5 * slow["bound"] and slow["bound"] == 20.0, slow
    assert check("slow-ok", "latency")["value"] < 5000.0
    crashed = check("crash", "robustness.outOfRange")
    assert crashed["value"] >= 1 and "RuntimeError" in crashed["message"], crashed
    assert check("crash", "robustness.missing")["passed"]  # nulls: refused, not a crash
    sig = check("renamed", "signature")["message"]
    assert "'a' removed" in sig and "'a_score'" in sig, sig
    assert {c["check"] for c in env.rtj.get("sound")["status"]["result"]["checks"]} == {
        "floor",
        "latency",
        "robustness.noise",
        "robustness.outOfRange",
        "robustness.missing",
        "slices",
        "fairness.demographicParity",
        "fairness.equalizedOdds",
        "signature",
    }

    # the report: a version tag, a file beside the model, metrics on the version's run
    import mlflow.artifacts

    new = env.rtj.get("sound")["status"]["result"]["version"]
    mv = env.mlflow.get_model_version(models["sound"], new)
    report = json.loads(mv.tags[TAG_CHECKS])
    assert report["latency"]["batchSize"] == 8 and report["rows"] == len(data.held_out)
    beside = mlflow.artifacts.load_text(f"models:/{models['sound']}/{new}/{CHECKS_REPORT_ARTIFACT}")
    assert json.loads(beside) == report
    assert mv.run_id, mv
    run = env.mlflow.get_run(mv.run_id)
    assert run.data.metrics["check.latency_p99_ms"] == report["latency"]["p99Ms"]

    # the ModelDeployment following the alias rolls forward, as after any promotion
    eventually(
        lambda: env.model_uri("sound") == f"models:/{models['sound']}/{new}",
        timeout=60,
        what="rolled out to the sound candidate",
    )


def test_checks_a_pipeline_cannot_measure_are_refused_before_any_run(env: Env) -> None:
    model = unique("nocheck")
    job = rtj("nocheck", model, pipeline="quick-train")
    job["spec"]["promotion"]["checks"] = {"latency": {"p99": "200ms"}}
    env.apply(job)
    env.rtj.finished("nocheck", timeout=60)
    s = env.rtj.cond("nocheck", "Succeeded")
    assert (s["status"], s["reason"]) == ("False", "InvalidParameters"), s
    assert "no check step" in s["message"] and "latency" in s["message"], s
    assert "unknown parameter" not in s["message"], s  # said once, in the spec's words
    assert env.rtj.cond("nocheck", "Stalled")["status"] == "True"
    assert not env.versions(model)


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ({"latency": {"batchSize": 4}}, "promotion.checks.latency needs p99"),
        ({"latency": {"p99": "fast"}}, "spec.promotion.checks.latency.p99"),
        ({"latency": {"p99": "1s", "batchSize": 0}}, "spec.promotion.checks.latency.batchSize"),
        ({"robustness": {"noise": 0}}, "spec.promotion.checks.robustness.noise"),
        ({"slices": {"columns": [], "maxGap": 0.1}}, "spec.promotion.checks.slices.columns"),
        (
            {"slices": {"columns": [{"name": "a", "bins": [3, 1]}], "maxGap": 0.1}},
            "slices.columns[].bins must increase",
        ),
        ({"slices": {"columns": [{"name": "a"}]}}, "spec.promotion.checks.slices.maxGap"),
        ({"fairness": {"sensitiveColumn": "g"}}, "fairness needs maxDemographicParityDifference"),
        (
            {"fairness": {"sensitiveColumn": "g", "maxEqualizedOddsDifference": 2}},
            "spec.promotion.checks.fairness.maxEqualizedOddsDifference",
        ),
    ],
)
def test_invalid_check_specs_are_refused_by_the_api_server(
    env: Env, checks: dict[str, Any], message: str
) -> None:
    body = rtj("bad", unique("bad"))
    body["spec"]["promotion"]["checks"] = checks
    with pytest.raises(ApiException) as e:
        env.custom.create_namespaced_custom_object(GROUP, VERSION, env.ns, "retrainjobs", body)
    assert e.value.status == 422
    assert message in json.loads(e.value.body)["message"]


def test_a_template_latency_check_without_a_budget_needs_the_slo(env: Env) -> None:
    template = rtj("t", unique("tmpl"))["spec"]
    template["promotion"]["checks"] = {"latency": {"batchSize": 1}}
    body = make_model_deployment(
        "tmpl",
        env.ns,
        model={"name": "m", "alias": "champion"},
        retraining={"schedule": "0 3 * * *", "template": template},
    )
    with pytest.raises(ApiException) as e:
        env.custom.create_namespaced_custom_object(GROUP, VERSION, env.ns, "modeldeployments", body)
    assert e.value.status == 422
    assert "latency needs p99, or spec.slo" in json.loads(e.value.body)["message"]
