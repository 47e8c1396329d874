from __future__ import annotations

from pathlib import Path

import pytest

from mlops_operator.cli import main
from mlops_operator.settings import Settings, SettingsError, documented_variables

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    s = Settings.from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000/"})
    assert s.mlflow_tracking_uri == "http://mlflow:5000"
    assert s.pod_mlflow_uri == "http://mlflow:5000"
    assert s.resync_seconds == 30
    assert s.api_timeout_seconds == 30
    assert s.pipeline_backend == "local"
    assert s.namespaces == ()


def test_parses_values() -> None:
    s = Settings.from_env(
        {
            "MLFLOW_TRACKING_URI": "http://a:5000",
            "MLOPS_RUNTIME_MLFLOW_URI": "http://mlflow.ml.svc:5000",
            "MLOPS_RESYNC_SECONDS": "2.5",
            "MLOPS_PIPELINE_BACKEND": "kfp",
            "MLOPS_NAMESPACES": "ml, team-b",
            "MLOPS_LOCAL_CONCURRENCY": "4",
            "MLOPS_API_TIMEOUT_SECONDS": "4",
            "MLOPS_MAX_CONCURRENT_RECONCILES": "3",
        }
    )
    assert s.api_timeout_seconds == 4
    assert s.max_concurrent_reconciles == 3
    assert s.pod_mlflow_uri == "http://mlflow.ml.svc:5000"
    assert (s.resync_seconds, s.pipeline_backend, s.namespaces, s.local_concurrency) == (
        2.5,
        "kfp",
        ("ml", "team-b"),
        4,
    )


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MLOPS_RESYNC_SECONDS": "soon"}, "MLOPS_RESYNC_SECONDS='soon' is invalid"),
        ({"MLOPS_RESYNC_SECONDS": "0"}, "between 1 and 86400"),
        ({"MLOPS_PIPELINE_BACKEND": "airflow"}, "expected `local` or `kfp`"),
        ({"MLFLOW_TRACKING_URI": "mlflow:5000"}, "expected an http(s):// URL"),
        ({"MLFLOW_TRACKING_URI": ""}, "needs an MLflow tracking server"),
        ({"MLOPS_KFP_HOST": "ftp://x"}, "MLOPS_KFP_HOST"),
        ({"MLOPS_NAMESPACES": "Bad_NS"}, "not a namespace name"),
        ({"MLOPS_LOCAL_CONCURRENCY": "0"}, "between 1 and 64"),
        ({"MLOPS_MAX_CONCURRENT_RECONCILES": "0"}, "between 1 and 1000"),
        ({"MLOPS_MAX_CONCURRENT_RECONCILES": "many"}, "expected an integer"),
        ({"MLOPS_API_TIMEOUT_SECONDS": "0.5"}, "between 1 and 600"),
        ({"MLOPS_API_TIMEOUT_SECONDS": "never"}, "MLOPS_API_TIMEOUT_SECONDS='never' is invalid"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError) as e:
        Settings.from_env(env)
    assert words in str(e.value)


def test_cli_refuses_bad_settings_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_RESYNC_SECONDS", "-1")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlops-operator: MLOPS_RESYNC_SECONDS='-1' is invalid")
    assert "Traceback" not in err


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "settings.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line for line in doc.splitlines() if line.startswith("| `")
    }
    for name, (default, _) in documented_variables().items():
        assert name in rows, f"{name} missing from docs/settings.md"
        assert (f"`{default}`" if default else "(empty)") in rows[name], f"{name}: default"


def test_the_docs_table_is_generated_from_the_model() -> None:
    from mlops_operator import settings

    assert settings.main([str(ROOT / "docs" / "settings.md"), "--check"]) == 0, "make docs"
    doc = (ROOT / "docs" / "settings.md").read_text()
    stale = doc.replace("| `MLOPS_WORK_DIR` |", "| `MLOPS_WORKDIR` |")
    assert settings.render_docs(stale) == doc


def test_a_mapping_is_the_whole_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # from_env(mapping) sees only the mapping; from_env() reads the process (pydantic-settings)
    monkeypatch.setenv("MLOPS_KFP_HOST", "http://kfp.example:8888")
    assert Settings.from_env({}).kfp_host == ""
    assert Settings.from_env().kfp_host == "http://kfp.example:8888"
    monkeypatch.setenv("MLOPS_NAMESPACES", "team-a, team-b")
    assert Settings.from_env().namespaces == ("team-a", "team-b")


def test_the_webhook_receiver_needs_its_certificate_key_and_secret(tmp_path: Path) -> None:
    crt, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    crt.write_text("cert"), key.write_text("key")
    full = {
        "MLOPS_WEBHOOK_PORT": "8443",
        "MLOPS_WEBHOOK_CERT_FILE": str(crt),
        "MLOPS_WEBHOOK_KEY_FILE": str(key),
        "MLOPS_WEBHOOK_SECRET": "s",
        "MLOPS_WEBHOOK_TOLERANCE_SECONDS": "60",
    }
    s = Settings.from_env(full)
    assert (s.webhook_port, s.webhook_secret, s.webhook_tolerance_seconds) == (8443, "s", 60)
    assert Settings.from_env({}).webhook_port == 0, "off unless asked for"
    for missing in ("MLOPS_WEBHOOK_CERT_FILE", "MLOPS_WEBHOOK_KEY_FILE", "MLOPS_WEBHOOK_SECRET"):
        with pytest.raises(SettingsError, match=f"{missing} is required"):
            Settings.from_env({k: v for k, v in full.items() if k != missing})
    with pytest.raises(SettingsError, match="no such file"):
        Settings.from_env({**full, "MLOPS_WEBHOOK_CERT_FILE": str(tmp_path / "absent.crt")})
    with pytest.raises(SettingsError, match="must differ"):
        Settings.from_env({**full, "MLOPS_METRICS_PORT": "8443"})
    with pytest.raises(SettingsError, match="between 1 and 600"):
        Settings.from_env({**full, "MLOPS_WEBHOOK_TOLERANCE_SECONDS": "0"})


def test_the_cli_never_prints_the_webhook_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", "do-not-print-me")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "do-not-print-me" not in out
    assert "MLOPS_WEBHOOK_SECRET=<set>" in out
