"""The rules of docs/architecture.md that no linter checks for us."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "mlops_operator"
MAX_LINES = 400


def test_no_module_of_the_package_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, "split them by what they hold (docs/architecture.md)"


def imported_modules(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_no_test_module_imports_another() -> None:
    # what tests share lives in tests/support/ (the test kit), never in a test module
    offenders = {
        str(p.relative_to(ROOT)): sorted(
            m for m in imported_modules(p) if m.startswith(("tests.unit", "tests.integration"))
        )
        for p in (ROOT / "tests").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_handlers_only_forward_to_the_memo() -> None:
    # every kopf handler is one statement: a call on the memo (wiring.Memo), awaited or not
    for path in (PACKAGE / "handlers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
                body = [n for n in node.body if not isinstance(n, ast.Expr) or n is node.body[-1]]
                assert len(body) == 1, f"{path.name}:{node.name} does more than forward"
                call = body[0]
                assert isinstance(call, ast.Expr), f"{path.name}:{node.name}"
                value = call.value.value if isinstance(call.value, ast.Await) else call.value
                assert isinstance(value, ast.Call), f"{path.name}:{node.name}"
                func = value.func
                assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                assert func.value.id == "memo", f"{path.name}:{node.name}"


def test_the_self_checks_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "t.py"
    sample.write_text("from tests.integration.test_x import y\nimport tests.unit.z\n")
    assert imported_modules(sample) == {"tests.integration.test_x", "tests.unit.z"}
