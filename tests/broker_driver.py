"""Run one command in a real corral session with brokered credentials, as whoever runs this script.

The credential-brokering sandbox tests start it as the `actor` (root or the unprivileged test user):
it loads the actor's own user config (`[credentials.*]`, `[network]`), reads the secrets in its own
process the way `corral run` does, and composes the session with two test-only parts a CLI never
takes: a resolver that maps the real host names to local TLS servers on 127.0.0.1, and an upstream CA
that trusts those servers' certificate. It prints one JSON object: exit code, output, violations,
brokered request counts, and the session's warnings.

    python -m tests.broker_driver SPEC.json
"""

from __future__ import annotations

import json
import os
import ssl
import sys
from pathlib import Path

from corral.command import Command
from corral.credentialmap import resolve_credentials
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.opening import compose_session
from corral.userconfig import load_user_config
from sandbox.egress.brokersession import is_dumpable
from sandbox.egress.hostpolicy import HostPolicy
from sandbox.egress.proxy import static_resolver
from sandbox.runner import StdioSpec


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    workspace = Path(spec["workspace"])
    locations = Locations.default()
    user = load_user_config(locations.user_config_path)
    hosts = HostPolicy.from_config(source=user.source, allow=user.network_allow, deny=user.network_deny)
    resolved = resolve_credentials(user.credentials, os.environ)
    names = {name: (address, int(port)) for name, (address, port) in spec["names"].items()}
    upstream = ssl.create_default_context(cafile=spec["upstream_ca"])
    upstream.set_alpn_protocols(["http/1.1"])
    session = compose_session(
        workspace,
        locations=locations,
        hosts=hosts,
        resolver=static_resolver(names),
        on_violation=OnViolation.DENY,
        credentials=resolved,
        upstream_tls=upstream,
    )
    out = Path(spec["output"])
    try:
        with out.open("wb") as handle:
            outcome = session.run(
                Command.from_argv(["/bin/sh", "-c", spec["script"]]),
                stdio=StdioSpec(stdout=handle.fileno(), stderr=handle.fileno()),
            )
        brokered = outcome.brokered
    finally:
        broker_dir = session.network.readable if session.network is not None else ()
        session.close()
    print(
        json.dumps(
            {
                "exit_code": outcome.exit_code,
                "output": out.read_text(errors="replace"),
                "violations": [
                    {
                        "kind": o.violation.kind.value,
                        "target": o.violation.target,
                        "detail": o.violation.detail,
                    }
                    for o in outcome.outcomes
                ],
                "brokered": [[host, name, count] for (host, name), count in brokered.items()],
                "warnings": list(resolved.warnings),
                "broker_dirs_left": [str(p) for p in broker_dir if p.exists()],
                "dumpable": is_dumpable(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
