# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""Inventory and variable validation for kubelab, as plain data in, messages out.

Used by the ``kubelab_validate`` module (preflight role) and by the ``kubelab``
command line (``kubelab inventory check``). Nothing here touches a host.

The one entry point is :func:`validate`::

    problems = validate(
        groups={"all": ["cp1", "w1"], "control_plane": ["cp1"], "workers": ["w1"]},
        hostvars={"cp1": {"kubelab_node_ip": "192.168.1.10"}, "w1": {}},
        settings={"kubelab_kubernetes_version": "1.35",
                  "crio_default_capabilities": ["CHOWN", "NET_RAW"]},
        platforms={"cp1": {"os_release": "ID=rocky\\nVERSION_ID=8.10\\n"}},
    )
    # -> [] when everything is fine, else one line per problem.

Every message is one line and names the host or the variable it is about.
The function never raises on bad data: a wrong type is a problem message too.

This file must stay importable on Python 3.8 (no match statements, no
``X | Y`` type unions at runtime).
"""

from __future__ import absolute_import, division, print_function

import ipaddress
import re

__metaclass__ = type

# Linux capabilities as CRI-O and the kernel name them, without the CAP_
# prefix (capability.h, bits 0..40).
LINUX_CAPABILITIES = frozenset([
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
    "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
    "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
])

# (os_family, major version) pairs kubelab supports.
SUPPORTED_PLATFORMS = (("RedHat", "8"), ("RedHat", "9"), ("Debian", "12"))

# os-release IDs that belong to the RedHat family even without ID_LIKE.
_REDHAT_IDS = ("rhel", "centos", "rocky", "almalinux", "ol", "fedora")

CGROUP_V1_POLICIES = ("tolerate", "migrate")
SELINUX_MODES = ("enforcing", "permissive", "disabled")

_VERSION_RE = re.compile(r"^1\.(0|[1-9][0-9]*)$")
# Kubernetes node names: RFC 1123 subdomain (lowercase).
_DNS1123_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PORT_RE = re.compile(r"^([0-9]{1,5})(-([0-9]{1,5}))?/(tcp|udp|sctp)$")
_DROPIN_RE = re.compile(r"^[A-Za-z0-9._-]+\.conf$")

DEFAULT_SETTINGS = {
    "kubelab_control_plane_group": "control_plane",
    "kubelab_workers_group": "workers",
}


def parse_os_release(text):
    """Return the key/value pairs of an os-release file as a dict."""
    result = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result[key.strip()] = value
    return result


def platform_from_os_release(text):
    """Map os-release text to (os_family, major version, distribution id).

    The family names are Ansible's (``RedHat``, ``Debian``); unknown
    distributions return their own ID as the family so the message names it.
    """
    data = parse_os_release(text)
    ident = data.get("ID", "").lower()
    like = data.get("ID_LIKE", "").lower().split()
    major = data.get("VERSION_ID", "").split(".")[0]
    if ident in _REDHAT_IDS or "rhel" in like or "fedora" in like:
        family = "RedHat"
    elif ident == "debian":
        family = "Debian"
    else:
        family = ident or "unknown"
    return family, major, ident


def _valid_ip(value):
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def _network(name, value, problems):
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        problems.append("variable %s: %r is not a network address in CIDR form (%s)" % (name, value, exc))
    return None


def _check_groups(groups, settings, problems):
    cp_group = settings.get("kubelab_control_plane_group") or DEFAULT_SETTINGS["kubelab_control_plane_group"]
    wk_group = settings.get("kubelab_workers_group") or DEFAULT_SETTINGS["kubelab_workers_group"]
    control_planes = list(groups.get(cp_group) or [])
    workers = list(groups.get(wk_group) or [])
    if not control_planes:
        problems.append("inventory: group '%s' has no host; exactly one control-plane host is required" % cp_group)
    elif len(control_planes) > 1:
        problems.append("inventory: group '%s' has %d hosts (%s); exactly one control-plane host is required"
                        % (cp_group, len(control_planes), ", ".join(control_planes)))
    for host in control_planes:
        if host in workers:
            problems.append("host %s: in both groups '%s' and '%s'; a node is either the control plane or a worker"
                            % (host, cp_group, wk_group))
    return control_planes, workers


def _check_hosts(nodes, hostvars, problems):
    seen = {}
    for host in nodes:
        if not _DNS1123_RE.match(host) or len(host) > 253:
            problems.append("host %s: not a valid Kubernetes node name (lowercase RFC 1123: letters, digits, '-' and '.')"
                            % host)
        hvars = hostvars.get(host) or {}
        address = hvars.get("kubelab_node_ip")
        if address is None or address == "":
            continue
        if not _valid_ip(address):
            problems.append("host %s: kubelab_node_ip %r is not an IP address" % (host, address))
            continue
        canonical = str(ipaddress.ip_address(str(address)))
        if canonical in seen:
            problems.append("host %s: kubelab_node_ip %s is already used by host %s; node addresses must be unique"
                            % (host, canonical, seen[canonical]))
        else:
            seen[canonical] = host
    return seen


def _check_version(settings, problems):
    version = settings.get("kubelab_kubernetes_version")
    if version is None:
        return
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        problems.append("variable kubelab_kubernetes_version: %r is not of the form 1.NN (for example \"1.35\"); "
                        "quote it in YAML so 1.30 does not become 1.3" % (version,))


def _check_capabilities(settings, problems):
    if "crio_default_capabilities" not in settings:
        return
    caps = settings.get("crio_default_capabilities")
    if not isinstance(caps, (list, tuple)):
        problems.append("variable crio_default_capabilities: expected a list of capability names, got %r" % (caps,))
        return
    if not caps:
        problems.append("variable crio_default_capabilities: the list is empty; give the complete list "
                        "(a drop-in replaces CRI-O's whole default)")
    seen = set()
    for cap in caps:
        if not isinstance(cap, str):
            problems.append("variable crio_default_capabilities: %r is not a capability name" % (cap,))
            continue
        if cap.upper().startswith("CAP_"):
            problems.append("variable crio_default_capabilities: %r: write capability names without the CAP_ "
                            "prefix, as CRI-O does (%s)" % (cap, cap[4:].upper()))
        elif cap not in LINUX_CAPABILITIES:
            hint = " (capability names are upper case: %s)" % cap.upper() if cap.upper() in LINUX_CAPABILITIES else ""
            problems.append("variable crio_default_capabilities: %r is not a Linux capability%s" % (cap, hint))
        elif cap in seen:
            problems.append("variable crio_default_capabilities: %r is listed twice" % cap)
        seen.add(cap)


def _check_networks(settings, addresses, problems):
    nets = {}
    for name in ("kubelab_pod_network_cidr", "kubelab_service_cidr"):
        if name in settings:
            nets[name] = _network(name, settings[name], problems)
    pod = nets.get("kubelab_pod_network_cidr")
    svc = nets.get("kubelab_service_cidr")
    if pod is not None and svc is not None and pod.version == svc.version and pod.overlaps(svc):
        problems.append("variables kubelab_pod_network_cidr %s and kubelab_service_cidr %s overlap" % (pod, svc))
    dns = settings.get("kubelab_cluster_dns")
    if dns is not None:
        if not _valid_ip(dns):
            problems.append("variable kubelab_cluster_dns: %r is not an IP address" % (dns,))
        elif svc is not None and ipaddress.ip_address(str(dns)) not in svc:
            problems.append("variable kubelab_cluster_dns: %s is outside kubelab_service_cidr %s" % (dns, svc))
    for address, host in sorted(addresses.items()):
        ip = ipaddress.ip_address(address)
        for name, net in sorted(nets.items()):
            if net is not None and ip.version == net.version and ip in net:
                problems.append("host %s: kubelab_node_ip %s is inside %s %s" % (host, address, name, net))


def _check_choices(settings, problems):
    policy = settings.get("preflight_cgroup_v1_policy")
    if policy is not None and policy not in CGROUP_V1_POLICIES:
        problems.append("variable preflight_cgroup_v1_policy: %r is not one of %s"
                        % (policy, ", ".join(CGROUP_V1_POLICIES)))
    if policy == "migrate" and settings.get("preflight_allow_reboot") is not True:
        problems.append("variable preflight_cgroup_v1_policy: 'migrate' reboots cgroup v1 nodes; "
                        "set preflight_allow_reboot: true to allow it, or use 'tolerate'")
    mode = settings.get("node_prep_selinux_mode")
    if mode is not None and mode not in SELINUX_MODES:
        problems.append("variable node_prep_selinux_mode: %r is not one of %s" % (mode, ", ".join(SELINUX_MODES)))
    dropin = settings.get("crio_capabilities_dropin")
    if dropin is not None and (not isinstance(dropin, str) or not _DROPIN_RE.match(dropin)):
        problems.append("variable crio_capabilities_dropin: %r must be a plain file name ending in .conf "
                        "(a file directly in /etc/crio/crio.conf.d)" % (dropin,))
    for name in sorted(settings):
        if not (name.startswith("node_prep_firewalld_") and name.endswith("_ports")):
            continue
        ports = settings[name]
        if not isinstance(ports, (list, tuple)):
            problems.append("variable %s: expected a list like ['6443/tcp', '30000-32767/tcp'], got %r"
                            % (name, ports))
            continue
        for port in ports:
            match = _PORT_RE.match(str(port))
            bad = match is None
            if match:
                low = int(match.group(1))
                high = int(match.group(3) or low)
                bad = not (1 <= low <= high <= 65535)
            if bad:
                problems.append("variable %s: %r is not PORT/PROTO or LOW-HIGH/PROTO (tcp, udp, sctp)" % (name, port))


def _check_platforms(nodes, platforms, problems):
    supported = ", ".join("%s %s" % pair for pair in SUPPORTED_PLATFORMS)
    for host in nodes:
        info = platforms.get(host)
        if not info:
            continue
        if "os_release" in info:
            family, major, ident = platform_from_os_release(info["os_release"])
            name = "%s %s" % (ident or family, major)
        else:
            family = str(info.get("os_family", ""))
            major = str(info.get("distribution_major_version", ""))
            name = "%s %s" % (info.get("distribution", family), major)
        if (family, major) not in SUPPORTED_PLATFORMS:
            problems.append("host %s: unsupported operating system %s (family %s); supported: %s"
                            % (host, name.strip(), family or "unknown", supported))


def cgroup_plan(cgroup_version, kubernetes_version, policy="tolerate", allow_reboot=False):
    """Decide what to do about a node's cgroup version.

    :returns: dict ``action`` (``none``, ``tolerate`` or ``migrate``),
        ``fail_cgroupv1`` (value for the KubeletConfiguration field
        ``failCgroupV1``) and ``warning`` (text or None).
    """
    version = int(cgroup_version)
    if version == 2:
        return {"action": "none", "fail_cgroupv1": True, "warning": None}
    match = _VERSION_RE.match(str(kubernetes_version))
    refuses = match is not None and int(match.group(1)) >= 35
    if policy == "migrate" and allow_reboot:
        return {"action": "migrate", "fail_cgroupv1": True, "warning": None}
    warning = ("cgroup v1: Kubernetes %s kubelet refuses cgroup v1 by default; tolerating it with "
               "failCgroupV1: false (cgroup v1 is deprecated; set preflight_cgroup_v1_policy: migrate "
               "and preflight_allow_reboot: true to switch to cgroup v2)" % kubernetes_version) if refuses else (
        "cgroup v1: deprecated in Kubernetes; kubelet %s still accepts it" % kubernetes_version)
    return {"action": "tolerate", "fail_cgroupv1": False, "warning": warning}


def validate(groups, hostvars=None, settings=None, platforms=None):
    """Validate a kubelab inventory and its variables; return a list of problems.

    :param groups: mapping group name -> list of host names (Ansible's
        ``groups``). The control-plane and worker group names come from
        ``settings`` (``kubelab_control_plane_group``,
        ``kubelab_workers_group``; defaults ``control_plane``, ``workers``).
    :param hostvars: mapping host -> dict of that host's variables; only
        ``kubelab_node_ip`` is read (hosts without it are not address-checked).
    :param settings: mapping variable name -> value for the cluster-wide
        variables (``kubelab_*``, ``crio_*``, ``preflight_*``,
        ``node_prep_*``); variables that are absent are not checked.
    :param platforms: optional mapping host -> either ``{"os_release": TEXT}``
        (content of /etc/os-release) or Ansible facts ``{"os_family": ...,
        "distribution_major_version": ..., "distribution": ...}``. Hosts
        without an entry are not platform-checked.
    :returns: list of one-line messages, empty when everything is valid.
    """
    problems = []
    if not isinstance(groups, dict):
        return ["inventory: groups must be a mapping of group name to host list, got %r" % (groups,)]
    hostvars = hostvars or {}
    settings = settings or {}
    platforms = platforms or {}
    control_planes, workers = _check_groups(groups, settings, problems)
    nodes = []
    for host in control_planes + workers:
        if host not in nodes:
            nodes.append(host)
    addresses = _check_hosts(nodes, hostvars, problems)
    _check_version(settings, problems)
    _check_capabilities(settings, problems)
    _check_networks(settings, addresses, problems)
    _check_choices(settings, problems)
    _check_platforms(nodes, platforms, problems)
    return problems
