"""Filters of the workloads role.

``workloads_external_ips``: the externalIPs of the test Services, derived from
the inventory (worker addresses, else the control plane's) or taken from an
explicit list, every entry checked to be an IP address.

``workloads_capability_digest``: the sha256 digest of a CRI-O capability list
in a canonical form (upper case, no ``CAP_`` prefix, unique, sorted, joined
with ``,``), so that reordering or duplicating names does not change it.

``workloads_apply_error``: reads a failed kubernetes.core.k8s result and, when
the API refused the object because of its externalIPs (admission), returns a
plain sentence saying so and what to do; otherwise an empty string.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from ansible.errors import AnsibleFilterError

try:  # ansible-core >= 2.19
    from ansible.errors import AnsibleUndefinedVariable
except ImportError:  # pragma: no cover
    AnsibleUndefinedVariable = Exception  # type: ignore


def _lookup(hostvars, host, getter):
    try:
        value = getter(hostvars[host])
    except (KeyError, TypeError, AttributeError, AnsibleUndefinedVariable):
        return None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()


def _get(mapping, key):
    # HostVarsVars and plain dicts: both support "in" and [].
    return mapping[key] if key in mapping else None


def node_address(hostvars, host):
    """Return (address, source) for an inventory host, or (None, None).

    Order: kubelab_node_ip, the default-route IPv4 address from facts,
    ansible_host. The same order as the kubelab role's kubelab_node_ip
    default, evaluated through hostvars because the workloads play runs on
    the controller.
    """
    getters = (
        ("kubelab_node_ip", lambda hv: _get(hv, "kubelab_node_ip")),
        (
            "ansible_facts.default_ipv4.address",
            lambda hv: ((_get(hv, "ansible_facts") or {}).get("default_ipv4") or {}).get("address"),
        ),
        ("ansible_host", lambda hv: _get(hv, "ansible_host")),
    )
    for source, getter in getters:
        value = _lookup(hostvars, host, getter)
        if value is not None:
            return value, source
    return None, None


def _check_ip(value, where):
    text = str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise AnsibleFilterError(
            "workloads: %s is %r, which is not an IP address. externalIPs must be "
            "IPv4 or IPv6 addresses (no host names, no CIDR prefixes); set "
            "kubelab_node_ip for that host or list the addresses in "
            "workloads_external_ips." % (where, text)
        ) from None


def external_ips(hostvars, workers, control_plane, explicit=None):
    """Return the validated externalIPs list.

    explicit: None derives the list; a list (possibly empty) is used as given.
    workers / control_plane: the host names of those inventory groups.
    """
    if explicit is not None:
        if isinstance(explicit, (str, bytes)) or not hasattr(explicit, "__iter__"):
            raise AnsibleFilterError(
                "workloads: workloads_external_ips must be a list of IP addresses, "
                "got %r." % (explicit,)
            )
        result = []
        for index, item in enumerate(explicit):
            ip = _check_ip(item, "workloads_external_ips[%d]" % index)
            if ip not in result:
                result.append(ip)
        return result

    hosts = list(workers or [])
    group = "workers"
    if not hosts:
        hosts = list(control_plane or [])[:1]
        group = "control plane"
    if not hosts:
        raise AnsibleFilterError(
            "workloads: cannot derive the Services' externalIPs: the inventory has "
            "no worker and no control-plane host. Set workloads_external_ips."
        )
    result = []
    for host in hosts:
        address, source = node_address(hostvars, host)
        if address is None:
            raise AnsibleFilterError(
                "workloads: cannot derive an externalIP for %s host %s: it has no "
                "kubelab_node_ip, no gathered default IPv4 address and no "
                "ansible_host. Set kubelab_node_ip for it or set "
                "workloads_external_ips." % (group, host)
            )
        ip = _check_ip(address, "the address of %s host %s (from %s)" % (group, host, source))
        if ip not in result:
            result.append(ip)
    return result


def canonical_capabilities(capabilities):
    if isinstance(capabilities, (str, bytes)) or not hasattr(capabilities, "__iter__"):
        raise AnsibleFilterError(
            "workloads: the CRI-O capability list must be a list of names, got %r."
            % (capabilities,)
        )
    names = set()
    for item in capabilities:
        name = str(item).strip().upper()
        if name.startswith("CAP_"):
            name = name[4:]
        if not re.fullmatch(r"[A-Z_]+", name):
            raise AnsibleFilterError(
                "workloads: %r is not a Linux capability name." % (item,)
            )
        names.add(name)
    return sorted(names)


def capability_digest(capabilities):
    text = ",".join(canonical_capabilities(capabilities))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


_EXTERNAL_IP_MARKERS = ("externalip", "external ip", "external-ip")


def apply_error(result):
    """Explain an admission refusal of externalIPs, or return ''.

    result: a failed kubernetes.core.k8s result (msg, reason, status, error).
    """
    if not isinstance(result, dict) or not result.get("failed"):
        return ""
    texts = []
    for key in ("msg", "reason", "error", "body"):
        value = result.get(key)
        if value:
            texts.append(str(value))
    status = result.get("status")
    text = " ".join(texts)
    lowered = text.lower()
    if not any(marker in lowered for marker in _EXTERNAL_IP_MARKERS):
        return ""
    code_seen = status in (403, 422, "403", "422") or re.search(r"\b(403|422)\b", text)
    if not code_seen and "forbidden" not in lowered and "denied" not in lowered:
        return ""
    named = re.search(r'[Ss]ervices? \\*"([a-z0-9.-]+)\\*"', text)
    what = "Service %s" % named.group(1) if named else "a Service"
    return (
        "The cluster refused %s because it sets externalIPs: an admission "
        "control forbids Service externalIPs (for example the "
        "DenyServiceExternalIPs admission plugin, or a policy engine). Either "
        "allow externalIPs for this namespace in the cluster, or set "
        "workloads_external_ips: [] to create the Services without them. "
        "API said: %s"
        % (what, text.strip()[:500])
    )


class FilterModule:
    def filters(self):
        return {
            "workloads_external_ips": external_ips,
            "workloads_capability_digest": capability_digest,
            "workloads_apply_error": apply_error,
        }
