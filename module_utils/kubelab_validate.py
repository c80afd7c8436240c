# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""Validation of kubelab's whole input, as plain data in, messages out.

Used by the ``kubelab_validate`` module (the first play of
playbooks/preflight.yml, on the controller before any host is contacted, and
the preflight role) and by the ``kubelab`` command line (``kubelab inventory
check``). Nothing here touches a host.

The entry points::

    roles = load_roles("/path/to/kubelab/roles")   # argument specs + defaults
    problems = validate(
        groups={"all": ["cp1", "w1"], "control_plane": ["cp1"], "workers": ["w1"]},
        hostvars={"cp1": {"kubelab_node_ip": "192.168.1.10"}, "w1": {"crio_default_capabilities": [...]}},
        settings={"kubelab_kubernetes_version": "1.35"},
        platforms={"cp1": {"os_release": "ID=rocky\\nVERSION_ID=8.10\\n"}},
        roles=roles,
    )
    # -> [] when everything is fine, else one line per problem.

``hostvars`` holds every inventory host's own variables (host_vars and
group_vars as that host sees them) and ``settings`` the controller's
(localhost's: the workloads stage and the verify report run there). Each
host's view is checked: the role defaults, overlaid with ``settings``,
overlaid with the host's own variables. A problem found in every view is
reported once without a host; otherwise the message starts with the hosts it
concerns (``host w1, w2: ...``; ``localhost`` is the controller).

With ``roles`` (from :func:`load_roles`) every variable with a kubelab role
prefix is checked against the role's ``meta/argument_specs.yml`` (type,
choices, elements, sub-options) and unknown ones are reported as likely typos
with the closest known name. Semantic rules (versions, capabilities, networks,
ports, image references, regular expressions, durations, ...) come on top.

Every message is one line and names the host(s), the variable, the value and
what is allowed. The function never raises on bad data: a wrong type is a
problem message too.

This file must stay importable on Python 3.8 (no match statements, no
``X | Y`` type unions at runtime).
"""

from __future__ import absolute_import, division, print_function

import difflib
import ipaddress
import os
import re
import sys
import unicodedata

from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int

__metaclass__ = type

# Linux capabilities as CRI-O and the kernel name them, without the CAP_
# prefix (include/uapi/linux/capability.h, bits 0..40).
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

# Kubernetes minor versions the roles are written and tested for: kubeadm's
# v1beta4 configuration with failCgroupV1 (1.31+), the cgroup v1 policy of
# 1.35 (the kubelet refuses cgroup v1 by default), the manifests validated
# against 1.35's schemas, the stand-in packages of the offline lab (1.35).
# 1.34 is the previous minor (same configuration API, cgroup v1 accepted).
SUPPORTED_KUBERNETES_MINORS = ("1.34", "1.35")
# The newest Kubernetes minor release kubelab knows of (kubernetes-validate
# 1.37 ships its schemas); a higher one does not exist as far as kubelab can tell.
NEWEST_KUBERNETES_MINOR = 37

# os-release IDs that belong to the RedHat family even without ID_LIKE.
_REDHAT_IDS = ("rhel", "centos", "rocky", "almalinux", "ol", "fedora")

CGROUP_V1_POLICIES = ("tolerate", "migrate")
SELINUX_MODES = ("enforcing", "permissive", "disabled")

# The roles whose variables are validated, i.e. the variable prefixes
# (roles/<role>/, variables <role>_*). The preflight role's vars/main.yml
# selects the same names from hostvars (a unit test keeps them in step).
ROLE_PREFIXES = ("kubelab", "preflight", "node_prep", "crio", "kube_packages",
                 "control_plane", "workers", "workloads", "verify", "reset")
VARIABLE_PATTERN = "^(" + "|".join(ROLE_PREFIXES) + ")_"

# Facts the stages publish for later stages (docs/internals.md); they are not
# role options but are not typos either.
PUBLISHED_FACTS = frozenset([
    "kubelab_cgroup_version", "kubelab_kubelet_fail_cgroupv1", "kubelab_python_interpreter",
    "kubelab_node_container", "kubelab_node_ip", "crio_effective",
])

# Variables read by the plays on the controller (localhost): a value set only
# for an inventory host never reaches them.
CONTROLLER_ROLES = ("workloads", "verify")
# verify options that its node entry point (run on every node) reads.
_NODE_SIDE_VERIFY = ("verify_crio_source", "verify_node_services")

# The kube-apiserver's default --service-node-port-range; kubelab does not
# change it (kubernetes/kubernetes pkg/kubeapiserver/options, DefaultServiceNodePortRange).
APISERVER_NODE_PORT_RANGE = (30000, 32767)

_VERSION_RE = re.compile(r"^1\.(0|[1-9][0-9]*)$")
# Kubernetes object names (k8s.io/apimachinery pkg/util/validation):
# RFC 1123 label (<= 63), RFC 1123 subdomain (<= 253), RFC 1035 label (Services).
_DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# IANA service name (port names): <= 15, [-a-z0-9], a letter, no leading,
# trailing or double '-'.
_IANA_SVC_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# Label keys: optional DNS subdomain prefix + '/', name <= 63 of [A-Za-z0-9._-]
# starting and ending alphanumeric; values the same, possibly empty.
_QUALIFIED_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_PORT_RE = re.compile(r"^([0-9]{1,5})(-([0-9]{1,5}))?/(tcp|udp|sctp)$")
_DROPIN_RE = re.compile(r"^[A-Za-z0-9._-]+\.conf$")
_CAPABILITY_SYNTAX_RE = re.compile(r"^[A-Z_]+$")
# Go's time.ParseDuration (kubeadm token TTLs): "0" or one or more
# decimal numbers with a unit.
_GO_DURATION_RE = re.compile(r"^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|ms|s|m|h))+$")
_MODULE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_SYSCTL_KEY_RE = re.compile(r"^[a-z0-9_-]+([./][A-Za-z0-9_-]+)+$")
_PACKAGE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_UNIT_NAME_RE = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")
_URL_RE = re.compile(r"^(https?|file)://\S+$")
_UNIX_SOCKET_RE = re.compile(r"^unix:///\S+$")
_HOST_PORT_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")

# Image references, the grammar of github.com/distribution/reference
# (regexp.go, v0.6.0): [domain[:port]/]path[:tag][@digest].
_REF_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REF_DOMAIN = r"(?:%s(?:\.%s)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?" % (_REF_DOMAIN_COMPONENT, _REF_DOMAIN_COMPONENT)
_REF_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REF_NAME = r"(?:%s/)?%s(?:/%s)*" % (_REF_DOMAIN, _REF_PATH_COMPONENT, _REF_PATH_COMPONENT)
_REF_TAG = r"[\w][\w.-]{0,127}"
_REF_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE_RE = re.compile(r"^(%s)(?::%s)?(?:@%s)?$" % (_REF_NAME, _REF_TAG, _REF_DIGEST))
_IMAGE_NAME_MAX = 255

DEFAULT_SETTINGS = {
    "kubelab_control_plane_group": "control_plane",
    "kubelab_workers_group": "workers",
}

# preflight_gather_subset: the subsets whose facts later stages read.
_REQUIRED_GATHER_SUBSETS = ("distribution", "pkg_mgr", "service_mgr", "python", "platform", "network")

# kubeadm's networking limits (kubernetes/kubernetes cmd/kubeadm/app/constants/constants.go:
# MinimumAddressesInServiceSubnet, PodSubnetNodeMaskMaxDiff; validation.go getClusterNodeMask:
# the controller manager's default node-cidr-mask-size, which kubelab does not change).
SERVICE_SUBNET_MIN_ADDRESSES = 10
NODE_CIDR_MASK = {4: 24, 6: 64}
POD_SUBNET_NODE_MASK_MAX_DIFF = 16

# The flags the workers role always gives `kubeadm join` (roles/workers/tasks/join.yml);
# with --config kubeadm refuses every one of them (ValidateMixedArguments:
# "can not mix '--config' with arguments [...]"; --node-name, --ignore-preflight-errors
# and --skip-* are allowed with it).
WORKERS_JOIN_FLAGS = ("token", "discovery-token-ca-cert-hash", "cri-socket")
# kubeadm's flags that --config does not refuse (validation.go isAllowedFlag; --skip-* too).
_JOIN_CONFIG_ALLOWED = ("config", "ignore-preflight-errors", "dry-run", "kubeconfig", "node-name", "kubeconfig-dir",
                        "upload-certs", "print-join-command", "rootfs", "v", "log-file", "yes")
# Flags that kubelab gives `kubeadm join` itself, or that a kubelab variable sets.
_WORKERS_JOIN_OWN = {
    "token": "kubelab passes --token itself (a short-lived bootstrap token)",
    "discovery-token-ca-cert-hash": "kubelab passes it itself (the hash of the CA it reads on the control plane)",
    "cri-socket": "kubelab passes --cri-socket itself (kubelab_cri_socket)",
    "node-name": "the worker's node name is workers_node_name; set that instead",
    "ignore-preflight-errors": "kubelab passes it itself when checks are to be ignored; put the checks in "
                               "workers_ignore_preflight_errors (merged with preflight's plan into one flag)",
    "discovery-token": "kubelab discovers the cluster with --token and --discovery-token-ca-cert-hash itself",
    "tls-bootstrap-token": "kubelab bootstraps the kubelet with the --token it creates itself",
    "discovery-token-unsafe-skip-ca-verification": "kubelab pins the cluster CA with --discovery-token-ca-cert-hash; "
                                                   "skipping that verification is not allowed",
}
# Flags whose value is a secret: never shown in a message.
_JOIN_SECRET_FLAGS = ("token", "discovery-token", "tls-bootstrap-token")

# preflight_python_by_os: the OS keys preflight looks up, most specific first
# (module_utils/kubelab_interpreter.py os_keys: Distribution-MAJOR, Family-MAJOR,
# Family), and the keys of one entry.
_OS_KEY_DISTRIBUTIONS = ("CentOS", "Rocky", "AlmaLinux", "RedHat", "OracleLinux", "Debian")
PYTHON_BY_OS_KEYS = ("candidates", "package")

_MISSING = object()

# Variables that must have one value for the whole cluster.
CLUSTER_WIDE = ("kubelab_kubernetes_version", "kubelab_control_plane_group", "kubelab_workers_group",
                "kubelab_pod_network_cidr", "kubelab_service_cidr", "kubelab_cluster_dns", "kubelab_cluster_domain",
                "crio_version", "kube_packages_version",
                # read once for all nodes (kubelab_preflight_plan runs once)
                "preflight_python_by_os")


# --- os-release --------------------------------------------------------------


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


# --- the roles' argument specs and defaults ----------------------------------


def load_roles(roles_dir):
    """Read every kubelab role's ``meta/argument_specs.yml`` and
    ``defaults/main.yml`` under ``roles_dir``.

    :returns: dict role name -> ``{"argument_specs": {entry point: spec},
        "defaults": {name: value}}`` for the roles of :data:`ROLE_PREFIXES`
        that exist there.
    :raises ValueError: when a file is not valid YAML or PyYAML is missing.
    """
    try:
        import yaml
    except ImportError:  # pragma: no cover - Ansible itself needs PyYAML
        raise ValueError("PyYAML is not importable by %s; the controller's Python needs it" % sys.executable)
    roles = {}
    for role in ROLE_PREFIXES:
        base = os.path.join(roles_dir, role)
        if not os.path.isdir(base):
            continue
        entry = {"argument_specs": {}, "defaults": {}}
        for key, rel in (("argument_specs", ("meta", "argument_specs.yml")), ("defaults", ("defaults", "main.yml"))):
            path = os.path.join(base, *rel)
            if not os.path.isfile(path):
                continue
            try:
                with open(path) as handle:
                    data = yaml.safe_load(handle) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ValueError("cannot read %s: %s" % (path, exc))
            if key == "argument_specs":
                data = data.get("argument_specs") or {}
            entry[key] = data if isinstance(data, dict) else {}
        roles[role] = entry
    return roles


def known_options(roles):
    """Variable name -> (role, option spec) over every entry point of every
    role (the main entry point's definition wins)."""
    options = {}
    for role in sorted(roles or {}):
        specs = (roles[role] or {}).get("argument_specs") or {}
        for entry in sorted(specs, key=lambda e: (e != "main", e)):
            for name, spec in ((specs[entry] or {}).get("options") or {}).items():
                options.setdefault(name, (role, spec or {}))
    return options


def _templated(value):
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, (list, tuple)):
        return any(_templated(v) for v in value)
    if isinstance(value, dict):
        return any(_templated(k) or _templated(v) for k, v in value.items())
    return False


