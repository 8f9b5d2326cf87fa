"""Every runbook's way of rolling back, behind one interface (see `base.py`).

`resolve` picks the strategy a request means from its flags and the service's
catalog entry; `get` returns the object that plans and applies it. One module
per strategy; a new one is a class with `name`, `plan` and `apply`, listed in
`_ALL` below.
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
    StrategyKube,
    change_cause,
)
from bot.strategies.bluegreen import BlueGreenStrategy
from bot.strategies.components import ComponentsFailed, ComponentsStrategy
from bot.strategies.divert import DivertStrategy
from bot.strategies.flag import FlagStrategy
from bot.strategies.helm import HelmStrategy
from bot.strategies.restore import RestoreStrategy
from bot.strategies.scale import ScaleStrategy
from bot.strategies.undo import UndoStrategy

__all__ = [
    "ComponentsFailed",
    "Context",
    "HelmSettings",
    "Plan",
    "Progress",
    "Request",
    "Strategy",
    "StrategyError",
    "StrategyKube",
    "change_cause",
    "get",
    "resolve",
]

#: Strategies a person asks for by flag; the others come from the catalog.
OPERATIONS = ("restore", "flag", "scale", "divert")
_ALL: dict[str, Strategy] = {
    s.name: s
    for s in (
        UndoStrategy(),
        ComponentsStrategy(),
        HelmStrategy(),
        BlueGreenStrategy(),
        RestoreStrategy(),
        FlagStrategy(),
        ScaleStrategy(),
        DivertStrategy(),
    )
}
NAMES = tuple(_ALL)


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
