"""Git repositories served over HTTP on loopback, for the GitOps tests: Flux's
source-controller clones them, rollbot pushes its rollback commits to them.

The Git side is Git's own smart-HTTP server, `git http-backend`, so the protocol
(v0 and v2, fetch and push, gzip bodies) is the one real hosts speak, not ours.
http-backend is a CGI program; the Python standard library's CGI support is
deprecated, so a small WSGI app (`git_http_backend_app`) passes each request to
it, and gunicorn, the server rollbot itself runs in, serves that app in its own
process (it also decodes chunked request bodies, which git sends for big pushes).

Reading is open to all, as Flux's GitRepository needs no secret then. Pushing
needs HTTP basic auth with the server's token as the password (any user name),
as a Git host's access token does; with `push_token=None`, anyone may push.

    server = GitServer().start()
    repo = server.create_repo("apps")
    repo.commit({"web/deployment.yaml": text}, "web v1")   # -> the commit's sha
    repo.url, repo.head(), repo.read("web/deployment.yaml")
    server.stop()
"""

from __future__ import annotations

import base64
import hmac
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Self

from testbed.controlplane import free_port
from testbed.service import LocalService

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: The environment variables gunicorn's worker reads the app's settings from.
ROOT_ENV = "ROLLBOT_GIT_PROJECT_ROOT"
TOKEN_ENV = "ROLLBOT_GIT_PUSH_TOKEN"  # noqa: S105 - a variable's name, not a secret

#: The author of the commits the tests make (rollbot's own commits carry its own).
TEST_AUTHOR = {
    "GIT_AUTHOR_NAME": "testbed",
    "GIT_AUTHOR_EMAIL": "testbed@rollbot.invalid",
    "GIT_COMMITTER_NAME": "testbed",
    "GIT_COMMITTER_EMAIL": "testbed@rollbot.invalid",
}


class GitServerError(RuntimeError):
    pass


# -- the WSGI app -----------------------------------------------------------------


def _is_push(environ: Environ) -> bool:
    return environ.get("PATH_INFO", "").endswith("/git-receive-pack") or (
        "service=git-receive-pack" in environ.get("QUERY_STRING", "")
    )


def _authorized_user(environ: Environ, token: str) -> str | None:
    scheme, _, encoded = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user or "git") if hmac.compare_digest(password, token) else None


