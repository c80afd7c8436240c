"""kubectl's rollout rules and the endpoint readiness rules, on object dicts."""

from __future__ import annotations

import copy

import pytest

from ansible.module_utils.kubelab_rollout import (
    COMPLETE,
    FAILED,
    WAITING,
    deployment_rollout,
    endpoint_slice_addresses,
    endpoints_addresses,
    failure_report,
    pod_state,
    related_events,
    selector_string,
    service_endpoints,
)

pytestmark = pytest.mark.unit


def deployment(generation=1, replicas=2, status=None):
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "test", "generation": generation},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "nginx"}}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def ready_status(n=2, generation=1, **over):
    status = {
        "observedGeneration": generation,
        "replicas": n,
        "updatedReplicas": n,
        "readyReplicas": n,
        "availableReplicas": n,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }
    status.update(over)
    return status


DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "nginx-6c8cf466cd" has timed out progressing.',
}


class TestDeploymentRollout:
    def test_ready(self):
        state = deployment_rollout(deployment(status=ready_status()))
        assert state["state"] == COMPLETE
        assert state["message"] == 'deployment "nginx" successfully rolled out'
        assert (state["replicas"], state["updated_replicas"], state["available_replicas"]) == (2, 2, 2)

    def test_no_status_yet_waits_for_observed_generation(self):
        state = deployment_rollout(deployment())
        assert state["state"] == WAITING
        assert "spec update to be observed" in state["message"]
        assert state["observed_generation"] == 0

    def test_stale_observed_generation_waits_even_if_counts_look_ready(self):
        # generation 2 (e.g. a new capability digest) not yet seen: the old
        # ReplicaSet's counts are complete but must not count.
        state = deployment_rollout(deployment(generation=2, status=ready_status(generation=1)))
        assert state["state"] == WAITING
        assert "generation 2, observed generation 1" in state["message"]

    def test_stale_deadline_condition_is_ignored_until_observed(self):
        status = ready_status(generation=1, conditions=[DEADLINE])
        state = deployment_rollout(deployment(generation=2, status=status))
        assert state["state"] == WAITING

    def test_progress_deadline_exceeded_fails(self):
        status = ready_status(updatedReplicas=1, availableReplicas=1, conditions=[DEADLINE])
        state = deployment_rollout(deployment(status=status))
        assert state["state"] == FAILED
        assert "exceeded its progress deadline" in state["message"]
        assert "has timed out progressing" in state["message"]

    def test_progressing_new_replicas_not_updated(self):
        status = ready_status(
            replicas=2,
            updatedReplicas=1,
            availableReplicas=1,
            conditions=[{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}],
        )
        state = deployment_rollout(deployment(status=status))
        assert state["state"] == WAITING
        assert "1 out of 2 new replicas have been updated" in state["message"]

    def test_old_replicas_pending_termination(self):
        status = ready_status(replicas=3, updatedReplicas=2, availableReplicas=2)
        state = deployment_rollout(deployment(status=status))
        assert state["state"] == WAITING
        assert "1 old replicas are pending termination" in state["message"]

    def test_updated_but_not_available(self):
        status = ready_status(availableReplicas=1, readyReplicas=1)
        state = deployment_rollout(deployment(status=status))
        assert state["state"] == WAITING
        assert "1 of 2 updated replicas are available" in state["message"]

    def test_missing_spec_replicas_means_one(self):
        obj = deployment(status=ready_status(n=1))
        del obj["spec"]["replicas"]
        assert deployment_rollout(obj)["state"] == COMPLETE
        obj["status"]["updatedReplicas"] = 0
        assert deployment_rollout(obj)["state"] == WAITING

    def test_zero_replicas_is_complete(self):
        status = {"observedGeneration": 1}
        assert deployment_rollout(deployment(replicas=0, status=status))["state"] == COMPLETE

    def test_input_not_modified(self):
        obj = deployment(status=ready_status())
        before = copy.deepcopy(obj)
        deployment_rollout(obj)
        assert obj == before


def slice_(*endpoints):
    return {"metadata": {"labels": {"kubernetes.io/service-name": "nginx-svc"}}, "endpoints": list(endpoints)}


