"""A certificate authority made for one session, trusted only inside its sandbox.

The proxy terminates TLS for brokered hosts (see `sandbox.egress.intercept`) and shows the sandboxed
client a certificate this CA signed for the host. Made with PyCA `cryptography`:

- the CA key and every leaf key live in this process's memory only. `ssl` loads a certificate chain
  from a path alone, so each leaf's PEM is written to an anonymous `memfd` (no name in any filesystem)
  and loaded through ``/proc/self/fd``; the sandbox runs in its own pid namespace and never sees it;
- the CA is name-constrained (critical) to the brokered host names: even a leaked CA certificate
  could vouch for no other name;
- it lives one day (backdated an hour for clock skew) and is never written anywhere but the sandbox's
  CA bundle, which holds only its public certificate.

`bundle_pem()` is the system's CA bundle plus this CA, so tools that take one CA file still verify
every other host normally.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SYSTEM_BUNDLES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu, Arch
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # Fedora, RHEL
    Path("/etc/ssl/cert.pem"),  # Alpine, macOS
)
LIFETIME = datetime.timedelta(days=1)
SKEW = datetime.timedelta(hours=1)


def system_bundle_pem() -> bytes:
    """The system's CA bundle (the first that exists, or the one `ssl` was built with), else nothing."""
    candidates = [*SYSTEM_BUNDLES]
    default = ssl.get_default_verify_paths().cafile
    if default:
        candidates.insert(0, Path(default))
    for path in candidates:
        with contextlib.suppress(OSError):
            return path.read_bytes()
    return b""


class SessionCA:
    """One session's CA for `hosts` (canonical DNS names) and the TLS server contexts it signs."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self.hosts = tuple(dict.fromkeys(hosts))
        if not self.hosts:
            raise ValueError("a session CA needs at least one host")
        now = datetime.datetime.now(datetime.UTC)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "corral"),
                x509.NameAttribute(NameOID.COMMON_NAME, "corral session CA (this sandbox only)"),
            ]
        )
        self._name = name
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - SKEW)
            .not_valid_after(now + LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.NameConstraints(
                    permitted_subtrees=[x509.DNSName(host) for host in self.hosts], excluded_subtrees=None
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def certificate_pem(self) -> bytes:
        """The CA's public certificate (PEM): the only part of the CA that leaves this process."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def bundle_pem(self) -> bytes:
        """The system CAs and this CA, for the sandbox's CA-bundle variables."""
        system = system_bundle_pem()
        if system and not system.endswith(b"\n"):
            system += b"\n"
        return system + self.certificate_pem()

    def server_context(self, host: str) -> ssl.SSLContext:
        """A TLS server context presenting a certificate for `host` (one of `hosts`), HTTP/1.1 only."""
        if host not in self.hosts:
            raise ValueError(f"{host} is not a brokered host of this session")
        with self._lock:
            context = self._contexts.get(host)
            if context is None:
                context = self._make_context(host)
                self._contexts[host] = context
            return context

    def _leaf_pem(self, host: str) -> bytes:
        now = datetime.datetime.now(datetime.UTC)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self._name)
            .public_key(self._leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - SKEW)
            .not_valid_after(now + LIFETIME)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        key_pem = self._leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return key_pem + leaf.public_bytes(serialization.Encoding.PEM) + self.certificate_pem()

    def _make_context(self, host: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        fd = os.memfd_create("corral-leaf", os.MFD_CLOEXEC)
        try:
            os.write(fd, self._leaf_pem(host))
            path = f"/proc/self/fd/{fd}"
            context.load_cert_chain(path, path)
        finally:
            os.close(fd)
        return context
