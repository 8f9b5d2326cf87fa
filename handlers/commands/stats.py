"""`/rollback stats [SERVICE] [--since 30d]`: the runbooks' figures, for the asker
alone (ephemeral), then the trend as a chart in their direct message with rollbot:
the chart shows what the figures do, so it goes to no one else either.

Only the rollbacks of namespaces where the asker may request one are counted:
stats show no more than status and history would.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import stats_output
from bot.commands import Command
from bot.policy import may_request
from bot.retention import outcomes_between
from bot.stats import Stats, compute, parse_window
from handlers.authorization import Caller
from handlers.mrkdwn import clip, untrusted
from handlers.unwelcome import chart_not_sent, respond, slack_error, slack_is_away

log = logging.getLogger("rollbot.stats")
MAX_ANSWER = 3900
CHART_FILE = "rollback-stats.png"


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
    chart = "\nThe trend follows as a chart in your direct messages with rollbot."
    table_text = f"*{untrusted(head)}*\n```{untrusted(chr(10).join(table).strip())}```"
    return clip(table_text, MAX_ANSWER - len(chart)) + (chart if stats.total.rollbacks else "")


def send_chart(
    client: WebClient, caller: Caller, stats: Stats, command: Command, response_url: str
) -> None:
    """The trend as a PNG in the asker's DM with rollbot (after the ack: drawing takes a
    moment). Files take a conversation id, hence conversations.open; a chart Slack
    does not take is said to the asker through the command's response_url."""
    if not stats.total.rollbacks:
        return
    subject = command.service or "all services"
    window = command.since or "30d"
    try:
        dm = str(client.conversations_open(users=caller.user)["channel"]["id"])
        client.files_upload_v2(
            channel=dm,
            content=stats_output.chart_png(stats, f"Rollbacks of {subject}"),
            filename=CHART_FILE,
            title=f"Rollbacks of {subject}, last {window}",
            initial_comment=f"Rollback trend of {untrusted(subject)} over {untrusted(window)}",
        )
    except (SlackClientError, OSError) as err:
        error = slack_error(err)
        needed = err.response.get("needed") if isinstance(err, SlackApiError) else None
        log.warning("stats chart not sent to %s: %s", caller.user, error or err)
        told = chart_not_sent(None if slack_is_away(err) else error, needed)
        if not response_url or not respond(response_url, f":warning: {untrusted(told)}"):
            log.warning("and %s could not be told: %s", caller.user, told)
