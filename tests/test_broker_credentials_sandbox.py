"""Credential brokering end to end through the real sandbox, as root and as an unprivileged user.

A local TLS server on 127.0.0.1 stands in for GitHub (its name mapped only in the proxy's resolver);
the actor's own user config maps the `github` preset to `env:GITHUB_TOKEN` of corral's process. Inside,
only a placeholder exists: curl and git authenticate with it, the proxy puts the real token in the
mapped header outside, and a planted key is refused as a `net-credential` violation. The secret must be
nowhere the sandbox can read: environment, /proc, process memory, files, the tool's output.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import SECRET, Actor
from tests.test_egress_fixtures import LocalServer, http_server, make_certificate

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

ROOT = Path(__file__).resolve().parent.parent
PLANTED = "ghp_PLANTEDattackerKEY000000000000000000"

# Everything the sandbox can read that could hold the secret: every other process's environment,
# command line and readable memory; the files under the home, /tmp, /run, /etc, the workspace. (The
# search itself holds the needle it decoded, so it skips its own memory.)
SEARCH = r"""
import os, re, sys
needle = os.environ["NEEDLE_B64"]
import base64
needle = base64.b64decode(needle)
found = []
for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
    for name in ("environ", "cmdline"):
        try:
            if needle in open(f"/proc/{pid}/{name}", "rb").read():
                found.append(f"/proc/{pid}/{name}")
        except OSError:
            pass
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        with open(f"/proc/{pid}/mem", "rb") as mem:
            for line in maps:
                span, perms = line.split()[:2]
                if "r" not in perms:
                    continue
                start, end = (int(x, 16) for x in span.split("-"))
                try:
                    mem.seek(start)
                    if needle in mem.read(min(end - start, 64 << 20)):
                        found.append(f"/proc/{pid}/mem")
                except (OSError, OverflowError, ValueError):
                    pass
    except OSError:
        pass
for root in sys.argv[1:]:
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(directory, d))]
        for name in files:
            path = os.path.join(directory, name)
            try:
                if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) < 8 << 20:
                    if needle in open(path, "rb").read():
                        found.append(path)
            except OSError:
                pass