def _cgi_response(output: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body from a CGI program's output (RFC 3875 §6)."""
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = output.partition(b"\n\n")
    status = "200 OK"
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = value.strip()
        elif name.strip():
            headers.append((name.strip(), value.strip()))
    return status, headers, body


def git_http_backend_app(project_root: Path, push_token: str | None) -> WsgiApp:
    """A WSGI app serving every repository under `project_root` by `git http-backend`."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        user = "anonymous" if push_token is None else _authorized_user(environ, push_token)
        if _is_push(environ) and user is None:
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", 'Basic realm="rollbot testbed git"'),
                    ("Content-Length", "0"),
                ],
            )
            return [b""]
        # The body whole (gunicorn has de-chunked it): http-backend then gets a length.
        length = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        body: bytes = stream.read(int(length)) if length.isdigit() else stream.read()
        cgi_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
            "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        }
        if user is not None:
            cgi_env["REMOTE_USER"] = user  # http-backend allows a push only with a user
        for key in ("HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL", "HTTP_USER_AGENT"):
            if key in environ:
                cgi_env[key] = environ[key]
        result = subprocess.run(
            ["git", "http-backend"], input=body, env=cgi_env, capture_output=True, check=False
        )
        if result.stderr:
            sys.stderr.write(result.stderr.decode(errors="replace"))
        if result.returncode != 0 and not result.stdout:
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return [b""]
        status, headers, payload = _cgi_response(result.stdout)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(payload)))])
        return [payload]

    return app


def app_from_env() -> WsgiApp:
    """What gunicorn loads (`testbed.git_http:app_from_env()`): settings from the env."""
    return git_http_backend_app(Path(os.environ[ROOT_ENV]), os.environ.get(TOKEN_ENV) or None)


# -- repositories -----------------------------------------------------------------


def git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run git; its stdout, or GitServerError with its stderr."""
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise GitServerError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class GitRepo:
    """One bare repository on the server, and a work tree the tests commit from."""

    def __init__(self, bare: Path, work: Path, url: str, branch: str) -> None:
        self.bare, self.work, self.url, self.branch = bare, work, url, branch
        self._lock = threading.Lock()

    def commit(self, files: Mapping[str, str | None], message: str) -> str:
        """Write (or, for None, delete) files on the branch, commit, push; the new sha."""
        with self._lock:
            # Start from what the server holds: rollbot may have pushed in between.
            git("fetch", "--quiet", "origin", cwd=self.work)
            if git("ls-remote", "--heads", "origin", self.branch, cwd=self.work).strip():
                git("reset", "--quiet", "--hard", f"origin/{self.branch}", cwd=self.work)
            for path, text in files.items():
                target = self.work / path
                if text is None:
                    git("rm", "--quiet", "--ignore-unmatch", "--", path, cwd=self.work)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                git("add", "--", path, cwd=self.work)
            git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.work, env=TEST_AUTHOR)
            git("push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}", cwd=self.work)
            return git("rev-parse", "HEAD", cwd=self.work).strip()

    def head(self, branch: str | None = None) -> str:
        """The sha a branch (by default the repository's own) points at on the server."""
        ref = f"refs/heads/{branch or self.branch}"
        return git("--git-dir", str(self.bare), "rev-parse", "--verify", ref).strip()

    def read(self, path: str, rev: str | None = None) -> str:
        """A file's text at a revision (by default the branch's head) on the server."""
        return git("--git-dir", str(self.bare), "show", f"{rev or self.head()}:{path}")

    def branches(self) -> list[str]:
        out = git("--git-dir", str(self.bare), "for-each-ref", "--format=%(refname:short)")
        return out.split()

    def log(self, rev: str | None = None) -> list[str]:
        """Subjects of the commits on a branch (by default the repository's), newest first."""
        ref = rev or f"refs/heads/{self.branch}"
        return git("--git-dir", str(self.bare), "log", "--format=%s", ref).splitlines()


class GitServer(LocalService):
    """`git http-backend` under gunicorn on a free loopback port; repositories in a
    temporary folder, removed on stop (kept with ROLLBOT_KEEP_TESTBED set)."""

    def __init__(self, push_token: str | None = None) -> None:
        self.push_token = push_token
        self.root = Path(tempfile.mkdtemp(prefix="rollbot-git-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._repos: dict[str, GitRepo] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "gunicorn.log"

    def start(self) -> Self:
        if shutil.which("git") is None:
            raise GitServerError("git is not installed")
        (self.root / "repos").mkdir(exist_ok=True)
        self.port = free_port()
        env = {**os.environ, ROOT_ENV: str(self.root / "repos")}
        if self.push_token:
            env[TOKEN_ENV] = self.push_token
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "gunicorn"),
                    *("--bind", f"127.0.0.1:{self.port}"),
                    *("--worker-class", "gthread", "--workers", "1", "--threads", "8"),
                    *("--timeout", "60", "--access-logfile", "-"),
                    "testbed.git_http:app_from_env()",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise GitServerError(f"gunicorn exited with {self.proc.returncode}:\n{tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise GitServerError("the Git HTTP server did not listen within 30s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if not os.environ.get("ROLLBOT_KEEP_TESTBED"):
            shutil.rmtree(self.root, ignore_errors=True)

    def create_repo(self, name: str, branch: str = "main") -> GitRepo:
        """A new, empty repository served at `{base_url}/{name}.git`."""
        if name in self._repos:
            raise GitServerError(f"repository {name} exists already")
        bare = self.root / "repos" / f"{name}.git"
        git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
        work = self.root / "work" / name
        git("clone", "--quiet", str(bare), str(work))
        git("checkout", "--quiet", "-B", branch, cwd=work)
        repo = GitRepo(bare, work, f"{self.base_url}/{name}.git", branch)
        self._repos[name] = repo
        return repo
