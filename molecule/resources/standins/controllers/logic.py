# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""Pure functions of the controllers stand-in (no API access here).

Each function names the upstream function whose behaviour it reimplements
(kubernetes/kubernetes release-1.35); CONTRACT.md lists the differences.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from typing import Any

HASH_LABEL = "pod-template-hash"  # apps/v1 DefaultDeploymentUniqueLabelKey
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
# deployment_util.go annotationsToSkip: never copied from a Deployment to its ReplicaSets
ANNOTATIONS_TO_SKIP = {
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
    DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to",
}
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
# k8s.io/apimachinery/pkg/util/rand: the alphabet of rand.String and SafeEncodeString
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
MAX_INT32 = 2**31 - 1


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def timestamp(when: datetime.datetime | None = None) -> str:
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


# ---- pod template hash (pkg/controller/controller_utils.go ComputeHash) ----
def fnv32a(data: bytes, value: int = 0x811C9DC5) -> int:
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: every character through ALPHANUMS by its code point."""
    return "".join(ALPHANUMS[ord(ch) % len(ALPHANUMS)] for ch in text)


def compute_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """ComputeHash: FNV-32a of the template (+ collisionCount, 8 bytes little-endian), safe-encoded.

    Upstream feeds FNV the spew dump of the Go struct; this feeds it the
    canonical JSON (sorted keys, no spaces) of the template as stored, so the
    value differs from a real cluster's but changes exactly when the template
    does and has the same form (up to 10 characters of ALPHANUMS).
    """
    value = fnv32a(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())
    if collision_count is not None:
        value = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0", value)
    return safe_encode(str(value))


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template or {})
    labels = (out.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
        if not labels:
            out["metadata"].pop("labels")
    if out.get("metadata") == {}:
        out.pop("metadata")
    return out


def equal_ignore_hash(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """deployment_util.go EqualIgnoreHash: templates equal but for the pod-template-hash label."""
    return without_hash(a) == without_hash(b)


# ---- Deployment defaults (pkg/apis/apps/v1/defaults.go SetDefaults_Deployment) ----
def deployment_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(deployment.get("spec") or {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault("minReadySeconds", 0)
    return spec


def _scaled(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        exact = int(text[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def resolve_fenceposts(spec: dict[str, Any]) -> tuple[int, int]:
    """deployment_util.go ResolveFenceposts: (maxSurge rounded up, maxUnavailable rounded down), never both 0."""
    if spec["strategy"]["type"] != "RollingUpdate":
        return 0, 0
    rolling = spec["strategy"]["rollingUpdate"]
    surge = _scaled(rolling["maxSurge"], spec["replicas"], True)
    unavailable = _scaled(rolling["maxUnavailable"], spec["replicas"], False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(spec: dict[str, Any]) -> int:
    """deployment_util.go MaxUnavailable (0 for Recreate or 0 replicas, at most replicas)."""
    if spec["strategy"]["type"] != "RollingUpdate" or spec["replicas"] == 0:
        return 0
    return min(resolve_fenceposts(spec)[1], spec["replicas"])


def rs_spec_replicas(rs: dict[str, Any]) -> int:
    return int((rs.get("spec") or {}).get("replicas", 1) or 0)


def rs_status(rs: dict[str, Any], field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def new_rs_new_replicas(spec: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any]) -> int:
    """deployment_util.go NewRSNewReplicas."""
    if spec["strategy"]["type"] != "RollingUpdate":
        return spec["replicas"]
    surge, _ = resolve_fenceposts(spec)
    current = sum(rs_spec_replicas(rs) for rs in all_rs)
    max_total = spec["replicas"] + surge
    if current >= max_total:
        return rs_spec_replicas(new_rs)
    scale_up = min(max_total - current, spec["replicas"] - rs_spec_replicas(new_rs))
    return rs_spec_replicas(new_rs) + scale_up


def old_rs_scale_down(spec: dict[str, Any], all_rs: list[dict[str, Any]], old_rs: list[dict[str, Any]],
                      new_rs: dict[str, Any] | None) -> dict[str, int]:
    """rolling.go reconcileOldReplicaSets: new spec.replicas of the old ReplicaSets to scale down.

    Returns {name: replicas}; old ReplicaSets in creation order (oldest first).
    First cleanupUnhealthyReplicas (unavailable old pods go first), then
    scaleDownOldReplicaSetsForRollingUpdate (down to minAvailable).
    """
    if sum(rs_spec_replicas(rs) for rs in old_rs) == 0:
        return {}
    all_pods = sum(rs_spec_replicas(rs) for rs in all_rs)
    min_available = spec["replicas"] - max_unavailable(spec)
    new_unavailable = 0
    if new_rs is not None:
        new_unavailable = rs_spec_replicas(new_rs) - rs_status(new_rs, "availableReplicas")
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    result: dict[str, int] = {}
    replicas = {meta(rs)["name"]: rs_spec_replicas(rs) for rs in old_rs}
    ordered = sorted(old_rs, key=lambda rs: (meta(rs).get("creationTimestamp") or "", meta(rs)["name"]))
    cleaned = 0
    for rs in ordered:
        name = meta(rs)["name"]
        if cleaned >= max_scaled_down:
            break
        if replicas[name] == 0:
            continue
        unhealthy = replicas[name] - rs_status(rs, "availableReplicas")
        if unhealthy <= 0:
            continue
        down = min(max_scaled_down - cleaned, unhealthy)
        replicas[name] -= down
        result[name] = replicas[name]
        cleaned += down
    available = sum(rs_status(rs, "availableReplicas") for rs in all_rs)
    if available > min_available:
        total_down = min(available - min_available, max_scaled_down - cleaned)
        for rs in ordered:
            name = meta(rs)["name"]
            if total_down <= 0:
                break
            if replicas[name] == 0:
                continue
            down = min(replicas[name], total_down)
            replicas[name] -= down
            result[name] = replicas[name]
            total_down -= down
    return result


# ---- Deployment status (sync.go calculateStatus, progress.go syncRolloutStatus) ----
def _omit_zero(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if v not in (0, None, [])}


def condition(conditions: list[dict[str, Any]], ctype: str) -> dict[str, Any] | None:
    for cond in conditions or []:
        if cond.get("type") == ctype:
            return cond
    return None


def set_condition(conditions: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """deployment_util.go SetDeploymentCondition: no change when status and reason are the same."""
    current = condition(conditions, new["type"])
    if current is not None and current.get("status") == new["status"] and current.get("reason") == new["reason"]:
        return conditions
    if current is not None and current.get("status") == new["status"]:
        new = {**new, "lastTransitionTime": current.get("lastTransitionTime")}
    return [c for c in conditions if c.get("type") != new["type"]] + [new]


def new_condition(ctype: str, status: str, reason: str, message: str, when: str | None = None) -> dict[str, Any]:
    when = when or timestamp()
    return {"type": ctype, "status": status, "lastUpdateTime": when, "lastTransitionTime": when,
            "reason": reason, "message": message}


def calculate_status(deployment: dict[str, Any], all_rs: list[dict[str, Any]],
                     new_rs: dict[str, Any] | None) -> dict[str, Any]:
    """sync.go calculateStatus (with the Available condition)."""
    spec = deployment_spec(deployment)
    old = deployment.get("status") or {}
    available = sum(rs_status(rs, "availableReplicas") for rs in all_rs)
    total = sum(rs_spec_replicas(rs) for rs in all_rs)
    status = {
        "observedGeneration": int(meta(deployment).get("generation") or 0),
        "replicas": sum(rs_status(rs, "replicas") for rs in all_rs),
        "updatedReplicas": rs_status(new_rs, "replicas") if new_rs else 0,
        "readyReplicas": sum(rs_status(rs, "readyReplicas") for rs in all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
        "collisionCount": old.get("collisionCount"),
    }
    conditions = copy.deepcopy(old.get("conditions") or [])
    if available >= spec["replicas"] - max_unavailable(spec):
        cond = new_condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        cond = new_condition("Available", "False", "MinimumReplicasUnavailable",
                             "Deployment does not have minimum availability.")
    conditions = set_condition(conditions, cond)
    status = _omit_zero(status)
    if conditions:
        status["conditions"] = conditions
    return status


def deployment_complete(deployment: dict[str, Any], status: dict[str, Any]) -> bool:
    """deployment_util.go DeploymentComplete."""
    want = deployment_spec(deployment)["replicas"]
    return (status.get("updatedReplicas", 0) == want and status.get("replicas", 0) == want
            and status.get("availableReplicas", 0) == want
            and status.get("observedGeneration", 0) >= int(meta(deployment).get("generation") or 0))


def deployment_progressing(deployment: dict[str, Any], status: dict[str, Any]) -> bool:
    """deployment_util.go DeploymentProgressing."""
    old = deployment.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    return (status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_old < old_old
            or status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def deployment_timed_out(deployment: dict[str, Any], status: dict[str, Any], at: datetime.datetime) -> bool:
    """deployment_util.go DeploymentTimedOut."""
    cond = condition(status.get("conditions") or [], "Progressing")
    if cond is None:
        return False
    if cond.get("reason") == "ProgressDeadlineExceeded":
        return True
    if cond.get("reason") == "NewReplicaSetAvailable":
        return False
    since = parse_time(cond.get("lastUpdateTime"))
    deadline = deployment_spec(deployment)["progressDeadlineSeconds"]
    return since is not None and since + datetime.timedelta(seconds=deadline) < at


def rollout_status(deployment: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any] | None,
                   at: datetime.datetime | None = None) -> dict[str, Any]:
    """progress.go syncRolloutStatus: calculateStatus plus the Progressing condition."""
    at = at or now()
    status = calculate_status(deployment, all_rs, new_rs)
    conditions = status.get("conditions") or []
    current = condition(conditions, "Progressing")
    complete_already = (status.get("replicas", 0) == status.get("updatedReplicas", 0) and current is not None
                        and current.get("reason") == "NewReplicaSetAvailable")
    rs_name = meta(new_rs)["name"] if new_rs else None
    if not complete_already:
        if deployment_complete(deployment, status):
            msg = f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name else \
                "Deployment has successfully progressed."
            conditions = set_condition(conditions, new_condition("Progressing", "True", "NewReplicaSetAvailable", msg))
        elif deployment_progressing(deployment, status):
            msg = f'ReplicaSet "{rs_name}" is progressing.' if rs_name else "Deployment is progressing."
            cond = new_condition("Progressing", "True", "ReplicaSetUpdated", msg, timestamp(at))
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            conditions = [c for c in conditions if c.get("type") != "Progressing"] + [cond]
        elif deployment_timed_out(deployment, status, at):
            msg = f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name else \
                f'Deployment "{meta(deployment)["name"]}" has timed out progressing.'
            conditions = set_condition(conditions, new_condition("Progressing", "False", "ProgressDeadlineExceeded", msg))
    if conditions:
        status["conditions"] = conditions
    return status


def status_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Status equality ignoring condition timestamps' lastUpdateTime drift of unchanged conditions."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ---- pods (pkg/api/v1/pod/util.go, pkg/controller/controller_utils.go) ----
def pod_condition(pod: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return condition((pod.get("status") or {}).get("conditions") or [], ctype)


def pod_ready(pod: dict[str, Any]) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def pod_available(pod: dict[str, Any], min_ready_seconds: int, at: datetime.datetime) -> bool:
    """podutil.IsPodAvailable."""
    if not pod_ready(pod):
        return False
    if min_ready_seconds == 0:
        return True
    since = parse_time(pod_condition(pod, "Ready").get("lastTransitionTime"))
    return since is not None and since + datetime.timedelta(seconds=min_ready_seconds) < at


def pod_active(pod: dict[str, Any]) -> bool:
    """controller.IsPodActive: not Succeeded/Failed and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not meta(pod).get("deletionTimestamp")


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": meta(owner)["name"], "uid": meta(owner)["uid"],
            "controller": True, "blockOwnerDeletion": True}


