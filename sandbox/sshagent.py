"""corral's ssh-agent filter: the sandbox's one way to an agent, which signs only for allowed hosts.

It speaks the agent protocol (draft-miller-ssh-agent) to the client inside and forwards what it lets
through to the real agent outside (the person's own, or one corral started from the hidden key files):

- REQUEST_IDENTITIES passes: the answer holds public keys only.
- EXTENSION `session-bind@openssh.com` (sent by OpenSSH 8.9 and later after the key exchange, before
  any signature): the server's host key, the session identifier and the server's signature over it.
  The signature is verified here (`cryptography`); a valid one is remembered for this connection and
  forwarded. One with `is_forwarding` set marks the connection as forwarded (a remote host using the
  agent): it never signs again.
- SIGN_REQUEST is forwarded only when the data is an SSH user-authentication request for the session
  this connection bound last, for the same key, and `host_for_key` (corral: the hosts this session's
  connections reached through its network path, looked up in the person's known_hosts) names the
  bound host key's host. Anything else (no bind, another session, `ssh-keygen -Y sign` data, a host
  key no allowed host has) is SSH_AGENT_FAILURE, reported through `on_refusal`.
- ADD / REMOVE / REMOVE_ALL / LOCK / UNLOCK / smartcard messages, other extensions and unknown types:
  SSH_AGENT_FAILURE, never forwarded.

Messages are bounded (`MAX_MESSAGE`, as OpenSSH's agent); a frame over it, or a connection that stops
making sense, is closed; other connections are not affected.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

logger = logging.getLogger(__name__)

MAX_MESSAGE = 256 * 1024
MAX_BINDS = 16
FAILURE = 5
SUCCESS = 6
REQUEST_IDENTITIES = 11
IDENTITIES_ANSWER = 12
SIGN_REQUEST = 13
SIGN_RESPONSE = 14
EXTENSION = 27
SESSION_BIND = b"session-bind@openssh.com"
USERAUTH_REQUEST = 50
_PUBLICKEY_METHODS = (b"publickey", b"publickey-hostbound-v00@openssh.com")

HostForKey = Callable[[bytes], str | None]
"""The allowed host a server host key (wire blob) belongs to, or None."""
OnRefusal = Callable[[str, str], None]
"""``on_refusal(target, reason)``: a refused signature or bind (target: a host, or a key fingerprint)."""
Upstream = Callable[[], socket.socket]
"""A new connection to the real agent outside the sandbox."""


class Malformed(ValueError):
    """A message that does not parse."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise Malformed("truncated")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def uint32(self) -> int:
        return int(struct.unpack("!I", self.take(4))[0])

    def string(self) -> bytes:
        return self.take(self.uint32())

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def end(self) -> None:
        if self.at != len(self.data):
            raise Malformed("trailing bytes")


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def verify_host_signature(hostkey: bytes, data: bytes, signature: bytes) -> bool:
    """Whether `signature` (SSH wire form) is `hostkey`'s signature over `data`."""
    try:
        key_type = _Reader(hostkey).string()
        sig = _Reader(signature)
        algorithm, raw = sig.string(), sig.string()
        sig.end()
        public = load_ssh_public_key(key_type + b" " + base64.b64encode(hostkey))
        if isinstance(public, ed25519.Ed25519PublicKey) and algorithm == b"ssh-ed25519":
            public.verify(raw, data)
            return True
        if isinstance(public, ec.EllipticCurvePublicKey) and algorithm == key_type:
            digest = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[public.curve.key_size]
            pair = _Reader(raw)
            r, s = pair.mpint(), pair.mpint()
            pair.end()
            public.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
            return True
        if isinstance(public, rsa.RSAPublicKey) and algorithm in (b"rsa-sha2-256", b"rsa-sha2-512"):
            rsa_digest = hashes.SHA256() if algorithm == b"rsa-sha2-256" else hashes.SHA512()
            public.verify(raw, data, padding.PKCS1v15(), rsa_digest)
            return True
    except (InvalidSignature, Malformed, ValueError, KeyError, TypeError) as error:
        logger.debug("sshagent: host signature not verified: %s", error)
    except Exception as error:  # an unsupported key type from cryptography
        logger.debug("sshagent: host signature not verified: %s", error)
    return False


@dataclass(frozen=True, slots=True)
class Bind:
    hostkey: bytes
    session_id: bytes
    forwarding: bool


@dataclass
class _Connection:
    binds: list[Bind] = field(default_factory=list)
    upstream: socket.socket | None = None


