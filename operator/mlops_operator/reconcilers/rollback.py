"""The registry side of a canary rollback: the failed version tagged with why, and the alias
moved back to the stable version when that is wanted and it still points at the failed one;
and how the RetrainJob that promoted the version learns of it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.api.rollout import RolloutStatus
from mlops_operator.clients.registry import Registry, RegistryError
from mlops_operator.contract import TAG_RETRAINJOB, TAG_ROLLED_BACK, Owner, parse_time

log = logging.getLogger(__name__)


def revert_due(rec: RolloutStatus) -> bool:
    return rec.phase == "RolledBack" and rec.alias_reverted is None and not rec.superseded


def _revert_wanted(spec: ModelDeploymentSpec) -> bool | None:
    """spec.rollout.onFailure.revertAlias; None: decide by who registered the version."""
    ro = spec.rollout
    return ro.on_failure.revert_alias if ro and ro.on_failure else None


def registry_work(
    owner: Owner, spec: ModelDeploymentSpec, rec: RolloutStatus, registry: Registry
) -> Callable[[], Awaitable[RolloutStatus]]:
    """Tag the failed version with why, and move the alias back to the stable version if it
    is wanted and the alias still points at the failed one (of several ModelDeployments that
    follow one alias, the first to fail reverts it; the others then roll back as on any move)."""

    async def run() -> RolloutStatus:
        name, alias = spec.model.name, spec.model.alias
        why = f"{owner.namespace}/{owner.name}: {rec.message}"
        try:
            await registry.set_version_tag(name, rec.version, TAG_ROLLED_BACK, why[:5000])
            revert = _revert_wanted(spec)
            if revert is None:  # a RetrainJob's promotion is the operator's own to undo
                revert = TAG_RETRAINJOB in (await registry.version_info(name, rec.version)).tags
            if not revert or not alias:
                return rec.model_copy(update={"alias_reverted": False})
            if await registry.alias_holder(name, alias) != rec.version:
                return rec.model_copy(update={"alias_reverted": False})
            await registry.set_alias(name, alias, rec.stable_version)
        except RegistryError as e:  # alias_reverted stays unset: the next pass tries again
            log.warning("%s: rollback of version %s in the registry: %s", why, rec.version, e)
            return rec
        return rec.model_copy(update={"alias_reverted": True})

    return run


ROLLBACK_WATCH = dt.timedelta(days=1)  # how long after promoting a job looks for a rollback


async def rolled_back(
    registry: Registry, model: str, status: dict[str, Any], now: dt.datetime
) -> tuple[str, str] | None:
    """(version, why) when the version a RetrainJob promoted (its `status`) was rolled back
    by a canary: the mlops.dev/rolled-back tag the ModelDeployment wrote on it. Looked for on
    resyncs for a day after the promotion; None until then, or once recorded."""
    result = status.get("result") or {}
    if not result.get("promoted") or not result.get("version") or result.get("rolledBack"):
        return None
    conds = status.get("conditions") or []
    done: dict[str, Any] = next((c for c in conds if c.get("type") == "Succeeded"), {})
    since = parse_time(done.get("lastTransitionTime"))
    if since is None or now - since > ROLLBACK_WATCH:
        return None
    try:
        info = await registry.version_info(model, str(result["version"]))
    except RegistryError:
        return None  # the next resync asks again
    why = info.tags.get(TAG_ROLLED_BACK)
    return (info.version, why) if why else None
