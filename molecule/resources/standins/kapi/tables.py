# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""Server-side printing (meta.k8s.io Table) for the kinds a lab operator
looks at with a plain ``kubectl get``: Node, Deployment, Service; every
other kind gets NAME and AGE."""

from __future__ import annotations

import datetime
from typing import Any


def human_age(created: str | None) -> str:
    """kubectl's duration.HumanDuration."""
    if not created:
        return "<unknown>"
    start = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    secs = max(0, int((datetime.datetime.now(datetime.timezone.utc) - start).total_seconds()))
    mins, hours = secs // 60, secs // 3600
    if secs < 120:
        return f"{secs}s"
    if mins < 10:
        return f"{mins}m{secs % 60}s" if secs % 60 else f"{mins}m"
    if mins < 180:
        return f"{mins}m"
    if hours < 8:
        return f"{hours}h{mins % 60}m" if mins % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    return f"{hours // 24}d"


def _node(obj: dict[str, Any]) -> list[Any]:
    status = obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    if (obj.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (obj["metadata"].get("labels") or {}) if k.startswith("node-role.kubernetes.io/"))
    addr = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [state, ",".join(roles) or "<none>", human_age(obj["metadata"].get("creationTimestamp")),
            info.get("kubeletVersion", ""), addr.get("InternalIP", "<none>"), addr.get("ExternalIP", "<none>"),
            info.get("osImage", "<unknown>"), info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion", "<unknown>")]


def _deployment(obj: dict[str, Any]) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = ",".join(f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items())
    return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), human_age(obj["metadata"].get("creationTimestamp")),
            ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers), selector]


def _service(obj: dict[str, Any]) -> list[Any]:
    spec = obj.get("spec") or {}
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = [i.get("ip") or i.get("hostname") for i in ingress] + list(spec.get("externalIPs") or [])
    if not external:
        external_text = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    else:
        external_text = ",".join(external)
    ports = ",".join(
        f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    ) or "<none>"
    selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>"
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), external_text, ports,
            human_age(obj["metadata"].get("creationTimestamp")), selector]


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


COLUMNS: dict[str, tuple[list[dict[str, Any]], Any]] = {
    "Node": ([_col("Status"), _col("Roles"), _col("Age"), _col("Version"), _col("Internal-IP", priority=1),
              _col("External-IP", priority=1), _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
              _col("Container-Runtime", priority=1)], _node),
    "Deployment": ([_col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Age"),
                    _col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)], _deployment),
    "Service": ([_col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), _col("Age"),
                 _col("Selector", priority=1)], _service),
}


def table(kind: str, api_version: str, items: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    columns, cells = COLUMNS.get(kind, ([_col("Age")], lambda o: [human_age(o["metadata"].get("creationTimestamp"))]))
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [_col("Name", fmt="name")] + columns,
        "rows": [
            {
                "cells": [obj["metadata"]["name"]] + cells(obj),
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": obj["metadata"]},
            }
            for obj in items
        ],
    }
