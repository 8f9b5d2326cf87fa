"""Every runbook's way of rolling back, behind one interface (see `base.py`).

`resolve` picks the strategy a request means from its flags and the service's
catalog entry; `get` returns the object that plans and applies it. The plain
one-Deployment undo ("undo") is the engine itself (`bot.engine`); the others
live here.
"""

from __future__ import annotations

from bot.config import RollbotConfig
from bot.strategies.base import (
    Context,
    HelmSettings,
    Plan,
    Progress,
    Request,
    Strategy,
    StrategyError,
)
from bot.strategies.bluegreen import BlueGreenStrategy
from bot.strategies.components import ComponentsFailed, ComponentsStrategy
from bot.strategies.helm import HelmStrategy
from bot.strategies.operations import (
    DivertStrategy,
    FlagStrategy,
    RestoreStrategy,
    ScaleStrategy,
)

__all__ = [
    "ComponentsFailed",
    "Context",
    "HelmSettings",
    "Plan",
    "Progress",
    "Request",
    "Strategy",
    "StrategyError",
    "get",
    "resolve",
]

#: Strategies a person asks for by flag; the others come from the catalog.
OPERATIONS = ("restore", "flag", "scale", "divert")
_ALL: dict[str, Strategy] = {
    s.name: s
    for s in (
        ComponentsStrategy(),
        HelmStrategy(),
        BlueGreenStrategy(),
        RestoreStrategy(),
        FlagStrategy(),
        ScaleStrategy(),
        DivertStrategy(),
    )
}
NAMES = ("undo", *_ALL)


def resolve(config: RollbotConfig, service: str, asked: str = "") -> str:
    """The strategy of a request: an operation asked for by flag, `--strategy`,
    or the catalog's; a service of several Deployments rolls back as components."""
    entry = config.services.get(service)
    if asked in OPERATIONS:
        return asked
    chosen = asked or (entry.strategy if entry else "undo")
    if chosen not in NAMES:
        raise StrategyError(f"unknown strategy {chosen!r}: use one of undo, helm, blue-green")
    if chosen == "undo" and entry is not None and entry.deployments:
        return "components"
    return chosen


def get(name: str) -> Strategy:
    try:
        return _ALL[name]
    except KeyError:
        raise StrategyError(f"no strategy named {name!r}") from None
