"""Capability names and CRI-O's capability arithmetic (reimplemented, cited in CONTRACT.md)."""

from __future__ import annotations

from typing import Iterable

# linux/capability.h, in bit order (NET_RAW is bit 13)
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
CAP_NET_RAW = CAPABILITIES.index("NET_RAW")

# cri-o/cri-o v1.35.0 internal/config/capabilities/capabilities_linux.go Default()
CRIO_DEFAULT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL",
)


class CapabilityError(ValueError):
    pass


def canonical(name: str) -> str:
    """``net_raw`` / ``CAP_NET_RAW`` -> ``NET_RAW``; unknown names are refused as CRI-O does."""
    text = str(name).strip().upper()
    short = text[4:] if text.startswith("CAP_") else text
    if short not in CAPABILITIES:
        raise CapabilityError(f'unknown capability "CAP_{short}" to add')
    return short


def container_capabilities(default_caps: Iterable[str], add: Iterable[str] = (), drop: Iterable[str] = ()) -> list[str]:
    """The container's bounding/effective/permitted set, as CRI-O's SpecSetupCapabilities computes it.

    defaults + securityContext.capabilities.add - drop; ``ALL`` in add starts from
    every capability, ``ALL`` in drop from none (then the defaults are not added).
    Returned in bit order.
    """
    add = list(add or ())
    drop = list(drop or ())
    add_all = any(str(c).upper() == "ALL" for c in add)
    drop_all = any(str(c).upper() == "ALL" for c in drop)
    wanted: set[str] = set()
    if not add_all and not drop_all:
        add = add + list(default_caps)
    if add_all:
        wanted = set(CAPABILITIES)
    if drop_all:
        wanted = set()
    for cap in add:
        if str(cap).upper() != "ALL":
            wanted.add(canonical(cap))
    for cap in drop:
        if str(cap).upper() != "ALL":
            short = str(cap).strip().upper()
            wanted.discard(short[4:] if short.startswith("CAP_") else short)
    return [c for c in CAPABILITIES if c in wanted]


def mask(names: Iterable[str]) -> int:
    value = 0
    for name in names:
        value |= 1 << CAPABILITIES.index(canonical(name))
    return value


def names(value: int) -> list[str]:
    return [name for bit, name in enumerate(CAPABILITIES) if (value >> bit) & 1]


def setpriv_argv(caps: Iterable[str], setpriv: str = "setpriv") -> list[str]:
    """setpriv prefix giving a root process exactly ``caps`` after execve.

    For uid 0 the kernel sets permitted = effective = bounding | inheritable
    (file capabilities count as all ones), so: bounding = caps, inheritable and
    ambient empty (CRI-O clears both, CVE-2022-27652).
    """
    bounding = ",".join(["-all", *("+" + c.lower() for c in caps)])
    return [setpriv, "--inh-caps=-all", "--ambient-caps=-all", f"--bounding-set={bounding}", "--"]


def read_cap_masks(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("Cap"):
                key, value = line.split(":", 1)
                out[key] = int(value.strip(), 16)
    return out
