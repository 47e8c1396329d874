"""What a RetrainJob's name becomes in the backends (run names, run directories): bounded,
and never at the cost of the uid that makes it unique. Pure, but for one mkdir in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_operator.clients.pipelines import NAME_MAX, RUN_NAME_MAX, JobId, LocalBackend

UID = "0d5c3b7e-8a1f-4c52-9d7e-3f6a2b1c0e94"
LONGEST = "a" * 253  # a valid Kubernetes name (DNS subdomain)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("ml", "fraud"), ("n" * 63, LONGEST), ("ml", "x" * 218), ("ml", "x" * 219)],
)
def test_names_are_bounded_and_keep_the_uid(namespace: str, name: str) -> None:
    job = JobId(namespace, name, UID)
    assert len(job.run_name) <= RUN_NAME_MAX and job.run_name.endswith("-" + UID)
    assert len(job.dir_name.encode()) <= NAME_MAX and job.dir_name.endswith("-" + UID)
    assert job.run_name.startswith(f"rtj-{namespace}-")
    assert job.dir_name.startswith(name[:100])


def test_short_names_are_as_before() -> None:
    # a run started before the bound must still be found (by name on KFP, by directory here)
    job = JobId("ml", "fraud", UID)
    assert job.run_name == f"rtj-ml-fraud-{UID}"
    assert job.dir_name == f"fraud-{UID}"


def test_two_long_names_with_one_prefix_stay_apart() -> None:
    a, b = JobId("n" * 63, LONGEST, UID), JobId("n" * 63, LONGEST, UID.replace("0", "1"))
    assert a.run_name != b.run_name and a.dir_name != b.dir_name


def test_the_longest_name_gets_a_run_directory(tmp_path: Path) -> None:
    # the finding: [Errno 36] File name too long, before any status was written
    d = LocalBackend(tmp_path, 1).run_dir(JobId("n" * 63, LONGEST, UID))
    d.mkdir(parents=True)
    assert d.is_dir()