def frame(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


def _recv_exact(sock: socket.socket, count: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def read_frame(sock: socket.socket, limit: int = MAX_MESSAGE) -> bytes | None:
    """One message; None at end of stream; Malformed when it is empty or over `limit`."""
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    length = struct.unpack("!I", head)[0]
    if length == 0 or length > limit:
        raise Malformed(f"a message of {length} bytes")
    return _recv_exact(sock, length)


class AgentFilter:
    """Serves agent connections from inside the sandbox, each in its caller's thread."""

    def __init__(self, upstream: Upstream, host_for_key: HostForKey, on_refusal: OnRefusal) -> None:
        self._upstream = upstream
        self._host_for_key = host_for_key
        self._on_refusal = on_refusal

    def serve(self, client: socket.socket) -> None:
        """Answer `client` until it closes (or sends what cannot be framed); closes it."""
        state = _Connection()
        try:
            client.settimeout(None)
            while True:
                try:
                    message = read_frame(client)
                except Malformed:
                    return
                if message is None:
                    return
                client.sendall(frame(self.answer(state, message)))
        except OSError as error:
            logger.debug("sshagent: connection ended: %s", error)
        finally:
            if state.upstream is not None:
                state.upstream.close()
            with contextlib.suppress(OSError):
                client.close()

    def answer(self, state: _Connection, message: bytes) -> bytes:
        """The reply to one message (FAILURE for anything refused or malformed)."""
        kind = message[0]
        try:
            if kind == REQUEST_IDENTITIES:
                if len(message) != 1:
                    raise Malformed("request-identities has a body")
                return self._forward(state, message, IDENTITIES_ANSWER)
            if kind == SIGN_REQUEST:
                return self._sign(state, message)
            if kind == EXTENSION:
                return self._extension(state, message)
        except Malformed as error:
            logger.debug("sshagent: malformed message %d: %s", kind, error)
        return bytes([FAILURE])

    def _forward(self, state: _Connection, message: bytes, expected: int) -> bytes:
        try:
            if state.upstream is None:
                state.upstream = self._upstream()
            state.upstream.sendall(frame(message))
            reply = read_frame(state.upstream)
        except (OSError, Malformed) as error:
            logger.debug("sshagent: the agent outside did not answer: %s", error)
            if state.upstream is not None:
                state.upstream.close()
                state.upstream = None
            return bytes([FAILURE])
        if reply is None or reply[0] not in (expected, FAILURE):
            return bytes([FAILURE])
        return reply

    def _extension(self, state: _Connection, message: bytes) -> bytes:
        reader = _Reader(message[1:])
        if reader.string() != SESSION_BIND:
            return bytes([FAILURE])
        hostkey, session_id, signature = reader.string(), reader.string(), reader.string()
        forwarding = reader.byte()
        reader.end()
        if forwarding not in (0, 1) or not session_id or len(state.binds) >= MAX_BINDS:
            return bytes([FAILURE])
        if not verify_host_signature(hostkey, session_id, signature):
            self._on_refusal(f"ssh host key {fingerprint(hostkey)}", "session-bind signature does not verify")
            return bytes([FAILURE])
        state.binds.append(Bind(hostkey, session_id, bool(forwarding)))
        reply = self._forward(state, message, SUCCESS)
        return bytes([SUCCESS]) if reply[:1] == bytes([FAILURE]) else reply  # an older agent outside

    def _sign(self, state: _Connection, message: bytes) -> bytes:
        reader = _Reader(message[1:])
        key, data, _flags = reader.string(), reader.string(), reader.uint32()
        reader.end()
        refusal, target = self._sign_refusal(state, key, data)
        if refusal is not None:
            self._on_refusal(target, refusal)
            return bytes([FAILURE])
        return self._forward(state, message, SIGN_RESPONSE)

    def _sign_refusal(self, state: _Connection, key: bytes, data: bytes) -> tuple[str | None, str]:
        """(why this signature is refused or None, what it was for)."""
        if not state.binds:
            return "ssh signature refused: no verified session-bind preceded it", "ssh agent"
        bind = state.binds[-1]
        target = f"ssh host key {fingerprint(bind.hostkey)}"
        if any(b.forwarding for b in state.binds):
            return "ssh signature refused: the agent connection was forwarded to a remote host", target
        try:
            request = _Reader(data)
            session_id = request.string()
            if request.byte() != USERAUTH_REQUEST:
                raise Malformed("not a user-authentication request")
            request.string()  # user
            request.string()  # service
            method = request.string()
            if method not in _PUBLICKEY_METHODS or request.byte() != 1:
                raise Malformed("not a public-key authentication")
            request.string()  # algorithm
            signed_key = request.string()
            if method == _PUBLICKEY_METHODS[1] and request.string() != bind.hostkey:
                raise Malformed("a host-bound request for another host key")
            request.end()
        except Malformed as error:
            return f"ssh signature refused: the data is {error}", target
        if session_id != bind.session_id:
            return "ssh signature refused: for a session this connection did not bind", target
        if signed_key != key:
            return "ssh signature refused: the request names another key", target
        try:
            host = self._host_for_key(bind.hostkey)
        except Exception:
            host = None
        if host is None:
            return (
                "ssh signature refused: no host this command was allowed to reach has this host key "
                "in your known_hosts",
                target,
            )
        return None, host
