"""Every runbook's way of rolling back, behind one interface (see `base.py`).

`resolve` picks the strategy a request means from its flags and the service's
catalog entry; `get` returns the object that plans and applies it. One module
per strategy; a new one is a class with `name`, `plan` and `apply`, listed in
`_WHERE` below.
"""

from __future__ import annotations

import importlib

from bot.config import RollbotConfig
from bot.strategies.base import (
    Context,
    HelmSettings,
    OwnWorkload,
    Plan,
    Progress,
    Request,
    Strategy,
    StrategyError,
    StrategyKube,
    change_cause,
    record_fields,
    workloads_now,
)

__all__ = [
    "Context",
    "HelmSettings",
    "OwnWorkload",
    "Plan",
    "Progress",
    "Request",
    "Strategy",
    "StrategyError",
    "StrategyKube",
    "change_cause",
    "get",
    "record_fields",
    "resolve",
    "workloads_now",
]

#: Strategies a person asks for by flag; the others come from the catalog.
OPERATIONS = ("restore", "flag", "scale", "divert")
#: Each strategy's module and class, imported when it is first asked for: a
#: Deployment undo in a new process (`rollbot rollback --yes`) loads no other.
_WHERE: dict[str, tuple[str, str]] = {
    "undo": ("bot.strategies.undo", "UndoStrategy"),
    "components": ("bot.strategies.components", "ComponentsStrategy"),
    "helm": ("bot.strategies.helm", "HelmStrategy"),
    "blue-green": ("bot.strategies.bluegreen", "BlueGreenStrategy"),
    "argo-rollouts": ("bot.strategies.argo", "ArgoRolloutsStrategy"),
    "restore": ("bot.strategies.restore", "RestoreStrategy"),
    "flag": ("bot.strategies.flag", "FlagStrategy"),
    "scale": ("bot.strategies.scale", "ScaleStrategy"),
    "divert": ("bot.strategies.divert", "DivertStrategy"),
}
NAMES = tuple(_WHERE)
_LOADED: dict[str, Strategy] = {}


def resolve(config: RollbotConfig, service: str, asked: str = "") -> str:
    """The strategy of a request: an operation asked for by flag, `--strategy`,
    or the catalog's; a service of several Deployments rolls back as components."""
    entry = config.services.get(service)
    if asked in OPERATIONS:
        return asked
    chosen = asked or (entry.strategy if entry else "undo")
    if chosen not in NAMES:
        raise StrategyError(
            f"unknown strategy {chosen!r}: use one of undo, helm, blue-green, argo-rollouts"
        )
    if chosen == "undo" and entry is not None and entry.deployments:
        return "components"
    return chosen


def get(name: str) -> Strategy:
    if name not in _WHERE:
        raise StrategyError(f"no strategy named {name!r}")
    if name not in _LOADED:
        module, cls = _WHERE[name]
        made: Strategy = getattr(importlib.import_module(module), cls)()
        _LOADED[name] = made
    return _LOADED[name]
