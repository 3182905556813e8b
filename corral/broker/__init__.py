"""The session broker: one live Session per project that agent commands join over a Unix socket.

`protocol` (the wire format, no dependencies), `address` (where a project's socket lives), `client`
(what `corral run` uses when a session is live: it imports nothing of the sandbox, git or a UI),
`server` (the owner's side: runs each request in the Session and streams the output back),
`headless` (`corral session`, a session with no UI beside an agent), `mcp_server` (`corral mcp`).
"""
