"""Whatever a person types, rollbot answers: a valid request, or InvalidInput with
a one-line message that says what is wrong — never another exception.

Hypothesis profiles: "ci" (the default) is derandomized, so CI runs the same
examples every time; `HYPOTHESIS_PROFILE=long` (for `make faults`) runs many
more (5,000 examples a test), randomly.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.commands import CommandError, parse_command
from bot.config import RollbotConfig
from bot.durations import MAX_SECONDS, parse_duration
from bot.errors import InvalidInput
from bot.requests import RollbackRequest
from handlers.actions.decision import _clicked

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=300,
    deadline=None,  # two shared cores: time is not what these tests judge
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=5_000,  # within pytest-timeout: about a minute a test on a loaded machine
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

CONFIG = RollbotConfig.model_validate(
    {
        "services": {
            "family-assistant": {"namespace": "homelab", "deployment": "fa-api"},
            "todo-app": {"strategy": "helm"},
            "jarvis-api": {
                "strategy": "blue-green",
                "blue_green": {"label": "color", "colours": {"blue": "j-blue", "green": "j-green"}},
            },
            "eli-maor": {"deployments": ["backend", "worker"]},
            "eli-canary": {"strategy": "argo-rollouts", "rollout": "eli-maor-backend"},
        }
    }
)
KEYWORDS = ("help", "status", "cancel", "history")
FLAGS = (
    "-n",
    "--namespace",
    "--to-revision",
    "--to-tag",
    "--container",
    "--reason",
    "--strategy",
    "--restore",
    "--config",
    "--flag",
    "--scale",
    "--traffic",
    "--dry-run",
    "--emergency",
    "--permanent",
    "--force",
    "-",
    "--",
    "-x",
    "—to-revision",
    "–n",
    "—scale",
)
#: Values people type, mistype, or paste: the interesting edges first.
TRICKY_VALUES = (
    "0",
    "3",
    "1000",
    "1001",
    "²",
    "٣",
    "𝟙",
    "-1",
    "+3",
    "3.0",
    "9" * 40,
    "latest",
    "rb-0123abcd",
    "rb-0123ABCD",
    "on",
    "off",
    "FEATURE_X=1",
    "1X=0",
    "=",
    "helm",
    "undo",
    "blue-green",
    "canary",
    "web",
    "Web",
    "web\n",
    "web.api",
    "a" * 254,
    "",
    "v1.2.3",
    "app",
    "\u202eevil",
    "\x00",
    "\\",
)
names = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?", fullmatch=True)
values = st.one_of(st.sampled_from(TRICKY_VALUES), names, st.text(max_size=30))


@st.composite
def command_texts(draw: st.DrawFn) -> str:
    """Words and flags in any order, quoted in every way people (and phones) quote."""
    words = draw(
        st.lists(
            st.one_of(st.sampled_from(FLAGS), st.sampled_from(KEYWORDS), values, names),
            max_size=12,
        )
    )
    rendered = []
    for word in words:
        style = draw(st.sampled_from(("bare", "shell", "double", "curly", "unbalanced", "equals")))
        if style == "shell":
            rendered.append(shlex.quote(word))
        elif style == "double":
            rendered.append(f'"{word}"')
        elif style == "curly":
            rendered.append(f"“{word}”")
        elif style == "unbalanced":
            rendered.append(f"'{word}")
        elif style == "equals":
            rendered.append(f"{draw(st.sampled_from(FLAGS))}={word}")
        else:
            rendered.append(word)
    separator = draw(st.sampled_from((" ", "  ", "\t", "\n", "\u00a0", " \u3000 ")))
    return separator.join(rendered)


#: Per flag: values that are mostly right, and the tricky ones.
FLAG_VALUES = {
    "-n": st.one_of(names, st.sampled_from(("prod", "homelab", "Prod", "prod\n"))),
    "--to-revision": st.one_of(st.integers(0, 50).map(str), st.sampled_from(TRICKY_VALUES)),
    "--to-tag": st.one_of(st.from_regex(r"v[0-9]\.[0-9]{1,2}(-rc[0-9])?", fullmatch=True), values),
    "--container": st.one_of(names, values),
    "--reason": st.text(max_size=80),
    "--strategy": st.sampled_from(("undo", "helm", "blue-green", "canary", "")),
    "--restore": st.one_of(st.from_regex(r"rb-[0-9a-f]{8}", fullmatch=True), values),
    "--config": st.sampled_from(("latest", "rb-0123abcd", "yesterday")),
    "--flag": st.one_of(st.from_regex(r"[A-Z_]{1,12}=[a-z0-9]{0,5}", fullmatch=True), values),
    "--scale": st.one_of(st.integers(0, 1200).map(str), st.sampled_from(TRICKY_VALUES)),
    "--traffic": st.sampled_from(("on", "off", "OFF", "maybe")),
    "--dry-run": st.none(),
    "--emergency": st.none(),
    "--permanent": st.none(),
}


@st.composite
def flag_commands(draw: st.DrawFn) -> str:
    """A service and a few flags with values that mostly fit, in any order: the
    texts that reach the rules between flags."""
    head = draw(st.sampled_from(("", "", "", "history ")))
    service = draw(st.one_of(st.sampled_from(sorted(CONFIG.services)), names))
    chosen = draw(st.lists(st.sampled_from(sorted(FLAG_VALUES)), max_size=4, unique=True))
    groups = [shlex.quote(service)]
    for flag in chosen:
        value = draw(FLAG_VALUES[flag])
        if value is None:
            groups.append(flag)
        elif flag.startswith("--") and draw(st.booleans()):
            groups.append(shlex.quote(f"{flag}={value}"))
        else:
            groups.append(f"{flag} {shlex.quote(value)}")
    return head + " ".join(draw(st.permutations(groups)))


huge_texts = st.builds(
    lambda chunk, times: chunk * times, st.text(min_size=1, max_size=8), st.integers(100, 2000)
)


def problem_of(err: InvalidInput) -> str:
    return err.problem if isinstance(err, CommandError) else str(err)


def assert_clear(err: InvalidInput) -> None:
    """One printable line, short enough to read in an ephemeral message."""
    problem = problem_of(err)
    assert problem.strip(), "an empty message"
    assert problem.isprintable(), f"unprintable message: {problem!r}"
    assert len(problem) <= 400, f"a {len(problem)}-character message"


def assert_valid_or_refused(make: Any) -> RollbackRequest | None:
    try:
        request = make()
    except InvalidInput as err:
        assert_clear(err)
        return None
    assert type(request) is RollbackRequest
    # Still valid by its own checks (every field and every rule between fields).
    assert dataclasses.replace(request) == request
    if request.action in ("rollback", "history"):
        assert all(isinstance(v, str) for v in request.options.values())
        try:
            request.resolved(CONFIG)
        except InvalidInput as err:
            assert_clear(err)
    return request


@given(st.one_of(flag_commands(), command_texts(), st.text(max_size=200), huge_texts))
@example("web --scale ²")
@example("web\n")
@example("web --to-revision " + "9" * 3990)
@example("web --reason “500s on /chat”")
@example("—to-revision 3 web")
def test_any_command_text_gives_a_valid_request_or_a_clear_refusal(text: str) -> None:
    assert_valid_or_refused(lambda: parse_command(text, "default", CONFIG.catalog))


cli_text = st.text(st.characters(exclude_categories=()), max_size=40)  # argv may hold surrogates
cli_values = st.one_of(st.sampled_from(TRICKY_VALUES), cli_text)


@given(
    st.sampled_from(("rollback", "history")),
    st.one_of(names, cli_values),
    st.fixed_dictionaries(
        {},
        optional={
            "namespace": cli_values,
            "to_revision": st.one_of(cli_values, st.integers()),
            "to_tag": cli_values,
            "container": cli_values,
            "force": st.booleans(),
            "strategy": cli_values,
            "restore_from": cli_values,
            "config_from": cli_values,
            "flag": cli_values,
            "scale": st.one_of(cli_values, st.integers()),
            "traffic": cli_values,
            "dry_run": st.booleans(),
            "permanent": st.booleans(),
            "reason": cli_values,
        },
    ),
)
def test_any_cli_values_give_a_valid_request_or_a_clear_refusal(
    command: Any, deployment: str, flags: dict[str, Any]
) -> None:
    assert_valid_or_refused(
        lambda: RollbackRequest.from_cli(
            command, deployment, default_namespace="default", catalog=CONFIG.catalog, **flags
        )
    )


# Slack and the CLI share these flags; a value is anything without the curly quotes
# that Slack reads as quotes (the CLI takes them literally).
SHARED = ("namespace", "to_revision", "to_tag", "container", "strategy", "flag", "scale")
shared_values = st.one_of(st.sampled_from(TRICKY_VALUES), st.text(max_size=20)).filter(
    lambda v: "“" not in v and "”" not in v and "„" not in v
)
services = st.one_of(names, st.sampled_from(sorted(CONFIG.services)), shared_values).filter(
    lambda s: s not in KEYWORDS and not s.startswith(("-", "—", "–"))
)


@given(
    services,
    st.dictionaries(st.sampled_from(SHARED), shared_values, max_size=4),
    st.sampled_from((None, "off", "on", "maybe")),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), shared_values),
)
def test_slack_and_the_cli_agree_on_any_flags(
    service: str,
    flags: dict[str, str],
    traffic: str | None,
    dry_run: bool,
    permanent: bool,
    reason: str | None,
) -> None:
    given_flags: dict[str, Any] = dict(flags)
    if traffic is not None:
        given_flags["traffic"] = traffic
    if reason is not None:
        given_flags["reason"] = reason
    words = [service]
    for name, value in given_flags.items():
        words += ["-n" if name == "namespace" else "--" + name.replace("_", "-"), value]
    if dry_run:
        words.append("--dry-run")
    if permanent:
        words.append("--permanent")

    def from_slack() -> RollbackRequest:
        return parse_command(shlex.join(words), "default", CONFIG.catalog)

    def from_cli() -> RollbackRequest:
        return RollbackRequest.from_cli(
            "rollback",
            service,
            default_namespace="default",
            catalog=CONFIG.catalog,
            dry_run=dry_run,
            permanent=permanent,
            **given_flags,
        )

    try:
        slack_request: RollbackRequest | str = from_slack()
    except InvalidInput as err:
        slack_request = problem_of(err)
    try:
        cli_request: RollbackRequest | str = from_cli()
    except InvalidInput as err:
        cli_request = problem_of(err)
    assert slack_request == cli_request


# A button click as Slack sends it (block_actions): any record id and user id in it.
clicks = st.fixed_dictionaries(
    {
        "type": st.just("block_actions"),
        "user": st.fixed_dictionaries(
            {"id": st.text(max_size=20)}, optional={"name": st.text(), "team_id": st.text()}
        ),
        "actions": st.lists(
            st.fixed_dictionaries(
                {"action_id": st.text(max_size=20), "value": st.text(max_size=100)},
                optional={"block_id": st.text(), "type": st.just("button")},
            ),
            min_size=1,
            max_size=3,
        ),
    },
    optional={"channel": st.fixed_dictionaries({"id": st.text()}), "trigger_id": st.text()},
)


@given(clicks)
def test_a_click_reads_its_record_id_and_user_from_any_block_actions_payload(
    body: dict[str, Any],
) -> None:
    assert _clicked(body) == (body["actions"][0]["value"], body["user"]["id"])


durations = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"([0-9]{1,30}(\.[0-9]{1,5})?(h|m|s|ms)?){1,3}", fullmatch=True),
)


@given(durations)
@example("9" * 400)
def test_any_timeout_text_is_a_duration_of_at_most_a_week_or_a_clear_refusal(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except InvalidInput as err:
        assert_clear(err)
        return
    assert 0 < seconds <= MAX_SECONDS
