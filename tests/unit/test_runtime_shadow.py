"""Shadow traffic in the runtime (runtime/shadow.py): the config file, the comparison of
answers, and the bounded queue. The copies over HTTP are in tests/integration/test_runtime.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from mlops_operator.runtime.metrics import ShadowMetrics
from mlops_operator.runtime.shadow import (
    POLL_SECONDS,
    Comparison,
    Mirror,
    Target,
    compare,
    parse_target,
    predictions_of,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", None),
        ('{"percent": 0, "target": "http://10.0.0.1:8080", "version": "4"}', None),
        (
            '{"percent": 10, "target": "http://10.0.0.1:8080/", "version": "4"}',
            Target("http://10.0.0.1:8080", 10.0, "4"),
        ),
    ],
)
def test_parse_target(text: str, want: Target | None) -> None:
    assert parse_target(text) == want


@pytest.mark.parametrize(
    "text",
    [
        "[1]",
        "{not json",
        '{"percent": 150, "target": "http://a:1", "version": "4"}',
        '{"percent": 5, "target": "ftp://a:1", "version": "4"}',
        '{"percent": 5, "target": "http://a:1"}',
    ],
)
def test_parse_target_refuses_what_it_cannot_use(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text)


@pytest.mark.parametrize(
    ("answer", "want"),
    [
        ({"predictions": [0, 2, 1]}, [0, 2, 1]),
        ({"predictions": [[0.1, 0.9], [0.8, 0.2]]}, [0.1, 0.9, 0.8, 0.2]),
        ({"predictions": [{"b": 2, "a": 1}]}, [1, 2]),  # multi-output: by key
        ({"outputs": [{"name": "p", "data": [1, 0]}, {"name": "q", "data": ["x"]}]}, [1, 0, "x"]),
        ([3, 4], [3, 4]),
    ],
)
def test_predictions_of_both_protocols(answer: object, want: list[object]) -> None:
    assert predictions_of(answer) == want


@pytest.mark.parametrize(
    ("stable", "candidate", "want"),
    [
        ([0, 1, 2, 1], [0, 1, 2, 1], Comparison(4, 4, 4, 0.0, 0.0)),
        ([0, 1, 2, 1], [0, 2, 2, 0], Comparison(4, 2, 4, 2.0, 2.0)),  # 1->2 and 1->0
        (["a", "b"], ["a", "c"], Comparison(2, 1, 0, 0.0, 0.0)),
        ([2.0, 4.0], [2.5, 4.0], Comparison(2, 1, 2, 0.5, 0.25)),
        ([0.0], [0.5], Comparison(1, 0, 1, 0.5, 1.0)),  # from zero: relative error 1
        ([1, 2, 3], [1], Comparison(3, 1, 1, 0.0, 0.0)),  # shorter: the missing ones disagree
        ([True], [1], Comparison(1, 1, 0, 0.0, 0.0)),  # bools are not numbers here
    ],
)
def test_compare(stable: list[object], candidate: list[object], want: Comparison) -> None:
    assert compare(stable, candidate) == want


def mirror(tmp_path: Path, **kw: object) -> tuple[Mirror, Path, CollectorRegistry]:
    registry = CollectorRegistry()
    path = tmp_path / "shadow.json"
    m = Mirror(str(path), "3", ShadowMetrics(registry, ("md", "ns", "3")), **kw)  # type: ignore[arg-type]
    return m, path, registry


def test_the_config_is_re_read_and_a_pod_never_copies_to_its_own_version(tmp_path: Path) -> None:
    m, path, registry = mirror(tmp_path)
    assert m.refresh(now=0) is None  # no file: off
    path.write_text(json.dumps({"target": "http://10.0.0.9:8080", "percent": 25, "version": "4"}))
    assert m.refresh(now=POLL_SECONDS / 2) is None  # not re-read before the poll interval
    assert m.refresh(now=POLL_SECONDS) == Target("http://10.0.0.9:8080", 25.0, "4")
    assert registry.get_sample_value("mlops_shadow_percent", _base()) == 25
    path.write_text(json.dumps({"target": "http://10.0.0.9:8080", "percent": 25, "version": "3"}))
    assert m.refresh(now=2 * POLL_SECONDS) is None  # the candidate's own pods: off
    path.write_text("{broken")
    assert m.refresh(now=3 * POLL_SECONDS) is None
    path.unlink()  # the ConfigMap was deleted
    assert m.refresh(now=4 * POLL_SECONDS) is None
    assert registry.get_sample_value("mlops_shadow_percent", _base()) == 0


def _base() -> dict[str, str]:
    return {"model_deployment": "md", "namespace": "ns", "model_version": "3"}


def test_a_full_queue_drops_copies_and_offer_never_waits(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, float | None]:
        m, path, registry = mirror(tmp_path, queue_size=2, workers=1, chance=lambda: 0.0)
        # nothing is sent: the workers are cancelled before they first run (and loopback
        # port 9 has no listener here)
        path.write_text(json.dumps({"target": "http://127.0.0.1:9", "percent": 1, "version": "4"}))
        for _ in range(5):
            m.offer("/invocations", "application/json", b"{}", b'{"predictions":[1]}')
        queued = m.queue.qsize()
        await m.close()
        labels = {**_base(), "shadow_version": "4", "outcome": "dropped"}
        return queued, registry.get_sample_value("mlops_shadow_requests_total", labels)

    queued, dropped = asyncio.run(scenario())
    assert queued == 2 and dropped == 3


def test_the_share_offered_follows_percent(tmp_path: Path) -> None:
    draws = iter([0.05, 0.2, 0.09, 0.5])
    m, path, _ = mirror(tmp_path, chance=lambda: next(draws))
    path.write_text(json.dumps({"target": "http://127.0.0.1:9", "percent": 10, "version": "4"}))

    async def scenario() -> int:
        for _ in range(4):
            m.offer("/invocations", "application/json", b"{}", b"{}")
        n = m.queue.qsize()
        await m.close()
        return n

    assert asyncio.run(scenario()) == 2  # the draws under 0.10
