"""Redaction: credentials out of quoted text, everything else left as it was."""

from __future__ import annotations

import string
import time

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from bot.redaction import REDACTED, looks_secret_key, redact

# (text, what it must become): real-looking lines from pods, events and configs.
REDACTED_CASES = [
    (
        "slack: invalid_auth for xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
        f"slack: invalid_auth for {REDACTED}",
    ),
    ("user token xoxp-11-22-33-abcdef in env", f"user token {REDACTED} in env"),
    ("SLACK_APP_TOKEN=xapp-1-A0123-4567-abcdef", f"SLACK_APP_TOKEN={REDACTED}"),
    (
        "401 Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        f"401 Authorization: Bearer {REDACTED}",
    ),
    ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {REDACTED}"),
    ('headers={"authorization": "Bearer abc.def"}', f'headers={{"authorization": "{REDACTED}"}}'),
    ("retrying with bearer 0123456789abcdefABCDEF", f"retrying with bearer {REDACTED}"),
    (
        "curl -H 'Authorization: token ghp_abcdefghijklmnopqrstuvwxyz0123456789'",
        f"curl -H 'Authorization: token {REDACTED}'",
    ),
    (
        "connect postgres://app:s3cr3t@db.prod:5432/app failed",
        f"connect postgres://app:{REDACTED}@db.prod:5432/app failed",
    ),
    ("redis://:hunter2@redis:6379/0 refused", f"redis://:{REDACTED}@redis:6379/0 refused"),
    ("amqp://guest:p@ss@rabbit/", f"amqp://guest:{REDACTED}@rabbit/"),
    ("login password=hunter2 user=bob", f"login password={REDACTED} user=bob"),
    ("passwd='x y z' next", f"passwd='{REDACTED}' next"),
    (
        'config {"password": "hunter2", "user": "bob"}',
        f'config {{"password": "{REDACTED}", "user": "bob"}}',
    ),
    ("{'api_key': 'abc123'}", f"{{'api_key': '{REDACTED}'}}"),
    ('{"client_secret":"s\\"x"}', f'{{"client_secret":"{REDACTED}"}}'),
    ("DB_PASSWORD=correct-horse-battery", f"DB_PASSWORD={REDACTED}"),
    ("secret=abc; retry", f"secret={REDACTED}; retry"),
    ("secretKey=abc accessToken=def", f"secretKey={REDACTED} accessToken={REDACTED}"),
    (
        "GET /cb?code=1&access_token=abcDEF123&state=x",
        f"GET /cb?code=1&access_token={REDACTED}&state=x",
    ),
    ("blob?sv=2020&sig=AbC%2Fd", f"blob?sv=2020&sig={REDACTED}"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        f"aws_secret_access_key = {REDACTED}",
    ),
    ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", f"AWS_ACCESS_KEY_ID={REDACTED}"),
    ("using key AKIAIOSFODNN7EXAMPLE now", f"using key {REDACTED} now"),
    ("sts ASIAY34FZKBOKMUTVV7A expired", f"sts {REDACTED} expired"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nnext",
        f"{REDACTED}\nnext",
    ),
    ("key: -----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNz", f"key: {REDACTED}"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nx\n-----END PGP PRIVATE KEY BLOCK-----", REDACTED),
    ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop", f"pat {REDACTED}"),
    ("push gho_16C7e42F292c6912E7710c838347Ae178B4a failed", f"push {REDACTED} failed"),
    (
        "session eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4",
        f"session {REDACTED}",
    ),
    ("exec app --password hunter2 --user bob", f"exec app --password {REDACTED} --user bob"),
    ("--api-key=abc123", f"--api-key={REDACTED}"),
    ('args: ["--db-password", "pw1", "-v"]', f'args: ["--db-password", "{REDACTED}", "-v"]'),
    ("['--token', 'abc']", f"['--token', '{REDACTED}']"),
    ('run --password "hunter 2"', f'run --password "{REDACTED}"'),
    ("secret: s3cr3t-value", f"secret: {REDACTED}"),
    ("db_password: Tr0ub4dor&3", f"db_password: {REDACTED}"),
    ("api key 3f9a2b7c4d5e6f708192a3b4c5d6e7f8 rejected", f"api key {REDACTED} rejected"),
    ("webhook https://hooks.slack.com/services/T000/B000/XXXXXXXX", f"webhook {REDACTED}"),
]

# Lines that hold nothing secret and must come out unchanged.
UNCHANGED_CASES = [
    "image repo/app:v1.2.3@sha256:0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
    "ghcr.io/acme/token-service:v1.4.2",
    "rolled back to revision 3 (from 4)",
    "deployment.apps/web rolled back (revision 12)",
    "2024-01-17T14:30:00Z ERROR request failed: upstream 503 after 3 retries",
    "ERROR [worker-3] job 42 failed: KeyError('user_id')",
    "Back-off restarting failed container app in pod web-7d9f8b-xk2lp_prod(1f2e3d4c)",
    "user=bob authenticated=false tokens=512 author=alice secretName=db-creds",
    "token: expired",
    "password_file=/etc/secret/pw token_type=bearer",
    "Authorization failed for user bob",
    "GET https://api.example.com:8443/v1/items?page=2 200",
    "Readiness probe failed: HTTP probe failed with statuscode: 503",
    "pull ghcr.io/acme/web@sha256:4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c0b1c2d3e",
    '"token": null',
    "",
]


@pytest.mark.parametrize(("text", "expected"), REDACTED_CASES)
def test_credentials_in_real_looking_lines_are_replaced_by_the_marker(
    text: str, expected: str
) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", UNCHANGED_CASES)
def test_lines_without_credentials_come_out_unchanged(text: str) -> None:
    assert redact(text) == text


def test_secret_key_names_are_recognised_and_their_names_and_paths_are_not() -> None:
    assert all(map(looks_secret_key, ["DB_PASSWORD", "--api-key", "clientSecret", "TOKEN"]))
    assert not any(map(looks_secret_key, ["PASSWORD_FILE", "secretName", "tokens", "LOG_LEVEL"]))


# -- properties -----------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits
_TOKEN_CHARS = st.text(alphabet=_ALNUM, min_size=20, max_size=40)
#: Text around a secret: anything printable, on one line.
_AROUND = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)