def labels_match(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelectorAsSelector(...).Matches (matchLabels and matchExpressions)."""
    if not selector:
        return False  # an empty Deployment/ReplicaSet selector matches nothing (validation refuses it)
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_from_template(rs: dict[str, Any]) -> dict[str, Any]:
    """controller_utils.go GetPodFromTemplate: labels, annotations, finalizers, spec; generateName NAME-."""
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    pod_meta = {
        "generateName": meta(rs)["name"] + "-",
        "namespace": meta(rs)["namespace"],
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_reference(rs, "apps/v1", "ReplicaSet")],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": copy.deepcopy(template.get("spec") or {})}


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def pods_to_delete(pods: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """replica_set.go getPodsToDelete / controller.ActivePods ordering (first = deleted first).

    Unassigned before assigned, Pending < Unknown < Running, not ready before
    ready, ready for a shorter time first, more restarts first, newer first.
    """
    def restarts(pod):
        return sum(int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or [])

    def ready_since(pod):
        cond = pod_condition(pod, "Ready")
        return (cond or {}).get("lastTransitionTime") or ""

    def key(pod):
        return (
            1 if (pod.get("spec") or {}).get("nodeName") else 0,
            _PHASE_RANK.get((pod.get("status") or {}).get("phase") or "Pending", 0),
            1 if pod_ready(pod) else 0,
            _neg(ready_since(pod)) if pod_ready(pod) else "",
            -restarts(pod),
            _neg(meta(pod).get("creationTimestamp") or ""),
        )
    return sorted(pods, key=key)[:count]


def _neg(text: str) -> str:
    """A sort key that orders timestamps newest first."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)


def replicaset_status(rs: dict[str, Any], pods: list[dict[str, Any]], at: datetime.datetime) -> dict[str, Any]:
    """replica_set_utils.go calculateStatus (active pods only)."""
    template_labels = ((rs.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    status = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(1 for p in pods if all((meta(p).get("labels") or {}).get(k) == v
                                                          for k, v in template_labels.items())),
        "readyReplicas": sum(1 for p in pods if pod_ready(p)),
        "availableReplicas": sum(1 for p in pods if pod_available(p, min_ready, at)),
        "observedGeneration": int(meta(rs).get("generation") or 0),
    }
    out = _omit_zero(status)
    out["replicas"] = status["replicas"]  # not omitempty in apps/v1 ReplicaSetStatus
    return out


# ---- scheduling (pkg/scheduler/framework/plugins: nodeunschedulable, tainttoleration, nodeaffinity) ----
def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """core/v1 Toleration.ToleratesTaint."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("key") and toleration.get("key") != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if not toleration.get("key") and op == "Equal":
        return False
    return (toleration.get("value") or "") == (taint.get("value") or "")


def node_taints(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The Node's taints plus the not-ready taint the node lifecycle controller would add.

    nodelifecycle's TaintNodesByCondition: node.kubernetes.io/not-ready:NoSchedule
    when Ready is False, node.kubernetes.io/unreachable:NoSchedule when it is
    Unknown or missing (no kubelet ever posted it).
    """
    taints = list((node.get("spec") or {}).get("taints") or [])
    ready = condition((node.get("status") or {}).get("conditions") or [], "Ready")
    key = None
    if ready is None or ready.get("status") == "Unknown":
        key = "node.kubernetes.io/unreachable"
    elif ready.get("status") != "True":
        key = "node.kubernetes.io/not-ready"
    if key and not any(t.get("key") == key for t in taints):
        taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def filter_node(pod: dict[str, Any], node: dict[str, Any]) -> str | None:
    """None when the pod fits the node, else the scheduler's reason for the node."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable"):
        taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
        if not any(tolerates(t, taint) for t in tolerations):
            return "node(s) were unschedulable"
    labels = meta(node).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return "node(s) didn't match Pod's node affinity/selector"
    for taint in node_taints(node):
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            # kubernetes/kubernetes#134740 (in 1.35, cherry-picked to 1.34): no taint key or value
            # in pod status any more; "{KEY: VALUE}" was the text before
            return "node(s) had untolerated taint(s)"
    return None


def fit_error(reasons: dict[str, int], nodes: int) -> str:
    """framework.FitError.Error with the DefaultPreemption PostFilter's message."""
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return (f"0/{nodes} nodes are available: {', '.join(parts)}. preemption: 0/{nodes} nodes are available: "
            f"{nodes} Preemption is not helpful for scheduling.")


def choose_node(pod: dict[str, Any], nodes: list[dict[str, Any]], pods: list[dict[str, Any]]
                ) -> tuple[str | None, str | None]:
    """(node name, None) or (None, FailedScheduling message).

    Score: fewest pods of the same controller on the node (the default
    PodTopologySpread constraints spread a ReplicaSet's pods over nodes),
    then fewest pods at all, then node name: a round-robin over equal nodes.
    """
    reasons: dict[str, int] = {}
    fits = []
    for node in nodes:
        reason = filter_node(pod, node)
        if reason is None:
            fits.append(node)
        else:
            reasons[reason] = reasons.get(reason, 0) + 1
    if not fits:
        return None, fit_error(reasons, len(nodes))
    owner = (controller_ref(pod) or {}).get("uid")

    def score(node):
        name = meta(node)["name"]
        here = [p for p in pods if (p.get("spec") or {}).get("nodeName") == name and pod_active(p)]
        same = sum(1 for p in here if owner and (controller_ref(p) or {}).get("uid") == owner)
        return (same, len(here), name)
    return meta(min(fits, key=score))["name"], None


# ---- Endpoints and EndpointSlices (pkg/controller/endpoint, pkg/controller/endpointslice) ----
def should_be_in_endpoints(pod: dict[str, Any], publish_not_ready: bool) -> bool:
    """endpointslice util ShouldPodBeInEndpoints: an IP, not terminal, not deleted (unless publishNotReady)."""
    status = pod.get("status") or {}
    if not status.get("podIP"):
        return False
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if meta(pod).get("deletionTimestamp") and not publish_not_ready:
        return False
    return True


def target_port(service_port: dict[str, Any], pod: dict[str, Any]) -> int | None:
    """podutil.FindPort: a number, or the container port of that name and protocol."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def service_pods(service: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    selector = (service.get("spec") or {}).get("selector") or {}
    ns = meta(service).get("namespace")
    out = [p for p in pods if meta(p).get("namespace") == ns
           and all((meta(p).get("labels") or {}).get(k) == v for k, v in selector.items())]
    return sorted(out, key=lambda p: meta(p)["name"])


def _target_ref(pod: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Pod", "namespace": meta(pod)["namespace"], "name": meta(pod)["name"], "uid": meta(pod)["uid"]}


def endpoint_groups(service: dict[str, Any], pods: list[dict[str, Any]]) -> list[tuple[list[dict[str, Any]], list]]:
    """[(ports, [(pod, ready, serving, terminating)])] grouped by resolved port list, as both controllers do."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[str, tuple[list[dict[str, Any]], list]] = {}
    for pod in service_pods(service, pods):
        if not should_be_in_endpoints(pod, publish):
            continue
        ports = []
        for sp in spec.get("ports") or []:
            number = target_port(sp, pod)
            if number is None:
                continue
            port = {"name": sp.get("name", ""), "port": number, "protocol": sp.get("protocol") or "TCP"}
            if sp.get("appProtocol"):
                port["appProtocol"] = sp["appProtocol"]
            ports.append(port)
        serving = publish or pod_ready(pod)
        terminating = bool(meta(pod).get("deletionTimestamp"))
        key = json.dumps(ports, sort_keys=True)
        groups.setdefault(key, (ports, []))[1].append((pod, serving and not terminating, serving, terminating))
    return [groups[k] for k in sorted(groups)]


def endpoints_object(service: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """endpoints_controller.go syncService: the core/v1 Endpoints (subsets repacked by port list)."""
    subsets = []
    for ports, members in endpoint_groups(service, pods):
        ready, not_ready = [], []
        for pod, is_ready, _serving, _terminating in members:
            addr = {"ip": pod["status"]["podIP"], "targetRef": _target_ref(pod)}
            if (pod.get("spec") or {}).get("nodeName"):
                addr["nodeName"] = pod["spec"]["nodeName"]
            (ready if is_ready else not_ready).append(addr)
        subset: dict[str, Any] = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
        if ports:
            subset["ports"] = [{k: v for k, v in p.items() if k != "name" or v} for p in ports]
        if ready or not_ready:
            subsets.append(subset)
    labels = dict(meta(service).get("labels") or {})
    labels[SKIP_MIRROR_LABEL] = "true"
    obj = {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": meta(service)["name"], "namespace": meta(service)["namespace"], "labels": labels}}
    if subsets:
        obj["subsets"] = subsets
    return obj


def slice_bodies(service: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """endpointslice reconciler: one IPv4 slice per port list (a placeholder without endpoints when empty).

    Names are left out: a new slice gets generateName SERVICE- and existing
    slices are reused by the caller.
    """
    labels = {k: v for k, v in (meta(service).get("labels") or {}).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    labels[SERVICE_NAME_LABEL] = meta(service)["name"]
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels["service.kubernetes.io/headless"] = ""
    base = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": meta(service)["namespace"], "labels": labels,
                         "ownerReferences": [owner_reference(service, "v1", "Service")]},
            "addressType": "IPv4"}
    out = []
    for ports, members in endpoint_groups(service, pods):
        endpoints = []
        for pod, ready, serving, terminating in sorted(members, key=lambda m: m[0]["status"]["podIP"]):
            ep = {"addresses": [pod["status"]["podIP"]],
                  "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                  "targetRef": _target_ref(pod)}
            if (pod.get("spec") or {}).get("nodeName"):
                ep["nodeName"] = pod["spec"]["nodeName"]
            endpoints.append(ep)
        out.append({**copy.deepcopy(base), "endpoints": endpoints, "ports": ports})
    if not out:
        out.append({**copy.deepcopy(base), "endpoints": []})
    return out


def kubernetes_endpoints(ip: str, port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``default/kubernetes`` Endpoints and EndpointSlice of kube-apiserver's endpoint reconciler.

    pkg/controlplane/reconcilers/lease.go (one address per API server, port
    name "https") and endpointsadapter.go endpointSliceFromEndpoints (same
    name, label kubernetes.io/service-name, IPv4, ready endpoints).
    """
    port_spec = {"name": "https", "port": int(port), "protocol": "TCP"}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": "kubernetes", "namespace": "default"},
                 "subsets": [{"addresses": [{"ip": ip}], "ports": [port_spec]}]}
    endpoint_slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": "kubernetes", "namespace": "default",
                                   "labels": {SERVICE_NAME_LABEL: "kubernetes"}},
                      "addressType": "IPv4",
                      "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
                      "ports": [dict(port_spec)]}
    return endpoints, endpoint_slice
