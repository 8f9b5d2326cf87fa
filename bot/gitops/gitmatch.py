"""Make Git match the rollback: the image set back in the service's manifests,
committed and pushed with the `git` binary (no protocol code of our own), so
that resuming reconciliation keeps the good version.

What changes is as small as a person's edit: each line `image: BAD` (and a
kustomization's `newTag: TAG` under the image's `name:`) in the YAML files at
the configured path gets the good image; comments and layout stay. The commit
names the commit that introduced the bad image when `git log -S` finds it.
The token goes to git as an HTTP header through the environment (never on a
command line), and out of every message git prints.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.config import GitSettings
from bot.errors import PermanentError, TemporaryError
from bot.redaction import REDACTED, redact

GIT_TIMEOUT = 120.0


class GitFailed(PermanentError):
    code = "git"


class GitPushRejected(TemporaryError):
    """The branch moved meanwhile: the whole step is tried again from a new clone."""

    code = "git_push_rejected"


@dataclass(frozen=True)
class GitMatch:
    commit: str
    branch: str
    files: tuple[str, ...]
    #: The commit that brought the bad image in ("abc1234 Deploy web 1.2"), if found.
    introduced_by: str | None
    #: Git held the good image already: nothing was committed.
    already: bool = False


def image_pairs(bad: Sequence[str], good: Sequence[str]) -> list[tuple[str, str]]:
    """(bad image, good image) per container, from `name=image` lists."""
    before = dict(i.split("=", 1) for i in bad if "=" in i)
    after = dict(i.split("=", 1) for i in good if "=" in i)
    return [
        (before[name], after[name])
        for name in sorted(before)
        if name in after and after[name] != before[name]
    ]


def _split(image: str) -> tuple[str, str | None]:
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, None
    return name, tag


def set_images_back(text: str, pairs: Sequence[tuple[str, str]]) -> str:
    """`text` (YAML) with each bad image set to its good one, line by line."""
    lines = text.splitlines(keepends=True)
    for bad, good in pairs:
        quoted = re.escape(bad)
        line_image = re.compile(rf"^(\s*(?:-\s+)?image:\s*)([\"']?){quoted}\2(\s*(?:#.*)?)$")
        lines = [line_image.sub(rf"\g<1>\g<2>{good}\g<2>\g<3>", line) for line in lines]
        name, tag = _split(bad)
        _, good_tag = _split(good)
        if tag is None or good_tag is None:
            continue
        # A kustomization's images: `- name: NAME` then `newTag: TAG` in the same item.
        in_item = False
        for i, line in enumerate(lines):
            if re.match(rf"^\s*-?\s*name:\s*[\"']?{re.escape(name)}[\"']?\s*$", line):
                in_item = True
            elif re.match(r"^\s*-\s", line):
                in_item = False
            elif in_item:
                lines[i] = re.sub(
                    rf"^(\s*newTag:\s*)([\"']?){re.escape(tag)}\2(\s*)$",
                    rf"\g<1>\g<2>{good_tag}\g<2>\g<3>",
                    line,
                )
    return "".join(lines)


def read_token(settings: GitSettings, environ: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    if settings.token_env:
        token = environ.get(settings.token_env)
        if not token:
            raise GitFailed(f"git: the token variable {settings.token_env} is not set")
        return token.strip()
    if settings.token_file:
        try:
            return settings.token_file.read_text().strip()
        except OSError as err:
            raise GitFailed(f"git: cannot read the token file: {err.strerror}") from err
    return None


class _Git:
    def __init__(self, token: str | None, workdir: Path) -> None:
        self.token, self.workdir = token, workdir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(workdir),
        }
        if token:
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            self.env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }

    def clean(self, text: str) -> str:
        if self.token:
            text = text.replace(self.token, REDACTED)
        return redact(text)

    def __call__(self, *args: str, cwd: Path | None = None) -> str:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd or self.workdir,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise TemporaryError(f"git {args[0]}: {self.clean(str(err))}") from None
        if done.returncode != 0:
            message = self.clean((done.stderr or done.stdout).strip())
            if args[0] == "push" and ("rejected" in message or "fetch first" in message):
                raise GitPushRejected(f"git push: {message}")
            raise GitFailed(f"git {args[0]}: {message}")
        return done.stdout.strip()


def _manifests(root: Path, path: str) -> list[Path]:
    target = (root / path).resolve()
    if not target.is_relative_to(root.resolve()):
        raise GitFailed(f"git: path {path!r} leaves the repository")
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise GitFailed(f"git: no {path!r} on the branch")
    return sorted(p for p in target.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def commit_rollback(
    settings: GitSettings,
    token: str | None,
    record_id: str,
    workload: str,
    bad: Sequence[str],
    good: Sequence[str],
    reason: str,
) -> GitMatch:
    """Clone, set the images back, commit and push; what was done."""
    pairs = image_pairs(bad, good)
    if not pairs:
        raise GitFailed("git: the rollback changed no image, so there is nothing to set back")
    branch = settings.push_branch.replace("{id}", record_id) or settings.branch
    with tempfile.TemporaryDirectory(prefix="rollbot-git-") as tmp:
        git = _Git(token, Path(tmp))
        repo = Path(tmp) / "repo"
        git("clone", "--quiet", "--branch", settings.branch, "--single-branch", "--",
            settings.repository, str(repo))  # fmt: skip
        changed: list[str] = []
        for file in _manifests(repo, settings.path):
            text = file.read_text()
            if (edited := set_images_back(text, pairs)) != text:
                file.write_text(edited)
                changed.append(str(file.relative_to(repo)))
        head = git("rev-parse", "HEAD", cwd=repo)
        if not changed:
            texts = "".join(f.read_text() for f in _manifests(repo, settings.path))
            if all(good_image in texts for _, good_image in pairs):
                return GitMatch(head, settings.branch, (), None, already=True)
            raise GitFailed(
                f"git: no manifest under {settings.path} sets "
                f"{', '.join(b for b, _ in pairs)}: rollbot cannot set it back there"
            )
        introduced = git("log", "-n1", "--format=%h %s", "-S", pairs[0][0], "--", settings.path,
                         cwd=repo) or None  # fmt: skip
        name, _, email = settings.author.partition(" <")
        message = (
            f"Roll back {workload}: {', '.join(f'{b} → {g}' for b, g in pairs)}\n\n"
            f"rollbot rollback {record_id}"
            + (f": {reason}" if reason else "")
            + "\n"
            + (f"The bad image came with {introduced}.\n" if introduced else "")
        )
        git("add", "--", *changed, cwd=repo)
        git("-c", f"user.name={name}", "-c", f"user.email={email.rstrip('>')}",
            "commit", "--quiet", "-m", git.clean(message), cwd=repo)  # fmt: skip
        commit = git("rev-parse", "HEAD", cwd=repo)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=repo)
        return GitMatch(commit, branch, tuple(changed), introduced)