_SELF_DESCRIBING = st.one_of(
    st.builds(lambda k, t: f"xox{k}-{t}", st.sampled_from("abposr"), _TOKEN_CHARS),
    st.builds(lambda t: f"xapp-1-{t}", _TOKEN_CHARS),
    st.builds(lambda t: f"ghp_{t}", _TOKEN_CHARS),
    st.builds(lambda t: f"github_pat_{t}", _TOKEN_CHARS),
    st.builds(
        lambda p, t: p + t,
        st.sampled_from(["AKIA", "ASIA"]),
        st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16),
    ),
    st.builds(lambda a, b, c: f"eyJ{a}.eyJ{b}.{c}", _TOKEN_CHARS, _TOKEN_CHARS, _TOKEN_CHARS),
)


@given(left=_AROUND, secret=_SELF_DESCRIBING, right=_AROUND)
def test_a_self_describing_token_never_survives_whatever_surrounds_it(
    left: str, secret: str, right: str
) -> None:
    assume(secret not in left and secret not in right)
    assert secret not in redact(f"{left} {secret} {right}")


_KEYS = st.sampled_from(
    ["password", "PASSWORD", "DB_PASSWORD", "passwd", "secret", "client_secret", "token",
     "access_token", "api_key", "apiKey", "X-Api-Key", "aws_secret_access_key", "credentials"]
)  # fmt: skip
_VALUES = st.text(alphabet=_ALNUM + "!#$%+/=@^~_.-:", min_size=6, max_size=30).filter(
    lambda v: v[0] not in "-" and REDACTED not in v
)


@example(left="0= ", key="password", value="000000", form="{k}={v}", right="")
@example(left="x: ", key="token", value="abc123!", form="{k}: {v}", right="")
@given(
    left=_AROUND,
    key=_KEYS,
    value=_VALUES,
    form=st.sampled_from(["{k}={v}", '"{k}": "{v}"', "'{k}': '{v}'", "--{k} {v}", "{k} = {v}"]),
    right=_AROUND,
)
def test_the_value_of_a_secret_key_never_survives(
    left: str, key: str, value: str, form: str, right: str
) -> None:
    assume(value not in left and value not in right and value not in key)
    assume(value not in REDACTED)
    text = f"{left} {form.format(k=key, v=value)} {right}"
    assert value not in redact(text)


@given(user=st.text(alphabet=_ALNUM, max_size=10), password=_VALUES, scheme=st.sampled_from(
    ["postgres", "https", "redis", "mysql+pymysql", "amqp"]
))  # fmt: skip
def test_the_password_in_a_url_never_survives_and_the_host_stays(
    user: str, password: str, scheme: str
) -> None:
    password = password.replace("/", "")
    url = f"{scheme}://{user}:{password}@db.internal:5432/app"
    around = f"connect {scheme}://{user}:@db.internal:5432/app failed [redacted]"
    assume(len(password) >= 3 and password not in around)  # else it is found as text
    out = redact(f"connect {url} failed")
    assert password not in out
    assert out.endswith("@db.internal:5432/app failed")


@given(_AROUND)
def test_redacting_twice_changes_nothing_more(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


_ORDINARY_WORDS = st.sampled_from(
    ["ERROR", "WARN", "request", "failed", "upstream", "timeout", "after", "retries", "user",
     "GET", "/api/v1/items", "200", "503", "revision", "rolled", "back", "to", "pod",
     "web-7d9f8b-xk2lp", "Back-off", "restarting", "container", "status=500", "latency=120ms",
     "app=web", "key=value", "id=42", "tokens=512", "2024-01-17T14:30:00Z", "(x3)", "in", "of"]
)  # fmt: skip
_IMAGE_REFS = st.builds(
    lambda repo, tag, digest: f"{repo}:{tag}@sha256:{digest}",
    st.sampled_from(["ghcr.io/acme/web", "repo/app", "registry.local:5000/team/api"]),
    st.from_regex(r"v[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)


@given(st.lists(st.one_of(_ORDINARY_WORDS, _IMAGE_REFS, st.integers(0, 10**6).map(str))))
def test_ordinary_log_lines_image_references_and_numbers_are_left_alone(
    words: list[str],
) -> None:
    line = " ".join(words)
    assert redact(line) == line


def test_a_value_the_diff_masked_already_is_left_as_the_diff_shows_it():
    line = "container app: env API_KEY: •••1a2b3c → •••4d5e6f"
    assert redact(line) == line


@pytest.mark.parametrize("piece", ["x-", "password-", "passwordx", "a=", "http://a:", "eyJa."])
def test_a_long_hostile_line_is_redacted_in_linear_time(piece: str) -> None:
    """A pod can log anything: 100 kB built to make a regex backtrack must not hang the
    assessment (these took 50–90 s before the keys were matched possessively)."""
    text = piece * (100_000 // len(piece))
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 3
