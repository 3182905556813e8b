"""Traffic that ignores the proxy, steered to corral: NAT rules and listeners inside the sandbox's netns.

A client that does not read ``HTTP(S)_PROXY`` (ssh, psql, a raw socket, a DNS look-up) used to find
an empty network namespace and fail with "could not resolve host", unseen. `open_interception_in`
gives the sandbox's network namespace, from outside and before the command starts, four things:

- a TCP listener on ``127.0.0.1:TRANSPARENT_PORT`` (and ``[::1]``) and a UDP socket on ``127.0.0.1:53``
  (and ``[::1]:53``), created inside the namespace and handed back to corral (SCM_RIGHTS), as
  `sandbox.egress.netns` does for the proxy's listener;
- nftables NAT rules on the output hook: every UDP and TCP packet to port 53 goes to corral's DNS
  responder, every other TCP connection to an address outside the sandbox's own loopback goes to the
  transparent listener, which reads the original destination with ``SO_ORIGINAL_DST``
  (`sandbox.egress.transparent`); the proxy's own port and the sandbox's loopback are left alone;
- a ``local`` default route on loopback (IPv4 and IPv6), so that a connect to any address reaches the
  NAT hook instead of failing with ENETUNREACH. Other UDP then meets a closed local port: ICMP port
  unreachable, which a client sees as "connection refused" (loud, but not reported).

Both ports are below 1024, which the sandboxed command (all capabilities dropped) can neither bind nor
take away from corral, so no dev server inside ever collides with them.

The rules are installed by the `nft` program (Debian's ``nftables``), run by a child of the helper
inside the sandbox's user and network namespaces with ``CAP_NET_ADMIN`` kept across exec as an
ambient capability (a non-root uid loses every capability on exec otherwise). Nothing of corral's runs
inside the sandbox once the command starts: the rules and the route are kernel state, the listeners'
only descriptors are corral's.

Fail closed: when `nft` is missing or the kernel refuses the NAT rules, no route is added, so the
sandbox stays as it was (every connect fails with ENETUNREACH) and `Interception.nat_error` says why;
`corral doctor` reports the same check (`check_nat`).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import signal
import socket
import struct
import time
from dataclasses import dataclass, field

from sandbox.egress.netns import CLONE_NEWNET, CLONE_NEWUSER, NS_GET_USERNS, NetnsError
from sandbox.fdwait import readable

TRANSPARENT_PORT = 1023
"""The sandbox-side port of corral's transparent TCP listener (privileged: nothing inside can bind it)."""
DNS_PORT = 53
"""The sandbox-side port of corral's DNS responder (UDP; TCP look-ups go to the transparent listener)."""

NFT_CANDIDATES = ("/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft")

_CAP_NET_ADMIN = 12
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_RAISE = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
_setns = _libc.setns
_setns.argtypes = (ctypes.c_int, ctypes.c_int)
_setns.restype = ctypes.c_int
_capget = _libc.capget
_capset = _libc.capset
_prctl = _libc.prctl
_prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
_prctl.restype = ctypes.c_int

_STEPS = {
    1: "join the sandbox's namespaces",
    2: "create the interception sockets",
}


def find_nft() -> str | None:
    """The `nft` program corral runs inside the sandbox's namespace, or None."""
    for candidate in NFT_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("nft")


def nat_ruleset(proxy_port: int, ipv6: bool) -> str:
    """The nftables rules: DNS to the responder, other TCP leaving the sandbox to the transparent port."""
    del proxy_port  # the proxy listens on 127.0.0.1, inside the loopback range left alone below
    rules = [
        "table ip corral {",
        "  chain out {",
        "    type nat hook output priority -100; policy accept;",
        f"    udp dport 53 redirect to :{DNS_PORT}",
        f"    tcp dport 53 redirect to :{TRANSPARENT_PORT}",
        "    ip daddr 127.0.0.0/8 return",
        f"    meta l4proto tcp redirect to :{TRANSPARENT_PORT}",
        "  }",
        "}",
    ]
    if ipv6:
        rules += [
            "table ip6 corral {",
            "  chain out {",
            "    type nat hook output priority -100; policy accept;",
            f"    udp dport 53 redirect to :{DNS_PORT}",
            f"    tcp dport 53 redirect to :{TRANSPARENT_PORT}",
            "    ip6 daddr ::1 return",
            f"    meta l4proto tcp redirect to :{TRANSPARENT_PORT}",
            "  }",
            "}",
        ]
    return "\n".join(rules) + "\n"


