"""Making Git match: the edit a person would make, committed and pushed with the
real `git` binary into a real (local) repository; the token kept out of sight."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.config import GitSettings
from bot.gitops.gitmatch import (
    GitFailed,
    _Git,
    commit_rollback,
    image_pairs,
    read_token,
    set_images_back,
)

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: registry.local/web:1.2   # bumped by CI
        - name: sidecar
          image: "envoy:1.30"
"""

KUSTOMIZATION = """\
resources: [deployment.yaml]
images:
  - name: registry.local/web
    newTag: "1.2"
  - name: other
    newTag: "1.2"
"""


def test_pairs_come_per_container_and_only_where_the_image_changed() -> None:
    bad = ("web=registry.local/web:1.2", "sidecar=envoy:1.30")
    good = ("web=registry.local/web:1.1", "sidecar=envoy:1.30")
    assert image_pairs(bad, good) == [("registry.local/web:1.2", "registry.local/web:1.1")]


def test_the_image_line_is_set_back_and_the_rest_kept() -> None:
    pairs = [("registry.local/web:1.2", "registry.local/web:1.1")]
    edited = set_images_back(DEPLOYMENT, pairs)
    assert "image: registry.local/web:1.1   # bumped by CI\n" in edited
    assert edited.replace("web:1.1", "web:1.2") == DEPLOYMENT


def test_a_kustomization_new_tag_is_set_back_for_that_image_only() -> None:
    edited = set_images_back(KUSTOMIZATION, [("registry.local/web:1.2", "registry.local/web:1.1")])
    assert edited == KUSTOMIZATION.replace('newTag: "1.2"', 'newTag: "1.1"', 1)


def test_the_token_is_read_from_the_environment_or_a_file(tmp_path: Path) -> None:
    settings = GitSettings(repository="https://git.example/a.git", path="a", token_env="TOK")
    assert read_token(settings, {"TOK": "s3cret\n"}) == "s3cret"
    with pytest.raises(GitFailed, match="TOK is not set"):
        read_token(settings, {})
    (tmp_path / "token").write_text("fromfile")
    from_file = GitSettings(
        repository="https://git.example/a.git", path="a", token_file=tmp_path / "token"
    )
    assert read_token(from_file, {}) == "fromfile"


def test_a_token_never_goes_over_plain_http() -> None:
    with pytest.raises(ValueError, match="https"):
        GitSettings(repository="http://git.example/a.git", path="a", token_env="TOK")


def test_git_messages_never_show_the_token(tmp_path: Path) -> None:
    git = _Git("s3cret-token-value", tmp_path)
    with pytest.raises(GitFailed) as failed:
        git("clone", "--", "https://x:s3cret-token-value@127.0.0.1:9/none.git", "out")
    assert "s3cret-token-value" not in str(failed.value)


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return seeded_origin(tmp_path)


def seeded_origin(tmp_path: Path) -> Path:
    """A bare repository whose main holds the bad image (two commits)."""
    bare, work = tmp_path / "origin.git", tmp_path / "seed"
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
    _git("clone", "--quiet", str(bare), str(work), cwd=tmp_path)
    (work / "apps").mkdir()
    who = ["-c", "user.name=dev", "-c", "user.email=dev@example"]
    (work / "apps" / "deployment.yaml").write_text(DEPLOYMENT.replace("web:1.2", "web:1.1"))
    _git("add", ".", cwd=work)
    _git(*who, "commit", "--quiet", "-m", "web 1.1", cwd=work)
    (work / "apps" / "deployment.yaml").write_text(DEPLOYMENT)
    _git(*who, "commit", "--quiet", "-am", "Deploy web 1.2", cwd=work)
    _git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    return bare


def _settings(origin: Path, **more: str) -> GitSettings:
    return GitSettings.model_construct(
        repository=str(origin),
        branch="main",
        path="apps",
        push_branch=more.get("push_branch", ""),
        token_env=None,
        token_file=None,
        author="rollbot <rollbot@example>",
    )


BAD, GOOD = ("web=registry.local/web:1.2",), ("web=registry.local/web:1.1",)


def test_the_rollback_is_committed_on_the_followed_branch(origin: Path, tmp_path: Path) -> None:
    done = commit_rollback(_settings(origin), None, "rb-1a2b3c4d", "web", BAD, GOOD, "crash loop")
    assert done.branch == "main" and done.files == ("apps/deployment.yaml",)
    assert done.introduced_by is not None and done.introduced_by.endswith("Deploy web 1.2")
    assert _git("rev-parse", "main", cwd=origin) == done.commit
    shown = _git("show", "main:apps/deployment.yaml", cwd=origin)
    assert "image: registry.local/web:1.1   # bumped by CI" in shown
    message = _git("log", "-1", "--format=%an%n%B", "main", cwd=origin)
    assert message.startswith("rollbot\nRoll back web: registry.local/web:1.2 → registry.local")
    assert "rollbot rollback rb-1a2b3c4d: crash loop" in message

    again = commit_rollback(_settings(origin), None, "rb-1a2b3c4d", "web", BAD, GOOD, "")
    assert again.already and again.commit == done.commit  # a retry commits nothing more


def test_the_rollback_can_go_to_a_branch_of_its_own(origin: Path) -> None:
    settings = _settings(origin, push_branch="rollbot/{id}")
    done = commit_rollback(settings, None, "rb-1a2b3c4d", "web", BAD, GOOD, "")
    assert done.branch == "rollbot/rb-1a2b3c4d"
    assert _git("rev-parse", "rollbot/rb-1a2b3c4d", cwd=origin) == done.commit
    assert "web:1.2" in _git("show", "main:apps/deployment.yaml", cwd=origin)


def test_a_manifest_that_does_not_set_the_image_is_said(origin: Path) -> None:
    other = ("web=registry.local/web:9.9",)
    with pytest.raises(GitFailed, match="no manifest under apps sets registry.local/web:9.9"):
        commit_rollback(_settings(origin), None, "rb-1a2b3c4d", "web", other, GOOD, "")
