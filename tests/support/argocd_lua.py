"""Runs the chart's Argo CD health checks (Lua) as Argo CD does, with lupa.

Argo CD runs health scripts in gopher-lua (Lua 5.1) with only the base, table, string and
math libraries, the resource as the global `obj`, and reads `status` and `message` from the
table the script returns. lupa's Lua 5.1 runtime with the other libraries removed is the
closest real interpreter available here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "charts" / "mlops-operator" / "files" / "argocd"
SCRIPTS = {
    "ModelDeployment": ARGOCD / "modeldeployment-health.lua",
    "RetrainJob": ARGOCD / "retrainjob-health.lua",
}
HEALTH = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def health(obj: dict[str, Any], kind: str | None = None) -> tuple[str, str]:
    """(status, message) that Argo CD would show for obj."""
    from lupa.lua51 import LuaRuntime

    script = SCRIPTS[kind or obj["kind"]].read_text()
    lua = LuaRuntime(register_eval=False, register_builtins=False)
    g = lua.globals()
    for name in ("os", "io", "debug", "package", "require", "dofile", "loadfile", "module"):
        g[name] = None
    g.obj = _to_lua(lua, obj)
    hs = lua.execute(script)
    status, message = hs["status"], hs["message"]
    assert status in HEALTH, f"not an Argo CD health status: {status!r}"
    return str(status), "" if message is None else str(message)