@dataclass
class Interception:
    """The sockets corral serves for one sandbox, and whether the NAT rules are in place."""

    tcp: list[socket.socket] = field(default_factory=list)
    """Transparent TCP listeners (IPv4, then IPv6 when the namespace has ``::1``)."""
    dns: list[socket.socket] = field(default_factory=list)
    """UDP sockets of the DNS responder (IPv4, then IPv6)."""
    nat_error: str | None = None
    """None when the NAT rules and routes are installed; else why not (the sandbox then stays closed)."""

    def close(self) -> None:
        for sock in (*self.tcp, *self.dns):
            sock.close()
        self.tcp.clear()
        self.dns.clear()


def open_interception_in(child_pid: int, proxy_port: int, *, timeout_s: float = 5.0) -> Interception:
    """Create the interception sockets inside `child_pid`'s network namespace and install the NAT rules.

    Raises `NetnsError` when the namespaces cannot be joined or the sockets cannot be made (the caller
    refuses to start the command); a missing `nft` or refused rules only set `nat_error`.
    """
    ns_path = f"/proc/{child_pid}/ns/net"
    try:
        target_inode = os.stat(ns_path).st_ino
    except OSError as error:
        raise NetnsError(error.errno, f"cannot see the network namespace of process {child_pid}") from error
    if target_inode == os.stat("/proc/self/ns/net").st_ino:
        raise NetnsError(errno.EINVAL, f"process {child_pid} shares corral's network namespace")
    own_userns = os.stat("/proc/self/ns/user").st_ino
    nft = find_nft()
    ruleset = nat_ruleset(proxy_port, ipv6=True).encode()
    ruleset_v4 = nat_ruleset(proxy_port, ipv6=False).encode()
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        helper = os.fork()
        if helper == 0:  # pragma: no cover - runs in the forked helper only
            parent_end.close()
            _helper(child_end, ns_path, target_inode, own_userns, nft, ruleset, ruleset_v4)
        child_end.close()
        return _receive(parent_end, helper, child_pid, timeout_s)
    finally:
        parent_end.close()
        if child_end.fileno() != -1:
            child_end.close()


def _receive(channel: socket.socket, helper: int, child_pid: int, timeout_s: float) -> Interception:
    deadline = time.monotonic() + timeout_s
    interception = Interception()
    try:
        if not readable([channel], timeout_s):
            raise NetnsError(errno.ETIMEDOUT, f"no interception sockets from the helper within {timeout_s}s")
        message, fds, _, _ = socket.recv_fds(channel, 64, 8)
        if not message.startswith(b"ok"):
            for fd in fds:
                os.close(fd)
            if len(message) == 8:
                step, code = struct.unpack("=ii", message)
                what = _STEPS.get(step, "set up interception")
                raise NetnsError(code, f"cannot {what} for sandbox process {child_pid}: {os.strerror(code)}")
            raise NetnsError(errno.EPROTO, "the interception helper exited without its sockets")
        kinds = message[2:].decode("ascii")  # one letter per descriptor: t (TCP) or d (DNS, UDP)
        for kind, fd in zip(kinds, fds, strict=True):
            sock = socket.socket(fileno=fd)
            sock.set_inheritable(False)
            (interception.tcp if kind == "t" else interception.dns).append(sock)
        remaining = max(0.0, deadline - time.monotonic())
        if not readable([channel], remaining):
            interception.nat_error = "the NAT rules were not installed in time"
        else:
            verdict = channel.recv(4096).decode("utf-8", "replace")
            interception.nat_error = None if verdict == "nat ok" else verdict or "the helper ended early"
    except BaseException:
        interception.close()
        raise
    finally:
        _reap(helper, deadline)
    return interception


