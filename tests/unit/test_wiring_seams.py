"""The crash-point seam around the Kube client (wiring.CrashAfterWrites): it counts writes,
not reads, and production never gets it."""

from __future__ import annotations

import asyncio

from mlops_operator import seams
from mlops_operator.wiring import CrashAfterWrites
from tests.support.fakes import FakeKube
from tests.support.objects import make_model_deployment


def test_each_write_passes_its_crash_point_and_reads_pass_none() -> None:
    seen: list[str] = []
    kube = CrashAfterWrites(FakeKube(), seen.append)
    body = make_model_deployment("a", "ml")

    async def scenario() -> None:
        await kube.apply(body)
        await kube.get(body["apiVersion"], body["kind"], "ml", "a")
        await kube.list(body["apiVersion"], body["kind"], "ml")
        await kube.patch_merge(
            body["apiVersion"], body["kind"], "ml", "a", {"spec": {"replicas": 2}}
        )
        await kube.delete(body["apiVersion"], body["kind"], "ml", "a")

    asyncio.run(scenario())
    assert seen == [seams.AFTER_WRITE.format(n=n) for n in (1, 2, 3)]


def test_production_has_no_crash_point() -> None:
    assert seams.PRODUCTION.crash_point is seams.no_crash
