# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""Rollout and endpoint readiness decisions, as pure functions on API objects.

Every function here takes Kubernetes objects as plain dicts (the JSON the API
returns: camelCase keys) and returns plain data, so the rules can be tested
without a cluster. The module ``kubelab_rollout_wait`` does the API calls.

The Deployment rules are kubectl's (``kubectl rollout status``,
``DeploymentStatusViewer`` in k8s.io/kubectl/pkg/polymorphichelpers):

* while ``status.observedGeneration < metadata.generation`` the controller has
  not seen the current spec yet: keep waiting, and ignore the conditions (they
  describe an older spec);
* a ``Progressing`` condition with reason ``ProgressDeadlineExceeded`` is a
  failure (no point waiting any longer);
* ``status.updatedReplicas < spec.replicas``: new replicas still being created;
* ``status.replicas > status.updatedReplicas``: old replicas pending
  termination;
* ``status.availableReplicas < status.updatedReplicas``: updated replicas not
  yet available;
* otherwise the rollout is complete.

Written for Python 3.8+ (no match statements, no 3.10-only syntax).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

PROGRESS_DEADLINE_REASON = "ProgressDeadlineExceeded"

WAITING = "waiting"
COMPLETE = "complete"
FAILED = "failed"


def _int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def deployment_rollout(deployment):
    """Return the rollout state of one Deployment, by kubectl's rules.

    Returns a dict: ``name``, ``state`` (``waiting``, ``complete`` or
    ``failed``), ``message`` (kubectl's wording), and the numbers the decision
    was made on (``generation``, ``observed_generation``, ``replicas`` (spec),
    ``status_replicas``, ``updated_replicas``, ``ready_replicas``,
    ``available_replicas``).
    """
    meta = _meta(deployment)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = meta.get("name", "?")
    generation = _int(meta.get("generation"), 0)
    observed = _int(status.get("observedGeneration"), 0)
    # The API server defaults spec.replicas to 1.
    spec_replicas = _int(spec.get("replicas"), 1)
    status_replicas = _int(status.get("replicas"))
    updated = _int(status.get("updatedReplicas"))
    ready = _int(status.get("readyReplicas"))
    available = _int(status.get("availableReplicas"))
    result = {
        "name": name,
        "generation": generation,
        "observed_generation": observed,
        "replicas": spec_replicas,
        "status_replicas": status_replicas,
        "updated_replicas": updated,
        "ready_replicas": ready,
        "available_replicas": available,
    }

    if generation > observed:
        result["state"] = WAITING
        result["message"] = (
            'Waiting for deployment "%s" spec update to be observed '
            "(generation %d, observed generation %d)" % (name, generation, observed)
        )
        return result

    progressing = progressing_condition(deployment)
    if progressing is not None and progressing.get("reason") == PROGRESS_DEADLINE_REASON:
        result["state"] = FAILED
        detail = progressing.get("message") or ""
        result["message"] = 'deployment "%s" exceeded its progress deadline%s' % (
            name,
            (": " + detail) if detail else "",
        )
        return result

    if updated < spec_replicas:
        result["state"] = WAITING
        result["message"] = (
            'Waiting for deployment "%s" rollout to finish: %d out of %d new '
            "replicas have been updated" % (name, updated, spec_replicas)
        )
    elif status_replicas > updated:
        result["state"] = WAITING
        result["message"] = (
            'Waiting for deployment "%s" rollout to finish: %d old replicas are '
            "pending termination" % (name, status_replicas - updated)
        )
    elif available < updated:
        result["state"] = WAITING
        result["message"] = (
            'Waiting for deployment "%s" rollout to finish: %d of %d updated '
            "replicas are available" % (name, available, updated)
        )
    else:
        result["state"] = COMPLETE
        result["message"] = 'deployment "%s" successfully rolled out' % name
    return result


