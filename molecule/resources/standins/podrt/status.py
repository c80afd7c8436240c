"""Pod status as the kubelet writes it (kubernetes/kubernetes release-1.35, cited in CONTRACT.md)."""

from __future__ import annotations

from typing import Any


def _cond(ctype: str, ok: bool, when: str, reason: str | None = None, message: str | None = None) -> dict:
    cond = {"type": ctype, "status": "True" if ok else "False", "lastProbeTime": None,
            "lastTransitionTime": when}
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def pod_status(state: dict[str, Any], running: bool, exit_code: int | None = None,
               host_ip: str = "") -> dict[str, Any]:
    """``status`` of the Pod from podrt's record of it.

    No probes: a running container is started and ready (kubelet: no readiness
    probe -> ready once running). One container, restartPolicy not applied
    (podrt never restarts a container; the kubelet stand-in decides).
    """
    created = state.get("created")
    started = state.get("started")
    name = state.get("container")
    container_status: dict[str, Any] = {
        "name": name, "image": state.get("image"), "imageID": state.get("image"),
        "containerID": f"cri-o://{state['container_id']}", "restartCount": int(state.get("restart_count") or 0),
    }
    if state.get("last_state"):
        container_status["lastState"] = state["last_state"]
    if running:
        container_status.update(ready=True, started=True, state={"running": {"startedAt": started}})
    else:
        code = exit_code
        terminated = {"exitCode": code if code is not None else 137,
                      "reason": "Completed" if code == 0 else "Error",
                      "startedAt": started, "finishedAt": state.get("stopped") or started,
                      "containerID": container_status["containerID"]}
        container_status.update(ready=False, started=False, state={"terminated": terminated})
    if running:
        phase = "Running"
    elif exit_code == 0:
        phase = "Succeeded"
    else:
        phase = "Failed"
    unready = [] if running else [name]
    message = f"containers with unready status: [{' '.join(unready)}]" if unready else None
    conditions = [
        _cond("PodReadyToStartContainers", bool(state.get("ip")), created),
        _cond("Initialized", True, created),
        _cond("Ready", running, started or created, "ContainersNotReady" if unready else None, message),
        _cond("ContainersReady", running, started or created, "ContainersNotReady" if unready else None, message),
        _cond("PodScheduled", True, created),
    ]
    if phase in ("Succeeded", "Failed"):
        # kubelet: a pod that terminated has reason PodCompleted on Ready/ContainersReady
        for cond in conditions[2:4]:
            cond["reason"] = "PodCompleted"
            cond.pop("message", None)
    status: dict[str, Any] = {
        "phase": phase, "conditions": conditions, "qosClass": "BestEffort",
        "startTime": created, "containerStatuses": [container_status],
    }
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    if state.get("ip"):
        status["podIP"] = state["ip"]
        status["podIPs"] = [{"ip": state["ip"]}]
    return status


def waiting_status(container: str, image: str, reason: str, message: str, created: str,
                   host_ip: str = "") -> dict[str, Any]:
    """Status of a pod whose container could not start (ErrImagePull, CreateContainerError, ...): Pending."""
    unready = f"containers with unready status: [{container}]"
    status = {
        "phase": "Pending", "qosClass": "BestEffort", "startTime": created,
        "conditions": [
            _cond("PodReadyToStartContainers", True, created),
            _cond("Initialized", True, created),
            _cond("Ready", False, created, "ContainersNotReady", unready),
            _cond("ContainersReady", False, created, "ContainersNotReady", unready),
            _cond("PodScheduled", True, created),
        ],
        "containerStatuses": [{"name": container, "image": image, "imageID": "", "ready": False,
                               "started": False, "restartCount": 0,
                               "state": {"waiting": {"reason": reason, "message": message}}}],
    }
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    return status