class TestEndpoints:
    def test_slices_ready_not_ready_and_nil(self):
        ready, not_ready = endpoint_slice_addresses(
            [
                slice_(
                    {"addresses": ["10.244.1.15"], "conditions": {"ready": True}},
                    {"addresses": ["10.244.2.14"], "conditions": {"ready": False}},
                ),
                slice_({"addresses": ["10.244.2.20"]}),  # nil ready counts as ready
                slice_({"addresses": ["10.244.2.21"], "conditions": {"terminating": True}}),
            ]
        )
        assert ready == ["10.244.1.15", "10.244.2.20"]
        assert not_ready == ["10.244.2.14", "10.244.2.21"]

    def test_endpoints_object(self):
        ready, not_ready = endpoints_addresses(
            {"subsets": [{"addresses": [{"ip": "10.244.1.15"}], "notReadyAddresses": [{"ip": "10.244.2.14"}]}]}
        )
        assert (ready, not_ready) == (["10.244.1.15"], ["10.244.2.14"])

    def test_service_ready_from_slices(self):
        state = service_endpoints("nginx-svc", [slice_({"addresses": ["10.244.1.15"], "conditions": {"ready": True}})])
        assert state["ready"] is True
        assert state["source"] == "EndpointSlice"
        assert "1 ready endpoint(s): 10.244.1.15" in state["message"]

    def test_service_falls_back_to_endpoints_when_slices_not_served(self):
        state = service_endpoints("nginx-svc", None, {"subsets": [{"addresses": [{"ip": "10.244.1.15"}]}]})
        assert state["ready"] is True
        assert state["source"] == "Endpoints"

    def test_service_falls_back_to_endpoints_when_no_slice(self):
        state = service_endpoints("nginx-svc", [], {"subsets": [{"addresses": [{"ip": "10.244.1.15"}]}]})
        assert (state["ready"], state["source"]) == (True, "Endpoints")

    def test_service_only_not_ready(self):
        state = service_endpoints("nginx-svc", [slice_({"addresses": ["10.244.2.14"], "conditions": {"ready": False}})])
        assert state["ready"] is False
        assert "no ready endpoint (1 not ready: 10.244.2.14)" in state["message"]

    def test_service_nothing(self):
        state = service_endpoints("nginx-svc", None, None)
        assert state["ready"] is False
        assert state["source"] is None
        assert state["message"] == 'service "nginx-svc" has no endpoints yet'


def test_pod_state_line_names_waiting_reason_and_node():
    pod = {
        "metadata": {"name": "nginx-6c8cf466cd-mpfz4"},
        "spec": {"nodeName": "w1", "containers": [{"name": "nginx"}]},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "nginx",
                    "ready": False,
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
                }
            ],
        },
    }
    line = pod_state(pod)
    assert line.startswith("pod nginx-6c8cf466cd-mpfz4 phase=Pending node=w1 ready=0/1")
    assert "container nginx: waiting ImagePullBackOff (Back-off pulling image) restarts=3" in line


def test_pod_state_unscheduled():
    pod = {
        "metadata": {"name": "busybox-1"},
        "spec": {"containers": [{"name": "busybox"}]},
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
            ],
        },
    }
    line = pod_state(pod)
    assert "node=<unscheduled>" in line
    assert "unschedulable: Unschedulable 0/3 nodes" in line
    assert "ready=0/1" in line


def test_related_events_filters_sorts_and_limits():
    def ev(name, when, reason, kind="Pod"):
        return {
            "involvedObject": {"kind": kind, "name": name},
            "lastTimestamp": when,
            "type": "Warning",
            "reason": reason,
            "message": reason + " message",
        }

    events = [
        ev("nginx-6c8cf466cd-mpfz4", "2026-01-01T00:00:03Z", "BackOff"),
        ev("nginx", "2026-01-01T00:00:01Z", "ScalingReplicaSet", "Deployment"),
        ev("busybox-9ff887cc8-f5m46", "2026-01-01T00:00:02Z", "Pulled"),
        ev("nginx-6c8cf466cd", "2026-01-01T00:00:02Z", "SuccessfulCreate", "ReplicaSet"),
        ev("nginxother", "2026-01-01T00:00:04Z", "Other"),
    ]
    lines = related_events(events, ["nginx"], limit=2)
    assert len(lines) == 2
    assert "ReplicaSet/nginx-6c8cf466cd: SuccessfulCreate" in lines[0]
    assert "Pod/nginx-6c8cf466cd-mpfz4: BackOff BackOff message" in lines[1]
    assert not any("busybox" in line or "nginxother" in line for line in related_events(events, ["nginx"]))


def test_selector_string_sorted():
    assert selector_string({"tier": "web", "app": "nginx"}) == "app=nginx,tier=web"


def test_failure_report_contains_everything():
    text = failure_report(
        "Timed out",
        ["waiting for nginx"],
        [{"metadata": {"name": "p1"}, "status": {"phase": "Pending"}}],
        ["e1"],
    )
    assert text.splitlines() == [
        "Timed out",
        "  waiting for nginx",
        "Pods:",
        "  pod p1 phase=Pending node=<unscheduled> ready=0/0",
        "Recent events:",
        "  e1",
    ]
    assert "(no pods)" in failure_report("x", [], [], [])
    assert "(no events)" in failure_report("x", [], [], [])