def progressing_condition(deployment):
    """Return the Deployment's ``Progressing`` condition dict, or None."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing":
            return condition
    return None


def endpoint_slice_addresses(slices):
    """Split the addresses of EndpointSlices into (ready, not_ready) lists.

    ``conditions.ready`` absent (nil) counts as ready, as the EndpointSlice
    API documents; a terminating endpoint is never ready.
    """
    ready = []
    not_ready = []
    for endpoint_slice in slices or []:
        for endpoint in endpoint_slice.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            is_ready = conditions.get("ready")
            if is_ready is None:
                is_ready = not conditions.get("terminating", False)
            for address in endpoint.get("addresses") or []:
                target = ready if is_ready else not_ready
                if address not in target:
                    target.append(address)
    return ready, not_ready


def endpoints_addresses(endpoints):
    """Split the addresses of a core/v1 Endpoints object into (ready, not_ready)."""
    ready = []
    not_ready = []
    for subset in (endpoints or {}).get("subsets") or []:
        for item in subset.get("addresses") or []:
            if item.get("ip") and item["ip"] not in ready:
                ready.append(item["ip"])
        for item in subset.get("notReadyAddresses") or []:
            if item.get("ip") and item["ip"] not in not_ready:
                not_ready.append(item["ip"])
    return ready, not_ready


def service_endpoints(service_name, slices=None, endpoints=None):
    """Decide whether a Service has ready endpoints.

    ``slices`` is the list of EndpointSlices labelled
    ``kubernetes.io/service-name=<service>`` (None when the discovery.k8s.io
    API is not served); ``endpoints`` the Service's core/v1 Endpoints object
    (None when absent). EndpointSlices are preferred when given.
    """
    if slices is not None:
        ready, not_ready = endpoint_slice_addresses(slices)
        source = "EndpointSlice"
        if not slices and endpoints is not None:
            ready, not_ready = endpoints_addresses(endpoints)
            source = "Endpoints"
    elif endpoints is not None:
        ready, not_ready = endpoints_addresses(endpoints)
        source = "Endpoints"
    else:
        ready, not_ready, source = [], [], None
    if ready:
        message = 'service "%s" has %d ready endpoint(s): %s' % (
            service_name,
            len(ready),
            ", ".join(ready),
        )
    elif not_ready:
        message = 'service "%s" has no ready endpoint (%d not ready: %s)' % (
            service_name,
            len(not_ready),
            ", ".join(not_ready),
        )
    else:
        message = 'service "%s" has no endpoints yet' % service_name
    return {
        "name": service_name,
        "ready": bool(ready),
        "ready_addresses": ready,
        "not_ready_addresses": not_ready,
        "source": source,
        "message": message,
    }


def pod_state(pod):
    """One line describing a pod: phase, node, readiness, container states."""
    meta = _meta(pod)
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    parts = [
        "pod %s" % meta.get("name", "?"),
        "phase=%s" % (status.get("phase") or "Unknown"),
        "node=%s" % (spec.get("nodeName") or "<unscheduled>"),
    ]
    if meta.get("deletionTimestamp"):
        parts.append("terminating")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            parts.append(
                "unschedulable: %s %s"
                % (condition.get("reason") or "", condition.get("message") or "")
            )
    containers = status.get("containerStatuses") or []
    total = len(spec.get("containers") or []) or len(containers)
    ready = sum(1 for c in containers if c.get("ready"))
    parts.append("ready=%d/%d" % (ready, total))
    for container in containers:
        state = container.get("state") or {}
        if "waiting" in state:
            detail = state["waiting"] or {}
            text = "waiting %s" % (detail.get("reason") or "")
        elif "terminated" in state:
            detail = state["terminated"] or {}
            text = "terminated %s exit=%s" % (detail.get("reason") or "", detail.get("exitCode"))
        elif "running" in state:
            detail = {}
            text = "running"
        else:
            detail = {}
            text = "unknown"
        if detail.get("message"):
            text += " (%s)" % detail["message"]
        restarts = _int(container.get("restartCount"))
        if restarts:
            text += " restarts=%d" % restarts
        parts.append("container %s: %s" % (container.get("name", "?"), text.strip()))
    return " ".join(parts)


def _event_time(event):
    series = event.get("series") or {}
    return (
        event.get("lastTimestamp")
        or series.get("lastObservedTime")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or _meta(event).get("creationTimestamp")
        or ""
    )


def event_line(event):
    involved = event.get("involvedObject") or event.get("regarding") or {}
    count = _int(event.get("count"), 1)
    return "%s %s %s/%s: %s %s%s" % (
        _event_time(event) or "-",
        event.get("type") or "Normal",
        involved.get("kind") or "?",
        involved.get("name") or "?",
        event.get("reason") or "",
        (event.get("message") or event.get("note") or "").strip(),
        (" (x%d)" % count) if count > 1 else "",
    )


def related_events(events, names, limit=10):
    """The ``limit`` most recent events about objects named in ``names`` or
    owned by them (ReplicaSets and pods are named ``<deployment>-...``).

    Returns formatted lines, oldest first.
    """
    names = [n for n in names or [] if n]
    chosen = []
    for event in events or []:
        involved = event.get("involvedObject") or event.get("regarding") or {}
        target = involved.get("name") or ""
        if not names or any(target == n or target.startswith(n + "-") for n in names):
            chosen.append(event)
    chosen.sort(key=_event_time)
    if limit is not None and limit >= 0:
        chosen = chosen[-limit:] if limit else []
    return [event_line(e) for e in chosen]


def selector_string(match_labels):
    """A label selector string from a matchLabels dict (sorted, stable)."""
    return ",".join("%s=%s" % (k, match_labels[k]) for k in sorted(match_labels or {}))


def failure_report(headline, states, pods, events):
    """The text of a failed wait: what was expected, what was seen, the pods'
    states and the recent events."""
    lines = [headline]
    for state in states:
        lines.append("  " + state)
    lines.append("Pods:")
    if pods:
        lines.extend("  " + pod_state(p) for p in pods)
    else:
        lines.append("  (no pods)")
    lines.append("Recent events:")
    if events:
        lines.extend("  " + e for e in events)
    else:
        lines.append("  (no events)")
    return "\n".join(lines)
