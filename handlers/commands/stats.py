"""`/rollback stats [SERVICE] [--since 30d]`: the runbooks' figures, for the asker
alone (ephemeral), then the trend as a chart in the channel.

Only the rollbacks of namespaces where the asker may request one are counted:
stats show no more than status and history would.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import stats_output
from bot.commands import Command
from bot.policy import may_request
from bot.retention import outcomes_between
from bot.stats import Stats, compute, parse_window
from handlers.authorization import Caller
from handlers.mrkdwn import clip, mention, untrusted

log = logging.getLogger("rollbot.stats")
MAX_ANSWER = 3900


def figures(caller: Caller, command: Command) -> Stats:
    """The stats of the window, over the namespaces the caller may request in."""
    services = caller.services
    until = datetime.now(UTC)
    since = until - parse_window(command.since or "30d")
    allowed: dict[str, bool] = {}

    def visible(namespace: str) -> bool:
        if namespace not in allowed:
            allowed[namespace] = may_request(
                services.config, namespace, caller.user, services.groups_of
            )
        return allowed[namespace]

    outcomes = [o for o in outcomes_between(services.store, since, until) if visible(o.namespace)]
    return compute(
        outcomes,
        services.config.environment_of,
        since=since,
        until=until,
        service=command.workload or None,
    )


def answer(stats: Stats) -> str:
    """The table as a code block (every value escaped: service names are the user's)."""
    head, *table = stats_output.table_lines(stats)
    if not table:
        return untrusted(head)
    return clip(f"*{untrusted(head)}*\n```{untrusted(chr(10).join(table).strip())}```", MAX_ANSWER)


def post_chart(client: WebClient, caller: Caller, stats: Stats, command: Command) -> None:
    """The trend as a PNG in the channel (after the ack: drawing takes a moment);
    a chart Slack does not take is logged, the figures were answered already."""
    if not stats.total.rollbacks:
        return
    subject = command.service or "all services"
    try:
        client.files_upload_v2(
            channel=caller.channel,
            content=stats_output.chart_png(stats, f"Rollbacks of {subject}"),
            filename="rollback-stats.png",
            title=f"Rollbacks of {subject}, last {command.since or '30d'}",
            initial_comment=(
                f"Rollback trend of {untrusted(subject)} over {untrusted(command.since)}, "
                f"asked by {mention(caller.user)}"
            ),
        )
    except (SlackApiError, OSError) as err:
        log.warning("stats chart not posted in %s: %s", caller.channel, err)
