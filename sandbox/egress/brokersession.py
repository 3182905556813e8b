"""One session's credential brokering: its CA, the files and variables the sandbox sees, the interceptor.

`BrokerSession` is made once per session when the person mapped credentials. It makes the session CA
(`sandbox.egress.sessionca`) and a directory of generated, non-secret files bound read-only into every
command's sandbox:

- ``ca-bundle.pem``: the system CAs plus the session CA, named by the usual CA-bundle variables
  (curl, OpenSSL, Python requests, Node, git, pip, npm), so brokered hosts verify against the session
  CA and every other host verifies as before;
- ``npmrc``: ``//host/:_authToken=${VAR}`` for a credential named ``npm``, so npm sends the placeholder.
  It is npm's *global* config (``NPM_CONFIG_GLOBALCONFIG``): the person's own ``~/.npmrc`` (shown
  filtered, `sandbox.registryview`) still names the registry, scopes and settings; its tokens were
  withheld, so the placeholder line is the one npm uses.

The bundle starts from the person's own CA bundles when corral's environment names them
(``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``NODE_EXTRA_CA_CERTS``...: a company CA
keeps working), else from the system's.

Git over HTTPS gets a credential helper through ``GIT_CONFIG_*`` variables: for each host reached with
HTTP Basic it answers the placeholder (the helpers of the person's own git config are reset for that
host first). Nothing here is secret: the secrets stay in `CredentialBroker`, in corral's memory, and
making a `BrokerSession` marks corral's process non-dumpable (``PR_SET_DUMPABLE`` 0): no core dump of
it is written anywhere (a workspace, where a later command could read it), and no other process of
the user can attach to it or read its memory through ``/proc``.
"""

from __future__ import annotations

import contextlib
import ctypes
import shlex
import shutil
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from sandbox.egress.credentials import CredentialBroker
from sandbox.egress.intercept import Interceptor, OnBrokered, OnRefused
from sandbox.egress.sessionca import SessionCA

CA_BUNDLE_VARIABLES = (
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    "NPM_CONFIG_CAFILE",
    "DENO_CERT",
)
"""Variables that point a tool at a CA bundle; each gets the session's bundle."""


class BrokerSession:
    """The CA, generated files and environment of one session's brokered credentials."""

    def __init__(
        self,
        broker: CredentialBroker,
        *,
        fixed_env: dict[str, str] | None = None,
        upstream_context: ssl.SSLContext | None = None,
        own_bundles: Sequence[Path] = (),
    ) -> None:
        self.broker = broker
        keep_out_of_core_dumps()
        self.authority = SessionCA(broker.hosts)
        self._fixed_env = dict(fixed_env or {})
        self._upstream_context = upstream_context
        self.directory = Path(tempfile.mkdtemp(prefix="corral-broker-"))
        self.bundle = self.directory / "ca-bundle.pem"
        self._write(self.bundle, self._bundle_pem(own_bundles))
        self.npmrc: Path | None = None
        npm_lines = [
            f"//{host}/:_authToken=${{{credential.env[0]}}}"
            for credential in broker.credentials
            if credential.name == "npm" and credential.env
            for host in credential.hosts
        ]
        if npm_lines:
            self.npmrc = self.directory / "npmrc-global"
            self._write(self.npmrc, ("\n".join(npm_lines) + "\n").encode())

    def _bundle_pem(self, own_bundles: Sequence[Path]) -> bytes:
        parts: list[bytes] = []
        for path in dict.fromkeys(own_bundles):
            with contextlib.suppress(OSError):
                data = path.read_bytes()[: 16 << 20]
                if b"-----BEGIN CERTIFICATE-----" in data and data not in parts:
                    parts.append(data if data.endswith(b"\n") else data + b"\n")
        if not parts:
            return self.authority.bundle_pem()
        return b"".join(parts) + self.authority.certificate_pem()

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.write_bytes(data)  # in a 0700 directory of corral's user, the sandbox's own uid

    def environment(self) -> dict[str, str]:
        """The variables every sandboxed command gets: placeholders, CA bundle, git helper, npmrc."""
        env = dict(self._fixed_env)
        env.update(self.broker.placeholder_env())
        env.update({name: str(self.bundle) for name in CA_BUNDLE_VARIABLES})
        if self.npmrc is not None:
            env["NPM_CONFIG_GLOBALCONFIG"] = str(self.npmrc)
        git: list[tuple[str, str]] = []
        for credential in self.broker.credentials:
            if credential.scheme != "basic":
                continue
            for host in credential.hosts:
                key = f"credential.https://{host}.helper"
                user = shlex.quote(f"username={credential.username}")
                password = shlex.quote(f"password={credential.placeholder}")
                answer = f"!f() {{ echo {user}; echo {password}; }}; f"
                git += [(key, ""), (key, answer)]
        if git:
            env["GIT_CONFIG_COUNT"] = str(len(git))
            for index, (key, value) in enumerate(git):
                env[f"GIT_CONFIG_KEY_{index}"] = key
                env[f"GIT_CONFIG_VALUE_{index}"] = value
        return env

    def interceptor(self, on_refused: OnRefused, on_brokered: OnBrokered) -> Interceptor:
        return Interceptor(
            self.broker,
            self.authority,
            upstream_context=self._upstream_context,
            on_refused=on_refused,
            on_brokered=on_brokered,
        )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)


def own_bundles(environ: Mapping[str, str]) -> list[Path]:
    """The CA bundles the person's environment names (absolute paths only), in a stable order."""
    found: list[Path] = []
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "PIP_CERT"):
        value = environ.get(name, "")
        if value.startswith("/") and "\0" not in value:
            found.append(Path(value))
    return found


PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def keep_out_of_core_dumps() -> bool:
    """Mark this process non-dumpable (Linux): no core dump, no ptrace or /proc/PID/mem by same-user
    processes. Children reset it when they exec, so sandboxed commands are unaffected. False where the
    call is not available (the secrets are then still never written by corral itself)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def is_dumpable() -> bool:
    """Whether this process may dump core (`keep_out_of_core_dumps` clears it)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) == 1
    except (OSError, AttributeError):
        return True
