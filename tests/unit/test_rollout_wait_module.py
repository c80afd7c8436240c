"""kubelab_rollout_wait: argument handling, polling, fail-fast and failure
messages, with the API replaced by an in-memory double (the real API side is
in tests/integration/test_workloads_kapi.py)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

import kubelab_rollout_wait as mod

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(seconds, 0.5)


class FakeApi:
    """Serves a scripted sequence of Deployment states (one per poll)."""

    def __init__(self, deployments=None, services=None, slices=None, endpoints=None, pods=None, events=None):
        self.deployment_script = {k: list(v) for k, v in (deployments or {}).items()}
        self.services = services or {}
        self.slices = slices
        self.endpoints_by_name = endpoints or {}
        self._pods = pods or []
        self._events = events or []
        self.calls = []

    def deployment(self, namespace, name):
        self.calls.append(("deployment", namespace, name))
        if name not in self.deployment_script:
            raise mod.NotFound("not found")
        script = self.deployment_script[name]
        return script.pop(0) if len(script) > 1 else script[0]

    def service(self, namespace, name):
        if name not in self.services:
            raise mod.NotFound("not found")
        return self.services[name]

    def endpoint_slices(self, namespace, name):
        if self.slices is None:
            return None
        return self.slices.get(name, [])

    def endpoints(self, namespace, name):
        return self.endpoints_by_name.get(name)

    def pods(self, namespace, selector):
        self.calls.append(("pods", namespace, selector))
        return self._pods

    def events(self, namespace):
        return self._events


def dep(name="nginx", generation=1, observed=1, replicas=2, updated=2, available=2, conditions=None):
    return {
        "metadata": {"name": name, "generation": generation},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
        "status": {
            "observedGeneration": observed,
            "replicas": updated,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": conditions or [],
        },
    }


SVC = {"metadata": {"name": "nginx-svc"}, "spec": {"selector": {"app": "nginx"}}}
PENDING_POD = {
    "metadata": {"name": "nginx-abc-1"},
    "spec": {"nodeName": "w1", "containers": [{"name": "nginx"}]},
    "status": {
        "phase": "Pending",
        "containerStatuses": [
            {"name": "nginx", "ready": False, "state": {"waiting": {"reason": "ErrImagePull"}}}
        ],
    },
}
EVENT = {
    "involvedObject": {"kind": "Pod", "name": "nginx-abc-1"},
    "lastTimestamp": "2026-11-26T22:00:00Z",
    "type": "Warning",
    "reason": "Failed",
    "message": "Failed to pull image nginx:stable-alpine3.17-slim",
}


def run(monkeypatch, capsys, args, api, check_mode=False):
    clock = Clock()
    monkeypatch.setattr(mod, "Api", lambda kubeconfig, context: api)
    monkeypatch.setattr(mod, "monotonic", clock)
    monkeypatch.setattr(mod, "sleep", clock.sleep)
    monkeypatch.setattr(mod, "KUBERNETES_IMPORT_ERROR", None)
    args = dict({"kubeconfig": "/nonexistent/admin.conf", "namespace": "test"}, **args)
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            mod.main()
    out = json.loads(capsys.readouterr().out)
    out["_rc"] = exit_info.value.code
    out["_clock"] = clock.now
    return out


def test_ready_at_once(monkeypatch, capsys):
    api = FakeApi(deployments={"nginx": [dep()]})
    out = run(monkeypatch, capsys, {"deployments": ["nginx"]}, api)
    assert out["_rc"] == 0
    assert out["changed"] is False
    assert out["deployments"]["nginx"]["state"] == "complete"
    assert out["_clock"] == 0


def test_waits_through_stale_generation_then_succeeds(monkeypatch, capsys):
    api = FakeApi(
        deployments={
            "nginx": [
                dep(generation=2, observed=1),
                dep(generation=2, observed=2, updated=1, available=1),
                dep(generation=2, observed=2),
            ]
        }
    )
    out = run(monkeypatch, capsys, {"deployments": ["nginx"], "interval": 1}, api)
    assert out["_rc"] == 0
    assert out["deployments"]["nginx"]["state"] == "complete"
    assert [c for c in api.calls if c[0] == "deployment"] == [("deployment", "test", "nginx")] * 3
    assert out["_clock"] == 2


def test_check_mode_reads_the_same_and_reports_no_change(monkeypatch, capsys):
    api = FakeApi(deployments={"nginx": [dep()]}, services={"nginx-svc": SVC},
                  slices={"nginx-svc": [{"endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}}]}]})
    out = run(monkeypatch, capsys, {"deployments": ["nginx"], "services": ["nginx-svc"]}, api, check_mode=True)
    assert out["_rc"] == 0
    assert out["changed"] is False
    assert out["services"]["nginx-svc"]["ready_addresses"] == ["10.244.1.5"]


def test_timeout_reports_pods_and_events(monkeypatch, capsys):
    api = FakeApi(deployments={"nginx": [dep(updated=2, available=0)]}, pods=[PENDING_POD], events=[EVENT])
    out = run(monkeypatch, capsys, {"deployments": ["nginx"], "timeout": 10, "interval": 2}, api)
    assert out["_rc"] == 1
    assert out["failed"] is True and out["changed"] is False
    msg = out["msg"]
    assert msg.startswith("Timed out after 10s waiting for Deployment(s) nginx in namespace test")
    assert "0 of 2 updated replicas are available" in msg
    assert "pod nginx-abc-1 phase=Pending node=w1 ready=0/1 container nginx: waiting ErrImagePull" in msg
    assert "Warning Pod/nginx-abc-1: Failed Failed to pull image" in msg
    assert out["pods"] and out["events"]
    assert ("pods", "test", "app=nginx") in api.calls
    assert 10 <= out["_clock"] <= 11


def test_deadline_exceeded_fails_fast(monkeypatch, capsys):
    deadline = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": 'ReplicaSet "nginx-abc" has timed out progressing.'}]
    api = FakeApi(deployments={"nginx": [dep(updated=1, available=1, conditions=deadline)]},
                  pods=[PENDING_POD], events=[EVENT])
    out = run(monkeypatch, capsys, {"deployments": ["nginx"], "timeout": 300}, api)
    assert out["_rc"] == 1
    assert out["_clock"] == 0, "must not wait for the timeout"
    assert "exceeded its progress deadline" in out["msg"]
    assert "fail fast" in out["msg"]
    assert "ErrImagePull" in out["msg"]


def test_missing_deployment_is_a_clear_error(monkeypatch, capsys):
    out = run(monkeypatch, capsys, {"deployments": ["nope"]}, FakeApi())
    assert out["_rc"] == 1
    assert out["msg"] == "Deployment test/nope not found: expected it to exist (was it applied?)"


def test_service_without_ready_endpoints_times_out(monkeypatch, capsys):
    api = FakeApi(services={"nginx-svc": SVC},
                  slices={"nginx-svc": [{"endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": False}}]}]},
                  pods=[PENDING_POD], events=[EVENT])
    out = run(monkeypatch, capsys, {"services": ["nginx-svc"], "endpoints_timeout": 4}, api)
    assert out["_rc"] == 1
    assert "Timed out after 4s waiting for Service(s) nginx-svc in namespace test to have a ready endpoint" in out["msg"]
    assert "no ready endpoint (1 not ready: 10.244.1.5)" in out["msg"]
    assert "nginx-abc-1" in out["msg"]


def test_service_endpoints_fallback(monkeypatch, capsys):
    api = FakeApi(services={"nginx-svc": SVC}, slices=None,
                  endpoints={"nginx-svc": {"subsets": [{"addresses": [{"ip": "10.244.2.7"}]}]}})
    out = run(monkeypatch, capsys, {"services": ["nginx-svc"]}, api)
    assert out["_rc"] == 0
    assert out["services"]["nginx-svc"]["source"] == "Endpoints"


@pytest.mark.parametrize(
    "args, message",
    [
        ({"timeout": -1}, "timeout must be 0 or more, got -1"),
        ({"interval": 0}, "interval must be more than 0, got 0.0"),
    ],
)
def test_bad_arguments(monkeypatch, capsys, args, message):
    out = run(monkeypatch, capsys, args, FakeApi())
    assert out["_rc"] == 1
    assert out["msg"] == message


def test_unreadable_kubeconfig(monkeypatch, capsys):
    monkeypatch.setattr(mod, "KUBERNETES_IMPORT_ERROR", None)
    with patch_module_args({"kubeconfig": "/nonexistent/admin.conf", "namespace": "test", "deployments": ["nginx"]}):
        with pytest.raises(SystemExit):
            mod.main()
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] is True
    assert out["msg"].startswith("Cannot load the kubeconfig /nonexistent/admin.conf (context (current)):")


def test_documentation_matches_the_argument_spec():
    import yaml

    doc = yaml.safe_load(mod.DOCUMENTATION)
    yaml.safe_load(mod.EXAMPLES)
    ret = yaml.safe_load(mod.RETURN)
    assert set(ret) >= {"deployments", "services", "elapsed", "pods", "events"}
    spec = mod.argument_spec()
    assert set(doc["options"]) == set(spec)
    for name, option in doc["options"].items():
        assert option["type"] == spec[name]["type"], name
        assert option.get("default") == spec[name].get("default"), name
        assert bool(option.get("required")) == bool(spec[name].get("required")), name
        assert all(isinstance(line, str) for line in option["description"]), name
    assert all(isinstance(note, str) for note in doc["notes"])
