"""Secrets out of anything rollbot quotes: pod logs, events, reasons, backups.

`redact(text)` replaces what looks like a credential with `REDACTED` and leaves
everything else as it was, so a quoted log line still says what went wrong.
It errs on the side of hiding: a value after a key named like a secret
(`password=`, `"api_key": …`, `--token …`) goes whatever it looks like, and
self-describing tokens (Slack, GitHub, AWS key ids, JWTs, private key blocks,
credentials in URLs) go wherever they appear. Image digests, revision numbers
and ordinary log text do not match any rule. Escaping for a medium (Slack's
mrkdwn) is not done here: that is the renderer's job.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

#: Words that make a key secret; a key holding one (`DB_PASSWORD`, `client_secret`) counts.
#: A word ends where a letter does not follow, so "tokens", "author" or "secretName" do not count.
_SECRET_WORD = (
    r"(?:(?:passw(?:or)?d|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|secret[_-]?key|private[_-]?key|credentials?|auth|authorization|session[_-]?key|signature|sig)"
    r"(?![A-Za-z]))"
)
#: Keys that mention a secret but hold its name or whereabouts, not the secret itself.
_NOT_A_SECRET = re.compile(
    r"(?:name|ref|file|path|dir|length|len|type|ttl|expiry|expires|expiration|url)s?$",
    re.IGNORECASE,
)
_SECRET_NAME = re.compile(_SECRET_WORD, re.IGNORECASE)
#: A key: the whole run of name characters, taken at once (possessive), so a long run
#: costs one pass, not a backtrack per position; whether it names a secret is asked after.
_KEY = r"[A-Za-z0-9_.-]++"
#: A value in a `key=value` list: up to the next separator, or a quoted string.
_VALUE = r"(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&\"'<>(){}\[\]|]+)"

# Each rule is a pattern and what replaces a match (a function keeps a key or a scheme).
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY( BLOCK|)-----"
    r"(?:.*?-----END \1PRIVATE KEY\2-----|.*)",  # unterminated (cut off): to the end
    re.DOTALL,
)
_TOKENS = re.compile(
    r"xox[abposr]-[0-9A-Za-z][0-9A-Za-z-]*"  # Slack bot/user/app-level tokens
    r"|xapp-[0-9A-Za-z][0-9A-Za-z-]*"
    r"|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"
    r"|gh[pousr]_[A-Za-z0-9]{16,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{16,}"
    r"|glpat-[A-Za-z0-9_-]{16,}"  # GitLab
    r"|(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])"  # AWS key ids
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # JWTs
    r"|sk_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
)
#: `Authorization: Bearer abc`, `Proxy-Authorization=Basic …`: the scheme stays.
_AUTH_HEADER = re.compile(
    r"(?P<key>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<scheme>(?:bearer|basic|token|digest|negotiate|aws4-hmac-sha256|apikey)\s+)?"
    r"(?P<value>[^\s\"',;]+(?:[ \t]*,[ \t]*[A-Za-z]+=[^\s,\"']+)*)",
    re.IGNORECASE,
)
#: A bearer token anywhere: long enough not to be the word that follows "bearer".
_BEARER = re.compile(r"(?P<key>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/-]{16,}=*)", re.IGNORECASE)
#: scheme://user:password@host: the user and host stay.
_URL_CREDENTIALS = re.compile(
    r"(?P<key>(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^\s/:@<>|\"']*:)(?P<value>[^\s/<>|\"']+)(?=@)",
    re.IGNORECASE,
)
#: "password": "…" in JSON, 'password': '…' in a Python repr.
_QUOTED_PAIR_KEY = rf"(?P<q>[\"'])(?P<name>{_KEY})(?P=q)\s*:\s*"
_QUOTED_PAIR = re.compile(
    rf"(?P<key>{_QUOTED_PAIR_KEY})"
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|(?!null\b|true\b|false\b)[^\s,}\[\]]+)",
    re.IGNORECASE,
)
#: password=…, DB_PASSWORD=…, ?access_token=…&, --token=….
_ASSIGNMENT_KEY = rf"(?<![A-Za-z0-9_.-])(?P<name>{_KEY})\s*=\s*"
_ASSIGNMENT = re.compile(rf"(?P<key>{_ASSIGNMENT_KEY})(?P<value>{_VALUE})", re.IGNORECASE)
#: --password hunter2, -token abc: a flag named like a secret, then its value; also as
#: items of a list written out (`["--password", "hunter2"]`).
_FLAG_KEY = rf"(?<![A-Za-z0-9_-])--?(?P<name>{_KEY})(?:[ \t]+|(?P<q>[\"'])[ \t]*,[ \t]*(?P=q))"
_FLAG = re.compile(
    rf"(?P<key>{_FLAG_KEY})"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'-][^\s\"']*)",
    re.IGNORECASE,
)
#: `password: hunter2` (YAML, loggers' key: value): only a value that looks like a secret
#: (a digit or a symbol in it), so "token: expired" stays readable; no space after the
#: colon is an image reference (`acme/token-service:v1`), not a pair; a value the diff
#: masked already (`•••1a2b3c`) is left as it is.
_COLON_PAIR_KEY = rf"(?<![A-Za-z0-9_.-])(?P<name>{_KEY}):[ \t]+"
_COLON_PAIR = re.compile(
    rf"(?P<key>{_COLON_PAIR_KEY})"
    r"(?P<value>(?!•)(?=[^\s,;\"']*[0-9!#$%*+/=?@^~])[^\s,;\"']{6,})",
    re.IGNORECASE,
)
#: A long hex or base64 blob a few characters after a secret-ish word: "api key 3f9a…".
_SECRET_BLOB = re.compile(
    rf"(?P<key>\b{_SECRET_WORD}\b|\bkey\b)(?P<gap>[^A-Za-z0-9\n]{{1,3}})"
    r"(?P<value>[A-Fa-f0-9]{32,}|[A-Za-z0-9+/_-]{32,}={0,2})(?![A-Za-z0-9+/=_-])",
    re.IGNORECASE,
)


def _is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not _NOT_A_SECRET.search(name)


def _keep_key(match: re.Match[str]) -> str:
    name = match.groupdict().get("name")
    if name is not None and not _is_secret_name(name):
        return match.group(0)
    if match.group("value") in (REDACTED, f'"{REDACTED}"', f"'{REDACTED}'"):
        return match.group(0)
    value = match.group("value")
    if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) >= 2:
        return f"{match.group('key')}{value[0]}{REDACTED}{value[0]}"
    return match.group("key") + REDACTED


def _keep_scheme(match: re.Match[str]) -> str:
    return match.group("key") + (match.group("scheme") or "") + REDACTED


def _keep_gap(match: re.Match[str]) -> str:
    return match.group("key") + match.group("gap") + REDACTED


#: Each pair's pattern, and its key alone: the keys are found first (one pass), and
#: only a key that names a secret has its value read.
_PAIRS = [
    (re.compile(key, re.IGNORECASE), pair)
    for key, pair in (
        (_QUOTED_PAIR_KEY, _QUOTED_PAIR),
        (_ASSIGNMENT_KEY, _ASSIGNMENT),
        (_FLAG_KEY, _FLAG),
        (_COLON_PAIR_KEY, _COLON_PAIR),
    )
]


def _pairs(key: re.Pattern[str], pair: re.Pattern[str], text: str) -> str:
    """`pair`'s key-value pairs with a secret's value redacted. A key that names no
    secret is passed over up to its value only, which is read again: in
    `0= password=hunter2` the value of `0` holds the pair that matters."""
    out, pos = [], 0
    while (found := key.search(text, pos)) is not None:
        match = pair.match(text, found.start()) if _is_secret_name(found["name"]) else None
        if match is None:
            out.append(text[pos : found.end()])
            pos = found.end()
        else:
            out.append(text[pos : match.start()] + _keep_key(match))
            pos = match.end()
    return "".join(out) + text[pos:]


def redact(text: str) -> str:
    """`text` with every credential-looking piece replaced by REDACTED."""
    text = _PRIVATE_KEY.sub(REDACTED, text)
    text = _TOKENS.sub(REDACTED, text)
    text = _AUTH_HEADER.sub(_keep_scheme, text)
    text = _BEARER.sub(_keep_key, text)
    text = _URL_CREDENTIALS.sub(_keep_key, text)
    for key, pair in _PAIRS:
        text = _pairs(key, pair, text)
    return _SECRET_BLOB.sub(_keep_gap, text)


def looks_secret_key(name: str) -> bool:
    """Whether a key or flag name (`DB_PASSWORD`, `--api-key`) names a secret."""
    bare = name.lstrip("-")
    return bool(re.fullmatch(_KEY, bare)) and _is_secret_name(bare)
