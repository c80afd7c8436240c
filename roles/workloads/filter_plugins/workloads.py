"""Filters of the workloads role.

``workloads_external_ips``: the externalIPs of the test Services, derived from
the inventory (worker addresses, else the control plane's) or taken from an
explicit list, every entry checked to be an IP address.

``workloads_capability_digest``: the sha256 digest of a CRI-O capability list
in a canonical form (upper case, no ``CAP_`` prefix, unique, sorted, joined
with ``,``), so that reordering or duplicating names does not change it.

``workloads_apply_error``: reads a failed kubernetes.core.k8s result and, when
the API server refused an object as invalid (422 Invalid: an immutable
Deployment selector, a taken or out-of-range nodePort, a refused externalIP,
...), returns a sentence naming the object, each field and the API's reason,
and what to do; when an admission control refused the Services' externalIPs,
says so; otherwise an empty string.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import ipaddress
import json
import re
from pathlib import Path

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


def _load_shared():
    """module_utils/kubelab_validate.py of this project (the validator's rules):
    a controller-side plugin cannot import a project's module_utils by name."""
    path = Path(__file__).resolve().parents[3] / "module_utils" / "kubelab_validate.py"
    if path.is_file():
        spec = importlib.util.spec_from_file_location("kubelab_validate_shared", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    from ansible.module_utils import kubelab_validate  # pragma: no cover

    return kubelab_validate  # pragma: no cover


# One function for the validator and this filter (ValidateNonSpecialIP).
special_ip = _load_shared().special_ip


def _check_ip(value, where, fix):
    text = str(value).strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise AnsibleFilterError(
            "workloads: %s is %r, which is not an IP address. externalIPs must be "
            "IPv4 or IPv6 addresses (no host names, no CIDR prefixes); %s."
            % (where, text, fix)
        ) from None
    why = special_ip(ip)
    if why:
        raise AnsibleFilterError(
            "workloads: %s is %s, which the Kubernetes API refuses as a Service "
            "externalIP: it is %s. Allowed: an IPv4 or IPv6 address that is not "
            "loopback, link-local (unicast or multicast) or unspecified, such as the "
            "node's LAN address; %s."
            % (where, text, why, fix)
        )
    return str(ip)


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
            ip = _check_ip(item, "workloads_external_ips[%d]" % index,
                           "fix workloads_external_ips, or set it to [] for Services without externalIPs")
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
        ip = _check_ip(address, "the address of %s host %s (from %s)" % (group, host, source),
                       "set kubelab_node_ip for that host or list the addresses in workloads_external_ips")
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


def _status(result):
    """The API's Status object in a failed kubernetes.core.k8s result, or None.

    kubernetes.core puts the response body into msg ("Failed to apply object:
    b'{...}'"); some callers pass body/error separately.
    """
    for key in ("body", "msg", "error"):
        value = result.get(key)
        if isinstance(value, dict) and value.get("kind") == "Status":
            return value
        if not value:
            continue
        text = str(value)
        match = re.search(r"""b(['"])(\{.*\})\1""", text, re.S)
        candidates = []
        if match:
            try:
                candidates.append(ast.literal_eval("b" + match.group(1) + match.group(2) + match.group(1)).decode())
            except (ValueError, SyntaxError, UnicodeDecodeError):
                pass
        brace = text.find("{")
        if brace >= 0:
            candidates.append(text[brace:])
        for candidate in candidates:
            try:
                status, _ = json.JSONDecoder().raw_decode(candidate)
            except ValueError:
                continue
            if isinstance(status, dict) and status.get("kind") == "Status":
                return status
    return None


def _invalid_explanation(status, namespace, label_vars):
    """Explain a 422 Invalid Status: object, fields, the API's reasons, what to do."""
    details = status.get("details") or {}
    kind = details.get("kind") or "object"
    name = details.get("name") or "?"
    what = "%s %s/%s" % (kind, namespace, name) if namespace else "%s %s" % (kind, name)
    causes = details.get("causes") or []
    fields = "; ".join("%s: %s" % (c.get("field", "?"), c.get("message", "")) for c in causes) \
        or status.get("message", "")
    advice = []
    for cause in causes:
        field, message = cause.get("field", ""), cause.get("message", "")
        if field == "spec.selector" and "field is immutable" in message:
            variable = (label_vars or {}).get(name)
            advice.append(
                "A %s's spec.selector cannot change after it is created (apps/v1): the selector "
                "from %s differs from the one of the %s in the cluster. The %s must be recreated: "
                "delete it (kubectl -n %s delete %s %s; its pods go with it) and run the workloads "
                "stage again, or run it once with workloads_state=absent (deletes the whole namespace "
                "%s), or set %s back to the labels the cluster has"
                % (kind, variable or "the role's labels", kind, kind, namespace or "NAMESPACE",
                   kind.lower(), name, namespace or "NAMESPACE", variable or "the labels"))
        elif field.endswith(".nodePort") and "already allocated" in message:
            advice.append(
                "%s's nodePort is already used by another Service in the cluster: give the entry "
                "%s of workloads_services a free node_port, or omit node_port to let the cluster pick one"
                % (what, name))
        elif field.endswith(".nodePort") and "not in the valid range" in message:
            advice.append(
                "the cluster's --service-node-port-range does not contain %s's node_port: set "
                "workloads_node_port_range to the range the API names and a node_port inside it, "
                "or omit node_port" % name)
        elif field.startswith("spec.externalIPs"):
            advice.append(
                "the API server refuses that externalIP (loopback, link-local and unspecified "
                "addresses cannot be Service externalIPs): set kubelab_node_ip of the workers to "
                "their LAN addresses, or list usable addresses in workloads_external_ips "
                "([] for none)")
        elif field.startswith("spec.clusterIP") and "may not change once set" in message:
            advice.append(
                "a Service's clusterIP cannot change: delete the Service (kubectl -n %s delete "
                "service %s) and run the workloads stage again" % (namespace or "NAMESPACE", name))
    text = "The cluster refused %s: the API server found it invalid (reason %s, HTTP %s): %s." % (
        what, status.get("reason", "Invalid"), status.get("code", 422), fields)
    if advice:
        text += " " + ". ".join(a[0].upper() + a[1:] for a in advice) + "."
    return text


def apply_error(result, namespace=None, label_vars=None):
    """Explain why the API refused a test object, or return ''.

    result: a failed kubernetes.core.k8s result (msg, reason, status, error).
    namespace: the test namespace (to name the object); label_vars: the
    Deployment name -> the variable its selector comes from.

    A 422 Invalid Status (the API server's own validation: an immutable
    selector, a taken or out-of-range nodePort, a refused externalIP, ...)
    is explained field by field. An admission refusal of externalIPs (the
    DenyServiceExternalIPs plugin, a policy engine) gets its own advice.
    """
    if not isinstance(result, dict) or not result.get("failed"):
        return ""
    status = _status(result)
    if status and status.get("reason") == "Invalid" and (status.get("details") or {}).get("causes"):
        causes = status["details"]["causes"]
        validated = any(c.get("message", "").startswith(("Invalid value", "Duplicate value", "Required value"))
                        and (not str(c.get("field", "")).startswith("spec.externalIPs")
                             or any(m in c.get("message", "") for m in _NON_SPECIAL_MESSAGES))
                        for c in causes)
        if validated:
            return _invalid_explanation(status, namespace, label_vars)
    texts = []
    for key in ("msg", "reason", "error", "body"):
        value = result.get(key)
        if value:
            texts.append(str(value))
    status_code = result.get("status")
    text = " ".join(texts)
    lowered = text.lower()
    if not any(marker in lowered for marker in _EXTERNAL_IP_MARKERS):
        return ""
    code_seen = status_code in (403, 422, "403", "422") or re.search(r"\b(403|422)\b", text)
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


# What the API server's own validation says of a refused externalIP
# (ValidateNonSpecialIP, IsValidIP); anything else about externalIPs is a
# policy's refusal.
_NON_SPECIAL_MESSAGES = ("may not be unspecified", "may not be in the loopback range",
                         "may not be in the link-local", "must be a valid IP address")


class FilterModule:
    def filters(self):
        return {
            "workloads_external_ips": external_ips,
            "workloads_capability_digest": capability_digest,
            "workloads_apply_error": apply_error,
        }