def _reap(pid: int, deadline: float) -> None:
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.001)


# -- the helper: only system calls, no locks (it is a fork of a threaded process) ------------------


def _helper(  # pragma: no cover - runs in the forked helper only
    channel: socket.socket,
    ns_path: str,
    target_inode: int,
    own_userns: int,
    nft: str | None,
    ruleset: bytes,
    ruleset_v4: bytes,
) -> None:
    step = 1
    try:
        net_fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
        if os.fstat(net_fd).st_ino != target_inode:
            raise OSError(errno.ESRCH, "the sandbox process changed")
        user_fd = fcntl.ioctl(net_fd, NS_GET_USERNS)
        if os.fstat(user_fd).st_ino != own_userns and _setns(user_fd, CLONE_NEWUSER) != 0:
            raise OSError(ctypes.get_errno(), "setns user")
        if _setns(net_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns net")
        step = 2
        sockets, kinds = _make_sockets()
        ipv6 = len(sockets) == 4
        socket.send_fds(channel, [b"ok" + kinds.encode("ascii")], [s.fileno() for s in sockets])
        for sock in sockets:
            sock.close()
    except BaseException as error:
        code = error.errno if isinstance(error, OSError) and error.errno else errno.EIO
        try:
            channel.send(struct.pack("=ii", step, code))
        finally:
            os._exit(1)
    try:
        verdict = _install_nat(nft, ruleset if ipv6 else ruleset_v4)
        if verdict is None:
            _add_local_default_route(socket.AF_INET)
            if ipv6:
                _add_local_default_route(socket.AF_INET6)
            verdict = "nat ok"
        channel.send(verdict.encode("utf-8", "replace")[:4000])
        os._exit(0)
    except BaseException as error:
        try:
            channel.send(f"could not route the sandbox's traffic to corral: {error}".encode()[:4000])
        finally:
            os._exit(1)


def _make_sockets() -> tuple[list[socket.socket], str]:  # pragma: no cover - helper only
    """TCP listener and UDP socket on 127.0.0.1, and on ::1 when the namespace has it."""
    made: list[socket.socket] = []
    kinds = ""
    families: list[tuple[socket.AddressFamily, str]] = [(socket.AF_INET, "127.0.0.1")]
    families.append((socket.AF_INET6, "::1"))
    for family, address in families:
        try:
            tcp = socket.socket(family, socket.SOCK_STREAM)
            udp = socket.socket(family, socket.SOCK_DGRAM)
            if family == socket.AF_INET6:
                tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            tcp.bind((address, TRANSPARENT_PORT))
            tcp.listen(512)
            udp.bind((address, DNS_PORT))
        except OSError:
            if family == socket.AF_INET:
                raise
            continue  # no IPv6 loopback in this namespace: IPv6 stays unreachable (ENETUNREACH)
        made += [tcp, udp]
        kinds += "td"
    return made, kinds


def _install_nat(nft: str | None, ruleset: bytes) -> str | None:  # pragma: no cover - helper only
    """Run `nft -f -` in this namespace with CAP_NET_ADMIN; None on success, else why it failed."""
    if nft is None:
        return "nft (Debian package nftables) is not installed"
    rules_r, rules_w = os.pipe()
    errors_r, errors_w = os.pipe()
    os.write(rules_w, ruleset)  # a few hundred bytes: fits in the pipe
    os.close(rules_w)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(rules_r, 0)
            os.dup2(errors_w, 1)
            os.dup2(errors_w, 2)
            _keep_net_admin_across_exec()
            os.execv(nft, [nft, "-f", "-"])  # noqa: S606 - a fixed program, no shell
        finally:
            os._exit(127)
    os.close(rules_r)
    os.close(errors_w)
    output = b""
    while len(output) < 4000:
        chunk = os.read(errors_r, 4000)
        if not chunk:
            break
        output += chunk
    os.close(errors_r)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    text = " ".join(output.decode("utf-8", "replace").split())[:300]
    return f"the kernel refused corral's NAT rules (nft: {text or 'exit status ' + str(status)})"


def _keep_net_admin_across_exec() -> None:  # pragma: no cover - helper only
    """Make CAP_NET_ADMIN inheritable and ambient, so `nft` keeps it although our uid is not 0."""
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if _capget(header, data) != 0:
        return
    data[2] |= 1 << _CAP_NET_ADMIN  # inheritable, low word (effective, permitted, inheritable) x 2
    if _capset(header, data) != 0:
        return
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, _CAP_NET_ADMIN, 0, 0)