print("FOUND:" + ",".join(found) if found else "NOTHING-FOUND")
"""


@dataclass
class GitServer:
    """A git smart-HTTP server (git http-backend) behind TLS that wants Basic x-access-token:SECRET."""

    port: int
    repos: Path
    authorizations: list[str] = field(default_factory=list)


@contextlib.contextmanager
def git_server(certificate_context: object, repos: Path, token: str) -> Iterator[GitServer]:
    import ssl

    assert isinstance(certificate_context, ssl.SSLContext)
    backend = shutil.which("git-http-backend") or "/usr/lib/git-core/git-http-backend"
    if not os.path.exists(backend):
        pytest.skip("git http-backend is needed (Debian package git)")
    wanted = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    state = GitServer(0, repos)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            authorization = self.headers.get("Authorization", "")
            state.authorizations.append(authorization)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if authorization != wanted:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = {
                "GIT_PROJECT_ROOT": str(repos),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "tester",
                "REMOTE_ADDR": "127.0.0.1",
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "safe.directory",
                "GIT_CONFIG_VALUE_0": "*",
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            }
            done = subprocess.run([backend], input=body, env=env, capture_output=True, timeout=60)
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            status = 200
            headers: list[tuple[str, str]] = []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = certificate_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.port = server.server_address[1]
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Stage:
    actor: Actor
    api: LocalServer
    git: GitServer
    ca: Path


@pytest.fixture
def stage(actor: Actor, tmp_path: Path) -> Iterator[Stage]:
    certificate = make_certificate(tmp_path, "api.github.com", "github.com", "registry.npmjs.org")
    ca = actor.base / "upstream-ca.pem"
    shutil.copy(certificate.cert, ca)
    config = actor.state_home / ".config" / "corral" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        '[network]\nallow = ["api.github.com", "github.com", "registry.npmjs.org", "127.0.0.1"]\n\n'
        '[credentials.github]\nfrom = "env:GITHUB_TOKEN"\n\n'
        '[credentials.npm]\nfrom = "env:AWS_SECRET_ACCESS_KEY"\n'  # the actor's env holds SECRET there too
    )
    repos = tmp_path / "repos"
    repos.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", str(repos / "repo.git")], check=True)
    git_in_workspace = ["git", "-C", str(actor.workspace), "-c", "safe.directory=*"]
    subprocess.run([*git_in_workspace, "add", "README.md"], check=True)
    subprocess.run(
        [*git_in_workspace, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "one"], check=True
    )
    actor.chown_tree(actor.base)
    actor.chown_tree(actor.state_home)
    with (
        http_server(certificate.server_context()) as api,
        git_server(certificate.server_context(), repos, SECRET) as git,
    ):
        yield Stage(actor, api, git, ca)


def _drive(stage: Stage, script: str, host: str = "api.github.com") -> dict[str, object]:
    actor = stage.actor
    names = {
        "api.github.com": ["127.0.0.1", stage.api.port],
        "registry.npmjs.org": ["127.0.0.1", stage.api.port],
        "github.com": ["127.0.0.1", stage.git.port],
    }
    spec = actor.base / "spec.json"
    output = actor.base / "out.txt"
    spec.write_text(
        json.dumps(
            {
                "workspace": str(actor.workspace),
                "names": names,
                "upstream_ca": str(stage.ca),
                "script": script,
                "output": str(output),
            }
        )
    )
    actor.chown_path(spec)
    command = [sys.executable, "-m", "tests.broker_driver", str(spec)]
    if actor.uid != os.geteuid():
        command = ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**actor.env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_gh_api_user_style_request_works_with_the_token_added_outside(stage: Stage) -> None:
    result = _drive(
        stage,
        'curl -sS --fail-with-body -H "Authorization: token $GH_TOKEN" https://api.github.com/user; echo;'
        ' echo "GH=$GH_TOKEN GITHUB=$GITHUB_TOKEN"',
    )
    assert result["exit_code"] == 0, result
    output = str(result["output"])
    assert SECRET not in output
    assert "GH=corral-placeholder-" in output
    (received,) = stage.api.received
    assert received.headers["authorization"] == f"token {SECRET}"
    assert result["violations"] == []
    assert result["brokered"] == [["api.github.com:443", "github", 1]]
    assert result["broker_dirs_left"] == []
    assert result["dumpable"] is False  # corral, holding the secret, can dump no core


def test_a_planted_key_is_refused_as_net_credential(stage: Stage) -> None:
    result = _drive(
        stage, f'curl -sS --fail-with-body -H "Authorization: token {PLANTED}" https://api.github.com/user'
    )
    assert result["exit_code"] != 0
    assert stage.api.received == []
    violations = result["violations"]
    assert isinstance(violations, list)
    assert [(v["kind"], v["target"]) for v in violations] == [("net-credential", "api.github.com:443")]
    assert PLANTED not in json.dumps(violations)
    assert "refused" in str(result["output"])


def test_a_body_echoing_the_placeholder_is_not_substituted(stage: Stage) -> None:
    result = _drive(
        stage,
        'curl -sS --fail-with-body -H "Authorization: token $GH_TOKEN" -H "Content-Type: application/json"'
        ' -d "{\\"note\\": \\"$GH_TOKEN\\"}" https://api.github.com/user',
    )
    assert result["exit_code"] == 0, result
    (received,) = stage.api.received
    assert SECRET.encode() not in received.body
    assert b"corral-placeholder-" in received.body
    assert received.headers["authorization"] == f"token {SECRET}"


def test_the_secret_is_nowhere_the_sandbox_can_read(stage: Stage) -> None:
    (stage.actor.workspace / "search.py").write_text(SEARCH)
    stage.actor.chown_path(stage.actor.workspace / "search.py")
    needle = base64.b64encode(SECRET.encode()).decode()
    result = _drive(
        stage,
        # A request first, so the proxy holds the secret in its memory while the search runs.
        'curl -sS -o /dev/null -H "Authorization: token $GH_TOKEN" https://api.github.com/user;'
        f' NEEDLE_B64={needle} python3 search.py "$HOME" /tmp /run /etc "$PWD"',
    )
    assert "NOTHING-FOUND" in str(result["output"]), result["output"]
    assert len(stage.api.received) == 1


def test_git_push_over_https_with_the_token_added_outside(stage: Stage) -> None:
    result = _drive(
        stage,
        "git push https://github.com/repo.git HEAD:refs/heads/main 2>&1; echo push-exit=$?",
    )
    output = str(result["output"])
    assert "push-exit=0" in output, output
    assert SECRET not in output
    pushed = subprocess.run(
        ["git", "--git-dir", str(stage.git.repos / "repo.git"), "log", "--format=%s", "main"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert pushed.stdout.strip() == "one"
    expected = "Basic " + base64.b64encode(f"x-access-token:{SECRET}".encode()).decode()
    assert expected in stage.git.authorizations
    violations = result["violations"]
    assert isinstance(violations, list)
    assert [v for v in violations if v["kind"] != "fs-read"] == []  # git's curl looks for ~/.netrc


def test_the_search_would_find_the_secret_in_another_process(stage: Stage) -> None:
    """The control for the test above: a process inside that holds the needle is found, in its memory."""
    (stage.actor.workspace / "search.py").write_text(SEARCH)
    stage.actor.chown_path(stage.actor.workspace / "search.py")
    needle = base64.b64encode(SECRET.encode()).decode()
    holder = "import base64, os, time; kept = base64.b64decode(os.environ.pop('NEEDLE_B64')); time.sleep(5)"
    result = _drive(
        stage,
        f'NEEDLE_B64={needle} python3 -c "{holder}" & sleep 1;'
        f" NEEDLE_B64={needle} python3 search.py /nonexistent; kill %1",
    )
    assert "/mem" in str(result["output"]), result["output"]


def test_a_client_that_ignores_the_proxy_is_brokered_and_checked_too(stage: Stage) -> None:
    """Traffic that bypasses the proxy variables reaches corral's transparent path, which serves a
    brokered host exactly like a proxied tunnel: the placeholder works, a planted key is refused."""
    result = _drive(
        stage,
        'curl -sS --noproxy "*" --fail-with-body -H "Authorization: token $GH_TOKEN" https://api.github.com/user'
        f' ; echo; curl -sS --noproxy "*" -H "Authorization: token {PLANTED}" https://api.github.com/user',
    )
    output = str(result["output"])
    assert [r.headers["authorization"] for r in stage.api.received] == [f"token {SECRET}"], output
    violations = result["violations"]
    assert isinstance(violations, list)
    assert [(v["kind"], v["target"]) for v in violations] == [("net-credential", "api.github.com:443")]
    assert SECRET not in output


def test_npm_whoami_sends_the_placeholder_and_the_registry_gets_the_token(stage: Stage) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is needed (Debian package npm)")
    result = _drive(stage, "npm whoami 2>&1; echo npm-exit=$?")
    output = str(result["output"])
    paths = [r.path for r in stage.api.received]
    assert "/-/whoami" in paths, output
    whoami = next(r for r in stage.api.received if r.path == "/-/whoami")
    assert whoami.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in output
    assert ["registry.npmjs.org:443", "npm", 1] in result["brokered"]  # type: ignore[operator]
