"""A real DVC project in a temporary git repository, with a local DVC remote, for the tests of
data_uri dvc://... (DVC's own CLI from the project's venv; git from the machine).

DVC is told not to report usage (its CLI would try a server off the machine) and to keep its
site cache under the test's directory, so a test leaves nothing behind in /var/tmp."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DVC = str(Path(sys.executable).parent / "dvc")


def dvc_env(site_cache: Path) -> dict[str, str]:
    return {
        "DVC_NO_ANALYTICS": "1",
        "DO_NOT_TRACK": "1",
        "DVC_SITE_CACHE_DIR": str(site_cache),
    }


@dataclass(frozen=True)
class DvcRepo:
    root: Path
    remote: Path
    env: dict[str, str]

    def _run(self, *args: str) -> str:
        out = subprocess.run(
            args,
            cwd=self.root,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def git(self, *args: str) -> str:
        return self._run("git", "-c", "user.name=test", "-c", "user.email=test@localhost", *args)

    def dvc(self, *args: str) -> str:
        return self._run(DVC, *args)

    def commit_file(self, rel: str, data: bytes, message: str, tag: str | None = None) -> str:
        """Track `data` at `rel` with DVC, push it to the remote, commit; -> the commit."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.dvc("add", "-q", rel)
        self.dvc("push", "-q")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        if tag:
            self.git("tag", tag)
        return self.git("rev-parse", "HEAD")

    def drop_cache(self) -> None:
        """Forget the local copies: a read must fetch from the remote."""
        shutil.rmtree(self.root / ".dvc" / "cache", ignore_errors=True)


def make_repo(where: Path, env: dict[str, str]) -> DvcRepo:
    root, remote = where / "repo", where / "remote"
    root.mkdir(parents=True)
    remote.mkdir()
    repo = DvcRepo(root, remote, env)
    repo.git("init", "-q", "-b", "main")
    repo.dvc("init", "-q")
    repo.dvc("remote", "add", "-d", "local", str(remote))
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "dvc init")
    return repo