_RTM_NEWROUTE = 24
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLM_F_EXCL = 0x200
_NLM_F_CREATE = 0x400
_RT_TABLE_LOCAL = 255
_RTPROT_STATIC = 4
_RT_SCOPE_HOST = 254
_RTN_LOCAL = 2
_RTA_OIF = 4


def _add_local_default_route(family: int) -> None:  # pragma: no cover - helper only
    """`ip route add local default dev lo table local` over rtnetlink."""
    loopback = socket.if_nametoindex("lo")
    rtmsg = struct.pack(
        "=BBBBBBBBI", family, 0, 0, 0, _RT_TABLE_LOCAL, _RTPROT_STATIC, _RT_SCOPE_HOST, _RTN_LOCAL, 0
    )
    attribute = struct.pack("=HHI", 8, _RTA_OIF, loopback)
    body = rtmsg + attribute
    flags = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
    message = struct.pack("=IHHII", 16 + len(body), _RTM_NEWROUTE, flags, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as netlink:
        netlink.bind((0, 0))
        netlink.send(message)
        reply = netlink.recv(4096)
    if len(reply) >= 20:
        (code,) = struct.unpack_from("=i", reply, 16)
        if code not in (0, -errno.EEXIST):
            raise OSError(-code, f"adding the local default route: {os.strerror(-code)}")


_unshare = _libc.unshare
_unshare.argtypes = (ctypes.c_int,)
_unshare.restype = ctypes.c_int


def check_nat(timeout_s: float = 20.0) -> str | None:
    """Install corral's NAT rules in a throwaway user and network namespace: None when that works,
    else why not (for `corral doctor`; the sandbox then stays closed to clients that ignore the proxy)."""
    nft = find_nft()
    if nft is None:
        return "nft (Debian package nftables) is not installed"
    ruleset = nat_ruleset(0, ipv6=True).encode()
    read_end, write_end = os.pipe()
    uid, gid = os.geteuid(), os.getegid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child only
        os.close(read_end)
        verdict = "the probe failed"
        try:
            if _unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "cannot create a user and network namespace")
            for name, text in (
                ("setgroups", "deny"),
                ("uid_map", f"{uid} {uid} 1"),
                ("gid_map", f"{gid} {gid} 1"),
            ):
                with open(f"/proc/self/{name}", "w", encoding="ascii") as handle:
                    handle.write(text)
            verdict = _install_nat(nft, ruleset) or "ok"
        except BaseException as error:
            verdict = f"cannot probe NAT: {error}"
        finally:
            os.write(write_end, verdict.encode("utf-8", "replace")[:4000])
            os._exit(0)
    os.close(write_end)
    try:
        deadline = time.monotonic() + timeout_s
        answer = b""
        while time.monotonic() < deadline and readable([read_end], deadline - time.monotonic()):
            chunk = os.read(read_end, 4000)
            if not chunk:
                break
            answer += chunk
    finally:
        os.close(read_end)
        _reap(pid, time.monotonic() + 1.0)
    text = answer.decode("utf-8", "replace")
    if text == "ok":
        return None
    return text or "the NAT probe did not answer"
