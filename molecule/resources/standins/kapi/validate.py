# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""The few API-server validation rules the emulator applies (see README.md).

Each rule is reimplemented from kubernetes/kubernetes (cited in README.md,
"Validation"); the field errors are rendered as apimachinery's
``field.Error`` renders them (``<field>: <Type>: <value>: <detail>``, the
value as JSON since v1.34) and returned as the Status of
``errors.NewInvalid``: 422, reason Invalid, ``details.causes``.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

# field.ErrorType -> (cause reason, text)
INVALID = ("FieldValueInvalid", "Invalid value")
DUPLICATE = ("FieldValueDuplicate", "Duplicate value")
FORBIDDEN = ("FieldValueForbidden", "Forbidden")
REQUIRED = ("FieldValueRequired", "Required value")
_NO_VALUE = (FORBIDDEN, REQUIRED)  # ErrorBody prints no value for these

# The apps/v1 kinds whose spec.selector an update may not change
# (pkg/registry/apps/{deployment,replicaset,daemonset}/strategy.go ValidateUpdate).
SELECTOR_KINDS = {("apps", "deployments"), ("apps", "replicasets"), ("apps", "daemonsets")}


def render(value: Any) -> str:
    """A bad value as field.Error.ErrorBody prints it (k8s >= 1.34): JSON as Go's
    encoding/json writes it. Callers build structs in field order and maps
    with sorted keys (_map), as Go does."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"))


def _map(value: dict[str, Any] | None) -> dict[str, Any]:
    """A Go map as encoding/json writes it: keys sorted."""
    return {k: (value or {})[k] for k in sorted(value or {})}


class FieldError:
    def __init__(self, kind: tuple[str, str], field: str, value: Any = None, detail: str = ""):
        self.reason, self.text = kind
        self.field, self.value, self.detail = field, value, detail
        self.has_value = kind not in _NO_VALUE

    def body(self) -> str:
        out = self.text + (": " + render(self.value) if self.has_value else "")
        return out + (": " + self.detail if self.detail else "")

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def invalid_status(kind: str, group: str, name: str, errors: list[FieldError]) -> tuple[str, dict[str, Any]]:
    """(message, details) of apimachinery errors.NewInvalid."""
    qualified = f"{kind}.{group}" if group else kind
    seen: list[str] = []
    for err in errors:  # ErrorList.ToAggregate drops repeated messages
        if str(err) not in seen:
            seen.append(str(err))
    agg = seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"
    details = {
        "name": name,
        "group": group,
        "kind": kind,
        "causes": [{"reason": e.reason, "message": e.body(), "field": e.field} for e in errors],
    }
    return f'{qualified} "{name}" is invalid: {agg}', details


# ----------------------------------------------------------------- IPs
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # Go's net.IP treats ::ffff:a.b.c.d as IPv4
    return ip


def non_special_ip(text: str, field: str) -> list[FieldError]:
    """pkg/apis/core/validation/validation.go ValidateNonSpecialIP (Go's net.IP tests)."""
    ip = _ip(text)
    if ip is None:
        return [FieldError(INVALID, field, text, "must be a valid IP address")]
    errs = []
    if ip.is_unspecified:
        errs.append(FieldError(INVALID, field, text, f"may not be unspecified ({text})"))
    if ip.is_loopback:
        errs.append(FieldError(INVALID, field, text, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.version == 4:
        link_local = ip in ipaddress.ip_network("169.254.0.0/16")
        link_local_multicast = ip in ipaddress.ip_network("224.0.0.0/24")
    else:
        link_local = ip in ipaddress.ip_network("fe80::/10")
        packed = ip.packed
        link_local_multicast = packed[0] == 0xFF and packed[1] & 0x0F == 0x02  # ff02::/16 any flags
    if link_local:
        errs.append(FieldError(INVALID, field, text, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if link_local_multicast:
        errs.append(FieldError(INVALID, field, text,
                               "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return errs


# ----------------------------------------------------------------- Services
def service(spec: dict[str, Any], old_spec: dict[str, Any] | None,
            forbidden: list[FieldError], special_ips: bool = True) -> list[FieldError]:
    """ValidateService / ValidateServiceUpdate rules the emulator applies.

    forbidden: the nodePort errors the defaulting found (a nodePort the
    request set on a ClusterIP Service; an unchanged one is dropped, as
    dropTypeDependentFields does).
    """
    errs: list[FieldError] = []
    ports = spec.get("ports") or []
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            errs.append(FieldError(REQUIRED, f"{path}.name"))
        elif name:
            if name in names:
                errs.append(FieldError(DUPLICATE, f"{path}.name", name))
            names.add(name)
    errs.extend(forbidden)
    seen: set[tuple[str, Any]] = set()
    for i, port in enumerate(ports):
        key = (port.get("protocol", "TCP"), port.get("port"))
        if key in seen:
            # the internal core.ServicePort{Protocol, Port} as JSON (no json tags)
            errs.append(FieldError(DUPLICATE, f"spec.ports[{i}]", {
                "Name": "", "Protocol": key[0], "AppProtocol": None, "Port": key[1], "TargetPort": 0, "NodePort": 0}))
        seen.add(key)
    seen_np: set[tuple[str, Any]] = set()
    for i, port in enumerate(ports):
        if port.get("nodePort"):
            key = (port.get("protocol", "TCP"), port["nodePort"])
            if key in seen_np:
                errs.append(FieldError(DUPLICATE, f"spec.ports[{i}].nodePort", port["nodePort"]))
            seen_np.add(key)
    for i, text in enumerate(spec.get("externalIPs") or []):
        # ValidateService: validation.IsValidIP first, ValidateNonSpecialIP only for a valid one
        if _ip(str(text)) is None:
            errs.append(FieldError(INVALID, f"spec.externalIPs[{i}]", str(text),
                                   "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        elif special_ips:
            errs.extend(non_special_ip(str(text), f"spec.externalIPs[{i}]"))
    if old_spec is not None:
        errs.extend(cluster_ip_update(spec, old_spec))
    return errs


def cluster_ip_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[FieldError]:
    """validateUpgradeDowngradeClusterIPs: the primary clusterIP of a Service
    that is and was not ExternalName may not change."""
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    old_ips = old_spec.get("clusterIPs") or ([old_spec["clusterIP"]] if old_spec.get("clusterIP") else [])
    new_ips = spec.get("clusterIPs") or []
    if old_ips and new_ips and old_ips[0] != new_ips[0]:
        return [FieldError(INVALID, "spec.clusterIPs[0]", new_ips, "may not change once set")]
    return []


def node_port_allocation(index: int, node_port: Any, low: int, high: int, taken: bool) -> FieldError | None:
    """pkg/registry/core/service/storage/alloc.go + portallocator: a requested
    nodePort outside --service-node-port-range, or already another Service's."""
    path = f"spec.ports[{index}].nodePort"
    if not isinstance(node_port, int) or not low <= node_port <= high:
        return FieldError(INVALID, path, node_port,
                          f"provided port is not in the valid range. The range of valid ports is {low}-{high}")
    if taken:
        return FieldError(INVALID, path, node_port, "provided port is already allocated")
    return None


# ----------------------------------------------------------------- apps/v1
def _selector_value(selector: dict[str, Any] | None) -> dict[str, Any] | None:
    """A LabelSelector as its JSON (omitempty: empty parts dropped)."""
    if selector is None:
        return None
    out: dict[str, Any] = {}
    if selector.get("matchLabels"):
        out["matchLabels"] = _map(selector["matchLabels"])
    if selector.get("matchExpressions"):
        out["matchExpressions"] = [
            {k: e[k] for k in ("key", "operator", "values") if e.get(k) not in (None, [])}
            for e in selector["matchExpressions"]]
    return out


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, want in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != want:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        have = labels.get(key)
        ok = {"In": have is not None and have in values, "NotIn": have is None or have not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}.get(op, False)
        if not ok:
            return False
    return True


def workload(plural: str, spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[FieldError]:
    """pkg/apis/apps/validation/validation.go ValidateDeploymentSpec (the same
    for ReplicaSet/DaemonSet): a selector is required, not empty, and must
    match the template's labels; on update (apps/v1) it may not change."""
    errs: list[FieldError] = []
    selector = spec.get("selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if selector is None:
        errs.append(FieldError(REQUIRED, "spec.selector"))
    else:
        value = _selector_value(selector)
        if not value:
            # ValidateReplicaSetSpec reuses the Deployment's wording
            what = "daemonset" if plural == "daemonsets" else "deployment"
            errs.append(FieldError(INVALID, "spec.selector", value, f"empty selector is invalid for {what}"))
        elif not _matches(selector, labels):
            errs.append(FieldError(INVALID, "spec.template.metadata.labels", _map(labels),
                                   "`selector` does not match template `labels`"))
    if old_spec is not None and _selector_value(selector) != _selector_value(old_spec.get("selector")):
        errs.append(FieldError(INVALID, "spec.selector", _selector_value(selector), "field is immutable"))
    return errs