def role_defaults(roles):
    """Every role's literal defaults (templated ones left out: they are
    rendered during the run from other variables)."""
    out = {}
    for role in sorted(roles or {}):
        for name, value in ((roles[role] or {}).get("defaults") or {}).items():
            if not _templated(value):
                out.setdefault(name, value)
    return out


# --- small helpers -----------------------------------------------------------


def _show(value, limit=120):
    text = repr(value)
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return text


def _valid_ip(value):
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def special_ip(ip):
    """Why the API server refuses this address as a Service externalIP or a
    node/endpoint address, or None.

    kubernetes/kubernetes pkg/apis/core/validation/validation.go
    ValidateNonSpecialIP, with Go's net.IP tests: unspecified, loopback,
    link-local unicast, link-local multicast (224.0.0.0/24, ffX2::/16, Go's
    IsLinkLocalMulticast). An IPv4-mapped IPv6 address is tested as the IPv4
    address (Go's To4). Used by this validator and the workloads role's filter
    (roles/workloads/filter_plugins/workloads.py), so both say the same.
    """
    if not isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        ip = ipaddress.ip_address(str(ip).strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "unspecified (0.0.0.0, ::)"
    if ip.is_loopback:
        return "in the loopback range (127.0.0.0/8, ::1/128)"
    if ip.version == 4:
        if ip in ipaddress.ip_network("169.254.0.0/16"):
            return "in the link-local range (169.254.0.0/16, fe80::/10)"
        if ip in ipaddress.ip_network("224.0.0.0/24"):
            return "in the link-local multicast range (224.0.0.0/24, ff02::/10)"
    else:
        if ip in ipaddress.ip_network("fe80::/10"):
            return "in the link-local range (169.254.0.0/16, fe80::/10)"
        if ip.packed[0] == 0xFF and ip.packed[1] & 0x0F == 0x02:
            return "in the link-local multicast range (224.0.0.0/24, ff02::/10)"
    return None


_special_ip = special_ip


def _as_int(value):
    """The value as an int the way Ansible converts an int option, else None."""
    if isinstance(value, bool):
        return None
    try:
        return check_type_int(value)
    except (TypeError, ValueError):
        return None


def _as_float(value):
    if isinstance(value, bool):
        return None
    try:
        return check_type_float(value)
    except (TypeError, ValueError):
        return None


def _dns_label(value, maximum=63):
    return isinstance(value, str) and len(value) <= maximum and bool(_DNS1123_LABEL_RE.match(value))


def _dns_subdomain(value):
    return isinstance(value, str) and len(value) <= 253 and bool(_DNS1123_RE.match(value))


def _qualified_name(value):
    """A label key (k8s.io/apimachinery IsQualifiedName)."""
    if not isinstance(value, str) or not value:
        return False
    prefix, sep, name = value.rpartition("/")
    if sep and not _dns_subdomain(prefix):
        return False
    return len(name) <= 63 and bool(_QUALIFIED_NAME_RE.match(name))


def _label_value(value):
    return isinstance(value, str) and (value == "" or (len(value) <= 63 and bool(_QUALIFIED_NAME_RE.match(value))))


def _iana_svc_name(value):
    return (isinstance(value, str) and 0 < len(value) <= 15 and bool(_IANA_SVC_RE.match(value))
            and "--" not in value and bool(re.search("[a-z]", value)))


def image_reference_problem(value):
    """Why ``value`` is not an image reference, or None."""
    if not isinstance(value, str) or not value:
        return "is not an image reference"
    match = _IMAGE_RE.match(value)
    if match is None:
        if value != value.strip():
            return "is not an image reference (it has leading or trailing white space)"
        if re.search("[A-Z]", value.split("@")[0].rsplit(":", 1)[0].split("/", 1)[-1]):
            return "is not an image reference (repository names are lower case)"
        return "is not an image reference ([registry[:port]/]name[:tag][@sha256:digest])"
    if len(match.group(1)) > _IMAGE_NAME_MAX:
        return "is not an image reference (the name is longer than %d characters)" % _IMAGE_NAME_MAX
    return None


def _closest(name, candidates):
    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return match[0] if match else None


# --- type checks against argument specs --------------------------------------


_TYPE_WORDS = {"str": "a string", "path": "a path (string)", "int": "a whole number", "float": "a number",
               "bool": "true or false", "list": "a list", "dict": "a mapping", "raw": "any value"}
_ELEMENT_WORDS = {"str": "strings", "path": "paths", "int": "whole numbers", "float": "numbers",
                  "bool": "booleans", "list": "lists", "dict": "mappings", "raw": "values"}


def _type_problem(value, typ):
    """Why value does not fit an argument spec type (as Ansible's role argument
    validation would read it, but strict about lists and mappings: the roles
    use the value as given), or None."""
    typ = typ or "str"
    if typ == "raw":
        return None
    if typ in ("str", "path"):
        if isinstance(value, (list, tuple, dict, bool)) or value is None:
            return "is not %s" % _TYPE_WORDS[typ]
        return None
    if typ == "int":
        if isinstance(value, float) or _as_int(value) is None:
            return "is not a whole number"
        return None
    if typ == "float":
        return "is not a number" if _as_float(value) is None else None
    if typ == "bool":
        if isinstance(value, (list, tuple, dict)) or check_bool(value) is None:
            return "is not true or false"
        return None
    if typ == "list":
        return None if isinstance(value, (list, tuple)) else "is not a list"
    if typ == "dict":
        return None if isinstance(value, dict) else "is not a mapping"
    return None


def _spec_problems(name, value, spec, role, where=None):
    """Type, choices, elements and sub-options of one option. Returns texts."""
    label = where or ("variable %s" % name)
    typ = spec.get("type", "str")
    problem = _type_problem(value, typ)
    if problem:
        return ["%s: %s %s (the %s role's argument spec: %s)" % (label, _show(value), problem, role,
                                                                _TYPE_WORDS.get(typ, typ))]
    out = []
    choices = spec.get("choices")
    if choices and typ != "list" and value not in choices:
        out.append("%s: %s is not one of %s" % (label, _show(value), ", ".join(str(c) for c in choices)))
    if typ == "list":
        elements = spec.get("elements")
        for index, item in enumerate(value):
            item_where = "%s[%d]" % (label, index)
            if elements == "dict" and spec.get("options"):
                out.extend(_suboption_problems(item, spec.get("options"), role, item_where, name))
            elif elements:
                problem = _type_problem(item, elements)
                if problem:
                    out.append("%s: %s %s (the %s role's argument spec: a list of %s)"
                               % (item_where, _show(item), problem, role, _ELEMENT_WORDS.get(elements, elements)))
                elif choices and item not in choices:
                    out.append("%s: %s is not one of %s" % (item_where, _show(item), ", ".join(str(c) for c in choices)))
    elif typ == "dict" and spec.get("options"):
        out.extend(_suboption_problems(value, spec.get("options"), role, label, name))
    return out


def _suboption_problems(item, options, role, where, name):
    if not isinstance(item, dict):
        return ["%s: %s is not a mapping (the %s role's argument spec for %s: keys %s)"
                % (where, _show(item), role, name, ", ".join(sorted(options)))]
    out = []
    for key, sub in sorted(options.items()):
        sub = sub or {}
        if key not in item or item[key] is None:
            if sub.get("required"):
                out.append("%s: key %s is missing (required by the %s role's argument spec)" % (where, key, role))
            continue
        out.extend(_spec_problems(key, item[key], sub, role, where="%s.%s" % (where, key)))
    for key in sorted(k for k in item if k not in options):
        close = _closest(str(key), options)
        hint = "did you mean %s?" % close if close else "known keys: %s" % ", ".join(sorted(options))
        out.append("%s: unknown key %s (value %s); %s" % (where, _show(key), _show(item[key]), hint))
    return out


# --- semantic rules per variable ---------------------------------------------
#
# Each rule gets (value, view) - view: the effective variables of one host or
# of the controller - and returns message tails ("'x' is not ..."); the caller
# prefixes "variable NAME: ". Values reaching a rule have passed the spec type
# check (when a spec exists).


def _version_tails(value):
    if not isinstance(value, str) or not _VERSION_RE.match(value):
        return ["%s is not of the form 1.NN (for example \"1.35\"); quote it in YAML so 1.30 does not become 1.3"
                % _show(value)]
    minor = int(value.split(".")[1])
    supported = ", ".join(SUPPORTED_KUBERNETES_MINORS)
    if value in SUPPORTED_KUBERNETES_MINORS:
        return []
    if minor > NEWEST_KUBERNETES_MINOR:
        return ["%s is not a Kubernetes release (the newest minor kubelab knows of is 1.%d); supported: %s"
                % (_show(value), NEWEST_KUBERNETES_MINOR, supported)]
    return ["%s is a Kubernetes release this kubelab does not support; supported: %s" % (_show(value), supported)]


def _rule_kubernetes_version(value, view):
    return _version_tails(value)


def _rule_component_version(name):
    def rule(value, view):
        tails = _version_tails(value)
        if tails:
            return tails
        kube = view.get("kubelab_kubernetes_version")
        if isinstance(kube, str) and _VERSION_RE.match(kube) and kube != value:
            return ["%s differs from kubelab_kubernetes_version %s; %s must be the same minor version"
                    % (_show(value), kube, "CRI-O" if name.startswith("crio") else "kubelet, kubeadm and kubectl")]
        return []
    return rule


def _capability_tails(caps, required=None):
    if not isinstance(caps, (list, tuple)):
        return ["expected a list of capability names, got %s" % _show(caps)]
    tails = []
    if not caps:
        tails.append("the list is empty; give the complete list (a drop-in replaces CRI-O's whole default)")
    seen = set()
    for cap in caps:
        if not isinstance(cap, str):
            tails.append("%s is not a capability name" % _show(cap))
            continue
        if cap.upper().startswith("CAP_"):
            tails.append("%s: write capability names without the CAP_ prefix, as CRI-O does (%s)"
                         % (_show(cap), cap[4:].upper()))
        elif not _CAPABILITY_SYNTAX_RE.match(cap):
            hint = " (capability names are upper case: %s)" % cap.upper() if cap.upper() in LINUX_CAPABILITIES else ""
            tails.append("%s is not a capability name: only upper-case letters and '_' ([A-Z_]+), "
                         "one Linux capability per list entry%s" % (_show(cap), hint))
        elif cap not in LINUX_CAPABILITIES:
            close = _closest(cap, LINUX_CAPABILITIES)
            hint = "; did you mean %s?" % close if close else ""
            tails.append("%s is not a Linux capability (capability.h names CHOWN .. CHECKPOINT_RESTORE)%s"
                         % (_show(cap), hint))
        elif cap in seen:
            tails.append("%s is listed twice" % _show(cap))
        seen.add(cap)
    if required and required in LINUX_CAPABILITIES and caps and required not in caps:
        tails.append("%s lacks %s, which the verify stage needs (ping from the pods; verify_required_capability)"
                     % (_show(list(caps)), required))
    return tails


def _rule_crio_capabilities(value, view):
    return _capability_tails(value, view.get("verify_required_capability", "NET_RAW"))


def _rule_required_capability(value, view):
    if value not in LINUX_CAPABILITIES:
        return ["%s is not a Linux capability name (without CAP_, for example NET_RAW)" % _show(value)]
    return []


def _rule_dropin(value, view):
    if not isinstance(value, str) or not _DROPIN_RE.match(value):
        return ["%s must be a plain file name ending in .conf (a file directly in /etc/crio/crio.conf.d)"
                % _show(value)]
    return []


def _rule_network(name):
    def rule(value, view):
        try:
            net = ipaddress.ip_network(str(value), strict=True)
        except ValueError as exc:
            return ["%s is not a network address in CIDR form (%s)" % (_show(value), exc)]
        if name == "kubelab_service_cidr":
            # kube-apiserver: at most 20 host bits (cmd/kube-apiserver/app/options/validation.go)
            if net.max_prefixlen - net.prefixlen > 20:
                return ["%s is too large for the API server's service range (at most 20 host bits: /%d or longer)"
                        % (_show(value), net.max_prefixlen - 20)]
            # kubeadm ValidateIPNetFromString with MinimumAddressesInServiceSubnet
            if net.num_addresses < SERVICE_SUBNET_MIN_ADDRESSES:
                return ["%s is too small: kubeadm refuses it (\"subnet with %d address(es) is too small, the minimum "
                        "is %d\"; the DNS Service takes the tenth address); use /%d or larger"
                        % (_show(value), net.num_addresses, SERVICE_SUBNET_MIN_ADDRESSES, net.max_prefixlen - 4)]
        if name == "kubelab_pod_network_cidr":
            return _pod_network_tails(value, net, view)
        return []
    return rule


def _pod_network_tails(value, net, view):
    """kubeadm's ValidatePodSubnetNodeMask with the controller manager's
    default node mask (kubelab sets no node-cidr-mask-size), and room for one
    node range per inventory node (the range allocator's cidrset)."""
    node_mask = NODE_CIDR_MASK[net.version]
    if net.prefixlen > node_mask:
        return ["%s is smaller than one node's pod range: the controller manager gives every node a /%d and kubeadm "
                "refuses it (\"the size of pod subnet with mask %d is smaller than the size of node subnet with mask "
                "%d\"); use /%d or larger, for example /%d"
                % (_show(value), node_mask, net.prefixlen, node_mask, node_mask, node_mask - 8)]
    if node_mask - net.prefixlen > POD_SUBNET_NODE_MASK_MAX_DIFF:
        return ["%s is too large: kubeadm refuses it (\"pod subnet mask (%d) and node-mask (%d) difference is greater "
                "than %d\"); use /%d or longer"
                % (_show(value), net.prefixlen, node_mask, POD_SUBNET_NODE_MASK_MAX_DIFF,
                   node_mask - POD_SUBNET_NODE_MASK_MAX_DIFF)]
    nodes = len([h for h in (view.get("__nodes") or ()) if h])
    ranges = 2 ** (node_mask - net.prefixlen)
    if nodes > ranges:
        return ["%s holds %d node range(s) of /%d but the inventory has %d nodes: the controller manager gives every "
                "node its own /%d and a node without one gets no pod network (\"CIDR allocation failed; there are no "
                "remaining CIDRs left to allocate in the accepted range\"); use /%d or larger"
                % (_show(value), ranges, node_mask, nodes, node_mask, node_mask - (nodes - 1).bit_length())]
    return []


def _rule_cluster_dns(value, view):
    if not _valid_ip(value):
        return ["%s is not an IP address" % _show(value)]
    return []


def _rule_cluster_domain(value, view):
    if not _dns_subdomain(value):
        return ["%s is not a DNS domain (lower-case RFC 1123 labels separated by '.')" % _show(value)]
    return []


def _rule_node_ip(value, view):
    if value == "":
        return []
    if not _valid_ip(value):
        return ["%s is not an IP address" % _show(value)]
    why = _special_ip(ipaddress.ip_address(str(value)))
    if why:
        return ["%s cannot be a node address: it is %s" % (_show(value), why)]
    return []


def _rule_kubelet_extra_args(value, view):
    # one line of an EnvironmentFile, split at white space by the kubelet unit's $KUBELET_EXTRA_ARGS
    tails = []
    for arg in value:
        text = str(arg)
        bad = sorted(set(repr(c) for c in text if c.isspace() or unicodedata.category(c) in ("Cc", "Cf")))
        if not text or bad:
            tails.append("%s is not one kubelet argument (allowed: a flag like --v=2 with no white space or control "
                         "characters%s; the kubelet unit splits KUBELET_EXTRA_ARGS at white space)"
                         % (_show(arg), "; it has " + ", ".join(bad) if bad else ", not empty"))
    return tails


# firewalld's own interface check (firewalld/firewalld src/firewall/functions.py
# checkInterface, v0.9.11: no ' ', '/', '!', '*') plus the kernel's
# (dev_valid_name: shorter than IFNAMSIZ 16, no '/', ':' or white space, not
# '.' or '..').
_BAD_IFACE_CHARS = (" ", "\t", "\n", "/", ":", "!", "*")


def _firewalld_source_why(value):
    try:
        ipaddress.ip_network(value, strict=True)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def _firewalld_interface_why(value):
    if not isinstance(value, str) or not value:
        return "empty" if not value else "not a string"
    if len(value) > 15:
        return "longer than 15 characters"
    if value in (".", ".."):
        return "not a name"
    bad = sorted({c for c in value if c in _BAD_IFACE_CHARS})
    if bad:
        return "contains %s" % ", ".join(repr(c) for c in bad)
    if "+" in value[:-1]:
        return "'+' is allowed only at the end (a prefix match)"
    return None


def firewalld_source_tail(value):
    """None when VALUE is a firewalld zone source (a network with no host bits
    set, or one address), else what is wrong and what is allowed. Used by the
    validator (node_prep_firewalld_trusted_sources) and library/kubelab_firewalld.py."""
    why = _firewalld_source_why(value)
    if why is None:
        return None
    return ("%r is not a network in CIDR form or an address (%s); allowed: an IPv4 or IPv6 network with no host bits "
            "set, such as 10.244.0.0/16, or one address" % (value, why))


def firewalld_interface_tail(value):
    """None when VALUE is an interface name firewalld and the kernel accept,
    else what is wrong and what is allowed (validator and kubelab_firewalld)."""
    why = _firewalld_interface_why(value)
    if why is None:
        return None
    return ("%r is not an interface name (%s); allowed: 1 to 15 characters without space, '/', ':', '!' or '*', a "
            "final '+' for a prefix, such as cni0 or flannel.1" % (value, why))


def _rule_firewalld_zone_items(tail):
    def rule(value, view):
        return [t for t in (tail(v) for v in value) if t]
    return rule


def _rule_cri_socket(value, view):
    if not _UNIX_SOCKET_RE.match(str(value)):
        return ["%s is not a CRI endpoint of the form unix:///path/to/socket" % _show(value)]
    return []


def _rule_python_interpreter(value, view):
    if value == "":
        return []
    if not isinstance(value, str) or not value.startswith("/") or any(c.isspace() for c in value):
        return ["%s is not an absolute path to an interpreter (for example /usr/bin/python3.11), or empty to let "
                "preflight choose from the node's OS" % _show(value)]
    return []


def python_os_keys():
    """The keys preflight_python_by_os may have: every OS key
    (module_utils/kubelab_interpreter.py os_keys) of a supported platform."""
    keys = []
    for family, major in SUPPORTED_PLATFORMS:
        names = [d for d in _OS_KEY_DISTRIBUTIONS if (d == "Debian") == (family == "Debian")]
        for key in ["%s-%s" % (d, major) for d in names] + ["%s-%s" % (family, major), family]:
            if key not in keys:
                keys.append(key)
    return keys


def _rule_python_by_os(value, view):
    known = python_os_keys()
    tails = []
    for key in sorted(value, key=str):
        entry = value[key]
        where = "[%s]" % key
        if key not in known:
            close = _closest(str(key), known)
            hint = "did you mean %s?" % close if close else "for example Rocky-8, RedHat-8, RedHat-9, Debian"
            tails.append("key %s is not an OS key preflight looks up (Distribution-MAJOR, Family-MAJOR or Family of a "
                         "supported OS); %s" % (_show(key), hint))
        if not isinstance(entry, dict):
            tails.append("%s %s is not a mapping with candidates (a list of interpreter paths) and package"
                         % (where, _show(entry)))
            continue
        for sub in sorted(entry, key=str):
            if sub not in PYTHON_BY_OS_KEYS:
                close = _closest(str(sub), PYTHON_BY_OS_KEYS)
                hint = "did you mean %s?" % close if close else "known keys: %s" % ", ".join(PYTHON_BY_OS_KEYS)
                tails.append("%s unknown key %s (value %s); %s" % (where, _show(sub), _show(entry[sub], 60), hint))
        candidates = entry.get("candidates")
        if candidates is not None:
            if not isinstance(candidates, (list, tuple)):
                tails.append("%s candidates %s is not a list of interpreter paths" % (where, _show(candidates)))
            else:
                for path in candidates:
                    if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
                        tails.append("%s candidates: %s is not an absolute path to an interpreter (for example "
                                     "/usr/bin/python3.11)" % (where, _show(path)))
        package = entry.get("package")
        if package is not None and (not isinstance(package, str) or not _PACKAGE_NAME_RE.match(package)):
            tails.append("%s package %s is not a package name (the package that provides the first candidate)"
                         % (where, _show(package)))
    return tails


def _flag_name(arg):
    """'--token=x' or '--token x' -> 'token'; not a long flag -> None."""
    if not isinstance(arg, str) or not arg.startswith("--") or len(arg) < 3:
        return None
    return re.split(r"[=\s]", arg[2:], maxsplit=1)[0]


def _shown_arg(value, index):
    """The argument as given (with the value that follows a bare flag), a
    secret's value (a token) left out."""
    arg = value[index]
    flag = _flag_name(arg)
    if flag in _JOIN_SECRET_FLAGS:
        return "'--%s ...'" % flag
    if "=" not in arg and index + 1 < len(value) and _flag_name(value[index + 1]) is None:
        arg = "%s %s" % (arg, value[index + 1])
    return _show(arg, 160)


def _rule_join_extra_args(value, view):
    tails = []
    flags = [_flag_name(a) for a in value]
    if "config" in flags:
        # kubeadm ValidateMixedArguments lists the flags it refuses in name order
        mixed = sorted(set(WORKERS_JOIN_FLAGS) | set(f for f in flags if f and f not in _JOIN_CONFIG_ALLOWED
                                                      and not f.startswith("skip-")))
        tails.append("%s: kubelab joins with flags (%s) and kubeadm refuses --config with them (\"can not mix "
                     "'--config' with arguments [%s]\"); remove --config" % (
                         _shown_arg(value, flags.index("config")), ", ".join("--" + f for f in WORKERS_JOIN_FLAGS),
                         " ".join(mixed)))
    seen = set()
    for index, flag in enumerate(flags):
        if flag in _WORKERS_JOIN_OWN and flag not in seen:
            seen.add(flag)
            tails.append("%s: %s; remove it" % (_shown_arg(value, index), _WORKERS_JOIN_OWN[flag]))
    return tails


def _rule_group_name(value, view):
    if not isinstance(value, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
        return ["%s is not an Ansible group name (letters, digits and '_', not starting with a digit)" % _show(value)]
    return []


def _rule_absolute_path(value, view):
    if not isinstance(value, str) or not value.startswith("/"):
        return ["%s is not an absolute path (it names a file on the nodes)" % _show(value)]
    return []


def _rule_url(value, view):
    if not isinstance(value, str) or not _URL_RE.match(value):
        return ["%s is not a URL (http://, https:// or file://)" % _show(value)]
    return []


def _rule_selinux(value, view):
    if value not in SELINUX_MODES:
        return ["%s is not one of %s" % (_show(value), ", ".join(SELINUX_MODES))]
    return []


def _rule_cgroup_policy(value, view):
    if value not in CGROUP_V1_POLICIES:
        return ["%s is not one of %s" % (_show(value), ", ".join(CGROUP_V1_POLICIES))]
    if value == "migrate" and check_bool(view.get("preflight_allow_reboot", False)) is not True:
        return ["'migrate' reboots cgroup v1 nodes; set preflight_allow_reboot: true to allow it, or use 'tolerate'"]
    return []


def check_bool(value):
    try:
        return check_type_bool(value)
    except (TypeError, ValueError):
        return None


def _rule_gather_subset(value, view):
    missing = [s for s in _REQUIRED_GATHER_SUBSETS if s not in value]
    if missing:
        return ["%s lacks %s; later stages read the facts of %s" % (_show(value), ", ".join(missing),
                                                                    ", ".join(_REQUIRED_GATHER_SUBSETS))]
    return []


def _rule_firewalld_ports(value, view):
    if not isinstance(value, (list, tuple)):
        return ["expected a list like ['6443/tcp', '30000-32767/tcp'], got %s" % _show(value)]
    tails = []
    for port in value:
        match = _PORT_RE.match(str(port))
        bad = match is None
        if match:
            low = int(match.group(1))
            high = int(match.group(3) or low)
            bad = not (1 <= low <= high <= 65535)
        if bad:
            tails.append("%s is not PORT/PROTO or LOW-HIGH/PROTO (tcp, udp, sctp; ports 1-65535, LOW <= HIGH)"
                         % _show(port))
    return tails


def _rule_modules(value, view):
    return ["%s is not a kernel module name ([A-Za-z0-9_-]+)" % _show(m) for m in value
            if not isinstance(m, str) or not _MODULE_NAME_RE.match(m)]


def _rule_sysctls(value, view):
    tails = []
    for key, setting in value.items():
        if not isinstance(key, str) or not _SYSCTL_KEY_RE.match(key):
            tails.append("key %s is not a sysctl name (for example net.ipv4.ip_forward)" % _show(key))
        elif isinstance(setting, (list, dict)) or setting is None:
            tails.append("%s = %s: a sysctl value is a number or a string" % (key, _show(setting)))
    return tails


def _rule_packages(value, view):
    tails = [] if value else ["the list is empty; kubelab installs kubelet, kubeadm and kubectl"]
    tails.extend("%s is not a package name" % _show(p) for p in value
                 if not isinstance(p, str) or not _PACKAGE_NAME_RE.match(p))
    return tails


def _port_tail(value, what="a port"):
    number = _as_int(value)
    if number is None or isinstance(value, float) or not 1 <= number <= 65535:
        return ["%s is not %s (1-65535)" % (_show(value), what)]
    return []


def _rule_port(value, view):
    return _port_tail(value)


def _rule_endpoint(value, view):
    match = _HOST_PORT_RE.match(str(value))
    if not match or not 1 <= int(match.group(2)) <= 65535:
        return ["%s is not HOST:PORT (an address or DNS name and a port 1-65535)" % _show(value)]
    return []


def _rule_cert_sans(value, view):
    tails = []
    for san in value:
        text = str(san)
        wildcard = text.startswith("*.") and _dns_subdomain(text[2:])
        if not (_valid_ip(text) or _dns_subdomain(text) or wildcard):
            tails.append("%s is neither an IP address nor a DNS name" % _show(san))
    return tails


def _rule_node_name(value, view):
    if not _dns_subdomain(value):
        return ["%s is not a valid Kubernetes node name (lower-case RFC 1123: letters, digits, '-' and '.')"
                % _show(value)]
    return []


def _rule_ignore_preflight_errors(value, view):
    # control_plane_ignore_preflight_errors and workers_ignore_preflight_errors: one
    # rule. kubeadm refuses 'all' next to a named check (ValidateIgnorePreflightErrors),
    # but kubelab passes only 'all' then (module_utils/kubelab_sysverify.py
    # ignored_preflight_errors), so [all, Mem] is fine; each entry is one check name,
    # as the names are joined with ',' into --ignore-preflight-errors.
    tails = []
    for name in value:
        text = str(name)
        if not text.strip() or "," in text or any(c.isspace() or unicodedata.category(c) == "Cc" for c in text):
            tails.append("%s is not one preflight check name (allowed: a name like NumCPU, Mem, Swap or "
                         "SystemVerification, or all; no ',', white space or control characters: one name per "
                         "list entry)" % _show(name))
    return tails


def _rule_duration(value, view):
    text = str(value)
    if not _GO_DURATION_RE.match(text):
        return ["%s is not a duration like 15m, 1h30m or 10m0s (Go's time.ParseDuration)" % _show(value)]
    return []


def _rule_namespace(value, view):
    if not _dns_label(value):
        return ["%s is not a namespace name (lower-case RFC 1123 label: a-z, 0-9 and '-', at most 63)" % _show(value)]
    return []


def _rule_object_name(value, view):
    if not _dns_label(value):
        return ["%s is not a Deployment/container name (lower-case RFC 1123 label: a-z, 0-9 and '-', at most 63)"
                % _show(value)]
    return []


def _rule_service_name(value, view):
    if not isinstance(value, str) or len(value) > 63 or not _DNS1035_RE.match(value):
        return ["%s is not a Service name (RFC 1035 label: a lower-case letter, then a-z, 0-9 and '-', "
                "at most 63)" % _show(value)]
    return []


def _rule_image(value, view):
    problem = image_reference_problem(value)
    return ["%s %s" % (_show(value), problem)] if problem else []


def _rule_labels(value, view):
    tails = []
    if not value:
        tails.append("the mapping is empty; the selector needs at least one label")
    for key, label in value.items():
        if not _qualified_name(key):
            tails.append("label key %s is not a label name ([prefix/]name: a-z, A-Z, 0-9, '-', '_', '.', "
                         "at most 63)" % _show(key))
        if not _label_value(label):
            tails.append("label %s: value %s is not a label value (a-z, A-Z, 0-9, '-', '_', '.', at most 63; "
                         "quote numbers and booleans)" % (key, _show(label)))
    return tails


def _rule_annotation_key(value, view):
    if not _qualified_name(value):
        return ["%s is not an annotation key ([prefix/]name)" % _show(value)]
    return []


def _rule_command(value, view):
    return [] if value else ["the list is empty; the busybox container needs a command that keeps it running"]


def _rule_node_port_range(value, view):
    if len(value) != 2 or any(_as_int(v) is None for v in value):
        return ["%s is not [FIRST, LAST]" % _show(value)]
    low, high = _as_int(value[0]), _as_int(value[1])
    api_low, api_high = APISERVER_NODE_PORT_RANGE
    if not low <= high:
        return ["%s: FIRST is above LAST" % _show(value)]
    if low < api_low or high > api_high:
        return ["%s is outside %d-%d, the API server's --service-node-port-range (kubelab does not change it)"
                % (_show(value), api_low, api_high)]
    return []


def _rule_external_ips(value, view):
    tails = []
    for item in value:
        text = str(item).strip()
        if not _valid_ip(text):
            tails.append("%s is not an IP address (externalIPs are IPv4 or IPv6 addresses: no names, no /prefix)"
                         % _show(item))
            continue
        why = _special_ip(ipaddress.ip_address(text))
        if why:
            tails.append("%s cannot be an externalIP: Kubernetes refuses addresses %s" % (_show(item), why))
    return tails


def _rule_services(value, view):
    tails = []
    names = {}
    low, high = APISERVER_NODE_PORT_RANGE
    rng = view.get("workloads_node_port_range")
    if isinstance(rng, (list, tuple)) and len(rng) == 2 and all(_as_int(v) is not None for v in rng):
        low, high = _as_int(rng[0]), _as_int(rng[1])
    fixed = {}
    for index, svc in enumerate(value):
        if not isinstance(svc, dict):
            continue  # reported by the spec check
        where = "[%d]" % index
        name = svc.get("name")
        if name is not None:
            where = "[%d] (%s)" % (index, name)
            tails.extend("%s name %s" % (where, t) for t in _rule_service_name(name, view))
            if name in names:
                tails.append("%s name %s is used twice (entries %d and %d)" % (where, _show(name), names[name], index))
            names.setdefault(name, index)
        port = svc.get("port")
        if port is not None:
            tails.extend("%s port %s" % (where, t) for t in _port_tail(port))
        target = svc.get("target_port")
        if isinstance(target, str) and not target.isdigit():
            if not _iana_svc_name(target):
                tails.append("%s target_port %s is neither a port (1-65535) nor a port name (IANA service name: "
                             "a-z, 0-9, '-', a letter, at most 15)" % (where, _show(target)))
        elif target is not None:
            tails.extend("%s target_port %s" % (where, t) for t in _port_tail(target, "a port or a port name"))
        port_name = svc.get("port_name")
        if port_name is not None and not _iana_svc_name(port_name):
            tails.append("%s port_name %s is not a port name (IANA service name: a-z, 0-9, '-', a letter, "
                         "at most 15)" % (where, _show(port_name)))
        node_port = svc.get("node_port")
        if node_port is not None:
            number = _as_int(node_port)
            kind = svc.get("type") or "ClusterIP"
            if kind not in ("NodePort", "LoadBalancer"):
                tails.append("%s node_port %s is set on a %s Service; only NodePort and LoadBalancer "
                             "Services have one" % (where, _show(node_port), kind))
            elif number is None or not low <= number <= high:
                tails.append("%s node_port %s is outside the nodePort range %d-%d (workloads_node_port_range)"
                             % (where, _show(node_port), low, high))
            elif number in fixed:
                tails.append("%s node_port %d is already used by %s; nodePorts must be unique"
                             % (where, number, fixed[number]))
            else:
                fixed[number] = svc.get("name") or "entry %d" % index
    return tails


def _rule_replicas(name):
    def rule(value, view):
        number = _as_int(value)
        if number is None or number < 1:
            return ["%s is not a replica count (1 or more)" % _show(value)]
        if (name == "workloads_nginx_replicas" and number < 2
                and check_bool(view.get("verify_data_plane", True)) is not False):
            return ["%s: the verify stage's spread check needs at least 2 nginx pods (or verify_data_plane: false)"
                    % _show(value)]
        return []
    return rule


def _rule_regex(value, view):
    try:
        re.compile(value)
    except (re.error, TypeError) as exc:
        return ["%s is not a regular expression (Python re: %s)" % (_show(value), exc)]
    return []


def _rule_fraction(open_top):
    def rule(value, view):
        number = _as_float(value)
        if number is None or number <= 0 or number > 1 or (open_top and number >= 1):
            return ["%s is not a fraction %s" % (_show(value), "strictly between 0 and 1" if open_top
                                                 else "above 0 and at most 1")]
        return []
    return rule


def _rule_inventory_hosts(value, view):
    known = view.get("__hosts") or ()
    return ["%s is not a host of the inventory" % _show(h) for h in value if h not in known]


def _rule_unit_names(value, view):
    return ["%s is not a systemd unit name (without .service)" % _show(u) for u in value
            if not isinstance(u, str) or not _UNIT_NAME_RE.match(u) or u.endswith(".service")]


def _rule_cleanup_paths(value, view):
    tails = []
    for path in value:
        text = str(path)
        if not text.startswith("/"):
            tails.append("%s is not an absolute path" % _show(path))
        elif os.path.normpath(text).count("/") < 2 and os.path.normpath(text) in ("/", "/etc", "/var", "/usr",
                                                                                   "/home", "/root", "/opt"):
            tails.append("%s is a top-level directory; reset would delete it" % _show(path))
    return tails


RULES = {
    "kubelab_kubernetes_version": _rule_kubernetes_version,
    "crio_version": _rule_component_version("crio_version"),
    "kube_packages_version": _rule_component_version("kube_packages_version"),
    "kubelab_control_plane_group": _rule_group_name,
    "kubelab_workers_group": _rule_group_name,
    "kubelab_pod_network_cidr": _rule_network("kubelab_pod_network_cidr"),
    "kubelab_service_cidr": _rule_network("kubelab_service_cidr"),
    "kubelab_cluster_dns": _rule_cluster_dns,
    "kubelab_cluster_domain": _rule_cluster_domain,
    "kubelab_node_ip": _rule_node_ip,
    "kube_packages_kubelet_node_ip": _rule_node_ip,
    "kube_packages_kubelet_extra_args": _rule_kubelet_extra_args,
    "kubelab_cri_socket": _rule_cri_socket,
    "crio_default_capabilities": _rule_crio_capabilities,
    "crio_capabilities_dropin": _rule_dropin,
    "crio_config_file": _rule_absolute_path,
    "crio_config_dir": _rule_absolute_path,
    "crio_backup_dir": _rule_absolute_path,
    "preflight_cgroup_v1_policy": _rule_cgroup_policy,
    "preflight_python_interpreter": _rule_python_interpreter,
    "preflight_python_by_os": _rule_python_by_os,
    "preflight_gather_subset": _rule_gather_subset,
    "node_prep_selinux_mode": _rule_selinux,
    "node_prep_modules": _rule_modules,
    "node_prep_firewalld_trusted_sources": _rule_firewalld_zone_items(firewalld_source_tail),
    "node_prep_firewalld_trusted_interfaces": _rule_firewalld_zone_items(firewalld_interface_tail),
    "node_prep_modules_file": _rule_absolute_path,
    "node_prep_sysctls": _rule_sysctls,
    "node_prep_sysctl_file": _rule_absolute_path,
    "kube_packages_names": _rule_packages,
    "control_plane_api_port": _rule_port,
    "control_plane_endpoint": _rule_endpoint,
    "control_plane_cert_sans": _rule_cert_sans,
    "control_plane_node_name": _rule_node_name,
    "control_plane_ignore_preflight_errors": _rule_ignore_preflight_errors,
    "workers_ignore_preflight_errors": _rule_ignore_preflight_errors,
    "control_plane_init_token_ttl": _rule_duration,
    "control_plane_kubeadm_config": _rule_absolute_path,
    "control_plane_state_dir": _rule_absolute_path,
    "workers_token_ttl": _rule_duration,
    "workers_node_name": _rule_node_name,
    "workers_join_extra_args": _rule_join_extra_args,
    "workloads_namespace": _rule_namespace,
    "workloads_nginx_name": _rule_object_name,
    "workloads_busybox_name": _rule_object_name,
    "workloads_nginx_replicas": _rule_replicas("workloads_nginx_replicas"),
    "workloads_busybox_replicas": _rule_replicas("workloads_busybox_replicas"),
    "workloads_nginx_image": _rule_image,
    "workloads_busybox_image": _rule_image,
    "workloads_nginx_labels": _rule_labels,
    "workloads_busybox_labels": _rule_labels,
    "workloads_nginx_container_port": _rule_port,
    "workloads_busybox_command": _rule_command,
    "workloads_services": _rule_services,
    "workloads_node_port_range": _rule_node_port_range,
    "workloads_external_ips": _rule_external_ips,
    "workloads_crio_capabilities": _rule_crio_capabilities,
    "workloads_capability_digest_annotation": _rule_annotation_key,
    "verify_required_capability": _rule_required_capability,
    "verify_body_pattern": _rule_regex,
    "verify_namespace": _rule_namespace,
    "verify_dns_service": _rule_service_name,
    "verify_dns_namespace": _rule_namespace,
    "verify_probe_selector": _rule_labels,
    "verify_node_hosts": _rule_inventory_hosts,
    "verify_node_services": _rule_unit_names,
    "verify_spread_min_fair_fraction": _rule_fraction(open_top=False),
    "verify_spread_max_false_failure": _rule_fraction(open_top=True),
    "reset_cleanup_paths": _rule_cleanup_paths,
}
_FIREWALLD_PORTS = re.compile(r"^node_prep_firewalld_.*_ports$")
_URL_NAMES = re.compile(r"^(crio|kube_packages|preflight)_.*_url$")

# Numbers by the meaning of their name (int and float options only).
_NUMBER_RULES = (
    (re.compile(r"_(timeout|interval)$"), lambda n: n > 0, "above 0"),
    (re.compile(r"_(retries|attempts|workers)$"), lambda n: n >= 1, "1 or more"),
    (re.compile(r"_(delay|wait)$"), lambda n: n >= 0, "0 or more"),
    (re.compile(r"_spread_requests$"), lambda n: n >= 0, "0 (derived from the failure budget) or more"),
)


def _number_tails(name, value, typ):
    if typ not in ("int", "float"):
        return []
    number = _as_int(value) if typ == "int" else _as_float(value)
    if number is None:
        return []
    for pattern, good, words in _NUMBER_RULES:
        if pattern.search(name):
            return [] if good(number) else ["%s is out of range (allowed: %s)" % (_show(value), words)]
    return []


def _variable_problems(name, value, view, options):
    """Problems of one explicitly set variable in one view (texts)."""
    label = "variable %s" % name
    known = options.get(name)
    texts = []
    typ = None
    if known is not None:
        role, spec = known
        typ = spec.get("type", "str")
        texts = _spec_problems(name, value, spec, role)
        if texts and (_type_problem(value, typ) or spec.get("choices")):
            return texts  # the rules below expect the spec's type (and choices)
    tails = []
    rule = RULES.get(name)
    if rule is None and _FIREWALLD_PORTS.match(name):
        rule = _rule_firewalld_ports
    if rule is None and _URL_NAMES.match(name) and not _templated(value):
        rule = _rule_url
    if rule is not None:
        try:
            tails.extend(rule(value, view))
        except (TypeError, AttributeError, ValueError) as exc:  # a shape the spec did not describe
            tails.append("%s cannot be read (%s)" % (_show(value), exc))
    if typ is not None:
        tails.extend(_number_tails(name, value, typ))
    return texts + ["%s: %s" % (label, tail) for tail in tails]


def _cross_problems(view, set_names, controller):
    """Rules that tie several variables together, on one view's effective
    values, as (text, controller_only) pairs."""
    out = []
    pod = _net(view.get("kubelab_pod_network_cidr"))
    svc = _net(view.get("kubelab_service_cidr"))
    involved = set_names.intersection

    if pod is not None and svc is not None and pod.version == svc.version and pod.overlaps(svc) \
            and involved(("kubelab_pod_network_cidr", "kubelab_service_cidr")):
        out.append("variables kubelab_pod_network_cidr %s and kubelab_service_cidr %s overlap" % (pod, svc))
    dns = view.get("kubelab_cluster_dns")
    if svc is not None and dns is not None and _valid_ip(dns) and involved(("kubelab_cluster_dns",
                                                                          "kubelab_service_cidr")):
        ip = ipaddress.ip_address(str(dns))
        if ip.version != svc.version or ip not in svc:
            out.append("variable kubelab_cluster_dns: %s is outside kubelab_service_cidr %s" % (dns, svc))
        elif ip == svc.network_address or ip == svc.network_address + 1:
            out.append("variable kubelab_cluster_dns: %s is the %s address of kubelab_service_cidr %s; the API "
                       "server keeps it (the kubernetes Service takes the first address), use for example %s"
                       % (dns, "network" if ip == svc.network_address else "first", svc, svc.network_address + 10))
    node_ip = view.get("kubelab_node_ip")
    if node_ip and _valid_ip(node_ip) and "kubelab_node_ip" in set_names:
        ip = ipaddress.ip_address(str(node_ip))
        for name, net in (("kubelab_pod_network_cidr", pod), ("kubelab_service_cidr", svc)):
            if net is not None and ip.version == net.version and ip in net:
                out.append("variable kubelab_node_ip: %s is inside %s %s" % (node_ip, name, net))
    out.extend(_cni_checksum_problems(view, set_names))
    out = [(text, False) for text in out]
    if controller:
        out.extend((text, True) for text in _controller_cross_problems(view, set_names, pod, svc))
    return out


def _cni_checksum_problems(view, set_names):
    """A changed control_plane_cni_manifest URL with the default checksum would
    fail get_url's checksum test at stage 3, naming no variable. A path on the
    controller is read, not downloaded: the control_plane role checks no
    checksum for it (roles/control_plane/vars/main.yml __control_plane_cni_is_url)."""
    defaults = view.get("__defaults") or {}
    url, checksum = "control_plane_cni_manifest", "control_plane_cni_manifest_checksum"
    default_url, default_sum = defaults.get(url), defaults.get(checksum)
    if url not in set_names or not default_sum or default_url is None:
        return []
    if not re.match(r"^https?://", str(view.get(url) or "")):
        return []
    if view.get(url) == default_url or view.get(checksum) != default_sum:
        return []
    return ["variables control_plane_cni_manifest %s and control_plane_cni_manifest_checksum: the manifest is not the "
            "default %s but the checksum is still the default one's (%s), so its download would fail the checksum "
            "test; set control_plane_cni_manifest_checksum to the new manifest's 'sha256:' + its sha256sum, or to '' "
            "to download it unchecked" % (_show(view.get(url)), default_url, default_sum)]


def _controller_cross_problems(view, set_names, pod, svc):
    out = []
    involved = set_names.intersection
    ips = view.get("workloads_external_ips")
    if isinstance(ips, (list, tuple)) and involved(("workloads_external_ips", "kubelab_pod_network_cidr",
                                                    "kubelab_service_cidr")):
        for item in ips:
            if not _valid_ip(str(item).strip()):
                continue
            ip = ipaddress.ip_address(str(item).strip())
            for name, net in (("kubelab_pod_network_cidr", pod), ("kubelab_service_cidr", svc)):
                if net is not None and ip.version == net.version and ip in net:
                    out.append("variable workloads_external_ips: %s is inside %s %s; externalIPs must reach a "
                               "node from outside the cluster" % (item, name, net))
    verify_ns = view.get("verify_namespace")
    workloads_ns = view.get("workloads_namespace")
    if isinstance(verify_ns, str) and isinstance(workloads_ns, str) and verify_ns != workloads_ns \
            and involved(("verify_namespace", "workloads_namespace")):
        out.append("variables verify_namespace %r and workloads_namespace %r differ; verify looks for the test "
                   "workloads in verify_namespace" % (verify_ns, workloads_ns))
    selector = view.get("verify_probe_selector")
    labels = view.get("workloads_busybox_labels")
    if isinstance(selector, dict) and isinstance(labels, dict) \
            and involved(("verify_probe_selector", "workloads_busybox_labels")):
        missing = dict((k, v) for k, v in selector.items() if labels.get(k) != v)
        if missing:
            out.append("variable verify_probe_selector: %s does not select the busybox pods (workloads_busybox_labels "
                       "%s); the in-cluster checks would find no probe pod" % (_show(selector), _show(labels)))
    return out


def _net(value):
    if value is None:
        return None
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return None


# --- the inventory's shape ---------------------------------------------------


def _describe_name(host):
    if host == "":
        return "an empty name"
    if "\t" in host:
        return "a TAB in its name %r (an indentation TAB pasted into the name?)" % host
    if host != host.strip() or any(c.isspace() for c in host):
        return "white space in its name %r" % host
    return None


def _check_groups(groups, settings, problems):
    cp_group = settings.get("kubelab_control_plane_group") or DEFAULT_SETTINGS["kubelab_control_plane_group"]
    wk_group = settings.get("kubelab_workers_group") or DEFAULT_SETTINGS["kubelab_workers_group"]
    for group in sorted(groups):
        hosts = groups[group]
        if not isinstance(hosts, (list, tuple)):
            problems.append("inventory: group %r is %s, not a list of hosts" % (group, _show(hosts)))
    control_planes = [h for h in (groups.get(cp_group) or []) if isinstance(h, str)]
    workers = [h for h in (groups.get(wk_group) or []) if isinstance(h, str)]
    if not control_planes:
        problems.append("inventory: group '%s' has no host; exactly one control-plane host is required" % cp_group)
    elif len(control_planes) > 1:
        problems.append("inventory: group '%s' has %d hosts (%s); exactly one control-plane host is required"
                        % (cp_group, len(control_planes), ", ".join(control_planes)))
    for host in control_planes:
        if host in workers:
            problems.append("host %s: in both groups '%s' and '%s'; a node is either the control plane or a worker"
                            % (host, cp_group, wk_group))
    nodes = control_planes + [h for h in workers if h not in control_planes]
    for host in [h for h in (groups.get("all") or []) if isinstance(h, str)]:
        if host not in nodes and _describe_name(host) is None:
            problems.append("host %s: in neither group '%s' nor '%s'; site.yml prepares every inventory host as a "
                            "node (hosts: all): put it in one of them or remove it" % (host, cp_group, wk_group))
    return control_planes, workers


def _check_host_names(groups, nodes, problems):
    reported = set()
    for group in sorted(groups, key=lambda g: (g == "all", g)):
        hosts = groups[group]
        if not isinstance(hosts, (list, tuple)):
            continue
        for host in hosts:
            if not isinstance(host, str):
                continue
            why = _describe_name(host)
            if why and host not in reported:
                reported.add(host)
                problems.append("inventory: group '%s' has a host with %s; give every host a plain name "
                                "(indent YAML with spaces, never TABs)" % (group, why))
    for host in nodes:
        if host in reported:
            continue
        if not _DNS1123_RE.match(host) or len(host) > 253:
            problems.append("host %s: not a valid Kubernetes node name (lowercase RFC 1123: letters, digits, '-' and '.')"
                            % host)


def _check_addresses(nodes, hostvars, problems):
    seen = {}
    for host in nodes:
        address = (hostvars.get(host) or {}).get("kubelab_node_ip")
        if address is None or address == "" or not _valid_ip(address):
            continue
        canonical = str(ipaddress.ip_address(str(address)))
        if canonical in seen:
            problems.append("host %s: kubelab_node_ip %s is already used by host %s; node addresses must be unique"
                            % (host, canonical, seen[canonical]))
        else:
            seen[canonical] = host


def _check_own_addresses(nodes, hostvars, addresses, problems):
    """kubelab_node_ip must be an address of the host itself: the kubelet
    refuses a --node-ip the host does not have (pkg/kubelet/nodestatus
    validateNodeIP: "node IP: %q not found in the host's network interfaces"),
    and on the control plane etcd and the API server cannot bind it."""
    if not isinstance(addresses, dict):
        return
    for host in nodes:
        own = addresses.get(host)
        address = (hostvars.get(host) or {}).get("kubelab_node_ip")
        if own is None or address is None or address == "" or not _valid_ip(address):
            continue
        if not isinstance(own, (list, tuple)):
            own = [own]
        mine = []
        for item in own:
            text = str(item).split("%", 1)[0].strip()  # fe80::1%eth0
            if _valid_ip(text):
                mine.append(ipaddress.ip_address(text))
        ip = ipaddress.ip_address(str(address))
        if ip in mine:
            continue
        listed = ", ".join(str(a) for a in mine) if mine else "none besides loopback"
        problems.append("host %s: kubelab_node_ip %s is not an address of this host (its addresses: %s); the kubelet "
                        "refuses a node IP the host does not have (\"node IP: \"%s\" not found in the host's network "
                        "interfaces\") and on the control plane etcd cannot bind it; set kubelab_node_ip to one of the "
                        "host's addresses" % (host, ip, listed, ip))


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


# --- putting it together -----------------------------------------------------


def _role_of(name):
    """The role whose prefix the variable name carries (the longest match)."""
    matches = [p for p in ROLE_PREFIXES if name.startswith(p + "_")]
    return max(matches, key=len) if matches else None


def _prefix_pattern():
    return re.compile(VARIABLE_PATTERN)


def _controller_side(name):
    """Read by the plays on the controller only (workloads, the verify report)."""
    return _role_of(name) in CONTROLLER_ROLES and name not in _NODE_SIDE_VERIFY


def _shared(name):
    return _role_of(name) == "kubelab"


def _view_problems(own, base, defaults, options, hosts, check_unknown, controller, alone, nodes=()):
    """Every problem of one view, as (text, controller_only) pairs. ``own``:
    the variables set for this view. The controller's view checks what the
    controller's plays read (every variable when there is no host view:
    ``alone``); a host's view what the node stages read."""
    view = dict(defaults)
    view.update(base)
    view.update(own)
    view["__hosts"] = hosts
    view["__nodes"] = nodes
    view["__defaults"] = defaults
    set_names = set(own) | set(base)
    out = []
    pattern = _prefix_pattern()
    for name in sorted(set_names):
        value = own[name] if name in own else base[name]
        if check_unknown and pattern.match(name) and name not in options and name not in defaults \
                and name not in PUBLISHED_FACTS:
            role = _role_of(name)
            known = list(options) + list(defaults) + list(PUBLISHED_FACTS)
            close = _closest(name, [n for n in known if _role_of(n) == role])
            hint = "did you mean %s?" % close if close else "see roles/%s/meta/argument_specs.yml" % role
            out.append(("variable %s (value %s): no kubelab role has this variable, likely a typo; %s"
                        % (name, _show(value, 60), hint), False))
            continue
        side = _controller_side(name)
        if controller and not (side or _shared(name) or alone):
            continue
        if not controller and side:
            continue
        out.extend((text, side) for text in _variable_problems(name, value, view, options))
    out.extend(_cross_problems(view, set_names, controller))
    return out


def validate(groups, hostvars=None, settings=None, platforms=None, roles=None, addresses=None):
    """Validate kubelab's input; return a list of problems (one line each).

    :param groups: mapping group name -> list of host names (Ansible's
        ``groups``). The control-plane and worker group names come from
        ``settings`` (``kubelab_control_plane_group``,
        ``kubelab_workers_group``; defaults ``control_plane``, ``workers``).
    :param hostvars: mapping host -> dict of that host's own variables (the
        role-prefixed ones; host_vars and group_vars as the host sees them).
        A host's view is the role defaults, then ``settings``, then these.
    :param settings: the controller's variables (localhost: the workloads
        stage and the verify report run there); also the base of every
        host's view. Variables that are absent are not checked.
    :param platforms: optional mapping host -> either ``{"os_release": TEXT}``
        (content of /etc/os-release) or Ansible facts ``{"os_family": ...,
        "distribution_major_version": ..., "distribution": ...}``. Hosts
        without an entry are not platform-checked.
    :param roles: optional, from :func:`load_roles`: enables the argument
        spec checks, the role defaults in each view and the typo check.
    :param addresses: optional mapping host -> list of that host's own
        addresses (its facts ``all_ipv4_addresses`` + ``all_ipv6_addresses``):
        the host's ``kubelab_node_ip`` must be one of them. Hosts without an
        entry (or with None: no facts) are not checked.
    :returns: list of one-line messages, empty when everything is valid.
    """
    problems = []
    if not isinstance(groups, dict):
        return ["inventory: groups must be a mapping of group name to host list, got %r" % (groups,)]
    hostvars = hostvars if isinstance(hostvars, dict) else {}
    settings = dict((k, v) for k, v in (settings or {}).items() if v is not None)
    platforms = platforms or {}
    options = known_options(roles)
    defaults = role_defaults(roles)
    check_unknown = bool(roles)

    control_planes, workers = _check_groups(groups, settings, problems)
    nodes = []
    for host in control_planes + workers:
        if host not in nodes:
            nodes.append(host)
    _check_host_names(groups, nodes, problems)
    all_hosts = [h for h in (groups.get("all") or []) if isinstance(h, str)]
    for host in nodes:
        if host not in all_hosts:
            all_hosts.append(host)

    # One view per source: the controller, then every host of the inventory.
    sources = [("localhost", {})]
    for host in list(hostvars):
        own = hostvars.get(host)
        own = dict((k, v) for k, v in own.items() if v is not None) if isinstance(own, dict) else {}
        sources.append((host, own))
    found = []  # [text, [sources], controller_only] in order of first appearance
    index = {}
    for source, own in sources:
        for text, controller_only in _view_problems(own, settings, defaults, options, all_hosts, check_unknown,
                                                    controller=source == "localhost", alone=len(sources) == 1,
                                                    nodes=nodes):
            if text not in index:
                index[text] = len(found)
                found.append((text, [], controller_only))
            found[index[text]][1].append(source)
    everyone = [s for s, _ in sources]
    hosts_only = everyone[1:]
    for text, where, controller_only in found:
        # reported once, without hosts, when every view that checks it found it
        if where == everyone or (controller_only and where == ["localhost"]) or (
                not controller_only and hosts_only and where[-len(hosts_only):] == hosts_only):
            problems.append(text)
        else:
            problems.append("host %s: %s" % (", ".join(where), text))

    # Variables the controller's plays read but that are set for a host only.
    for host, own in sources[1:]:
        for name in sorted(own):
            if not _controller_side(name):
                continue
            controller_value = settings.get(name, defaults.get(name, _MISSING))
            if own[name] != controller_value:
                seen = _show(controller_value, 60) if name in settings else "the role default"
                problems.append("host %s: variable %s: %s is set for this host, but the %s stage runs on the "
                                "controller (localhost), which uses %s; set it where localhost sees it "
                                "(group_vars/all or -e)" % (host, name, _show(own[name], 60), _role_of(name), seen))

    # Cluster-wide variables must be the same everywhere.
    for name in CLUSTER_WIDE:
        values = []
        for source, own in sources:
            value = own.get(name, settings.get(name, defaults.get(name, _MISSING)))
            if value is _MISSING:
                continue
            for entry in values:
                if entry[0] == value:
                    entry[1].append(source)
                    break
            else:
                values.append((value, [source]))
        if len(values) > 1:
            problems.append("variable %s differs between hosts (%s); it is cluster-wide: set it once, in "
                            "group_vars/all" % (name, "; ".join("%s on %s" % (_show(v, 40), ", ".join(w))
                                                                for v, w in values)))

    _check_addresses(nodes, dict((h, dict(settings, **own)) for h, own in sources[1:]), problems)
    _check_own_addresses(nodes, dict((h, dict(settings, **own)) for h, own in sources[1:]), addresses, problems)
    _check_platforms(nodes, platforms, problems)
    return problems
