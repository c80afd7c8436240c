"""The controllers stand-in (molecule/resources/standins/controllers, a TEST DOUBLE).

Pure functions, then whole reconcile passes against the API emulator
(``kube_api``), with this test playing the kubelet (it writes pod status the
way the kubelet stand-in will: phase, podIP, Ready).
"""

from __future__ import annotations

import datetime
import re
import subprocess
import sys

import pytest

from fixtures_kapi import STANDINS, kube_api  # noqa: F401  (pytest fixture)

if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from controllers import logic  # noqa: E402
from controllers.kclient import Client  # noqa: E402
from controllers.manager import Controllers  # noqa: E402

pytestmark = pytest.mark.unit

NS = "test"
TEMPLATE = {"metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}


# ---- pure functions ---------------------------------------------------------
def test_hash_form_and_sensitivity():
    base = logic.compute_hash(TEMPLATE)
    assert re.fullmatch(f"[{logic.ALPHANUMS}]{{1,10}}", base)
    assert logic.compute_hash(TEMPLATE) == base
    changed = {**TEMPLATE, "metadata": {**TEMPLATE["metadata"], "annotations": {"kubelab/capability-digest": "x"}}}
    assert logic.compute_hash(changed) != base
    assert logic.compute_hash(TEMPLATE, 1) != base
    assert logic.compute_hash(TEMPLATE, 1) != logic.compute_hash(TEMPLATE, 2)
    # SafeEncodeString maps by code point: "0" (48) -> ALPHANUMS[48 % 27]
    assert logic.safe_encode("0123") == "".join(logic.ALPHANUMS[c % 27] for c in (48, 49, 50, 51))


def test_fnv32a_reference_values():
    # FNV-1a 32 test vectors (the offset basis for "", and "a")
    assert logic.fnv32a(b"") == 0x811C9DC5
    assert logic.fnv32a(b"a") == 0xE40C292C


def test_equal_ignore_hash():
    with_hash = {"metadata": {"labels": {"app": "nginx", logic.HASH_LABEL: "abc"}}, "spec": TEMPLATE["spec"]}
    assert logic.equal_ignore_hash(with_hash, TEMPLATE)
    other = {"metadata": {"labels": {"app": "nginx"}, "annotations": {"a": "b"}}, "spec": TEMPLATE["spec"]}
    assert not logic.equal_ignore_hash(with_hash, other)


@pytest.mark.parametrize("replicas,surge,unavailable,want", [
    (2, "25%", "25%", (1, 0)),
    (1, "25%", "25%", (1, 0)),
    (4, "25%", "25%", (1, 1)),
    (3, 0, 0, (0, 1)),
    (10, "50%", 2, (5, 2)),
])
def test_resolve_fenceposts(replicas, surge, unavailable, want):
    spec = logic.deployment_spec({"spec": {"replicas": replicas, "strategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}})
    assert logic.resolve_fenceposts(spec) == want


def test_deployment_defaults():
    spec = logic.deployment_spec({"spec": {}})
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600


def _node(name, ready="True", taints=None, unschedulable=False, labels=None):
    node = {"metadata": {"name": name, "labels": labels or {}}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": ready}] if ready else []}}
    if taints:
        node["spec"]["taints"] = taints
    if unschedulable:
        node["spec"]["unschedulable"] = True
    return node


CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def test_scheduler_filters_and_message():
    pod = {"metadata": {"name": "p"}, "spec": {}}
    nodes = [_node("cp", taints=[CP_TAINT]), _node("w1", ready="False"), _node("w2", unschedulable=True),
             _node("w3", ready=None)]
    node, message = logic.choose_node(pod, nodes, [])
    assert node is None
    assert message == (
        # reasons sorted as strings ("COUNT REASON"), as FitError.Error sorts them
        "0/4 nodes are available: 1 node(s) were unschedulable, "
        "3 node(s) had untolerated taint(s). preemption: 0/4 nodes are available: 4 Preemption is not helpful "
        "for scheduling.")
    # each of the three is refused for its taint: the control-plane one, not-ready, unreachable
    for name in ("cp", "w1", "w3"):
        assert logic.filter_node(pod, next(n for n in nodes if n["metadata"]["name"] == name)) == \
            "node(s) had untolerated taint(s)"
    assert logic.filter_node(pod, _node("w4")) is None
    tolerant = {"metadata": {"name": "p"}, "spec": {"tolerations": [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]}}
    assert logic.choose_node(tolerant, nodes, []) == ("cp", None)


@pytest.mark.parametrize("toleration,fits", [
    ({"operator": "Exists"}, True),
    ({"key": "k", "operator": "Exists"}, True),
    ({"key": "k", "value": "v"}, True),
    ({"key": "k", "value": "w"}, False),
    ({"key": "k", "value": "v", "effect": "NoExecute"}, False),
    ({"key": "other", "operator": "Exists"}, False),
])
def test_tolerations(toleration, fits):
    assert logic.tolerates(toleration, {"key": "k", "value": "v", "effect": "NoSchedule"}) is fits


def test_prefer_no_schedule_does_not_filter():
    pod = {"metadata": {"name": "p"}, "spec": {}}
    assert logic.filter_node(pod, _node("w", taints=[{"key": "k", "effect": "PreferNoSchedule"}])) is None


def test_rolling_scale_down_keeps_min_available():
    spec = logic.deployment_spec({"spec": {"replicas": 2}})
    old = {"metadata": {"name": "old", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"replicas": 2},
           "status": {"replicas": 2, "availableReplicas": 2}}
    new = {"metadata": {"name": "new", "creationTimestamp": "2026-01-02T00:00:00Z"}, "spec": {"replicas": 1},
           "status": {"replicas": 1, "availableReplicas": 0}}
    # the new pod is not available yet: maxUnavailable 0 forbids scaling old down
    assert logic.old_rs_scale_down(spec, [old, new], [old], new) == {}
    new["status"]["availableReplicas"] = 1
    assert logic.old_rs_scale_down(spec, [old, new], [old], new) == {"old": 1}


def test_pods_to_delete_order():
    def pod(name, node, phase, ready, created):
        conds = [{"type": "Ready", "status": "True" if ready else "False"}]
        return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"nodeName": node} if node else {},
                "status": {"phase": phase, "conditions": conds}}
    pods = [pod("running-old", "w1", "Running", True, "2026-01-01T00:00:00Z"),
            pod("running-new", "w1", "Running", True, "2026-01-02T00:00:00Z"),
            pod("pending", "w1", "Pending", False, "2026-01-01T00:00:00Z"),
            pod("unassigned", None, "Pending", False, "2026-01-01T00:00:00Z")]
    assert [p["metadata"]["name"] for p in logic.pods_to_delete(pods, 3)] == ["unassigned", "pending", "running-new"]


def test_status_conditions_and_timeout():
    d = {"metadata": {"name": "d", "generation": 2}, "spec": {"replicas": 2}, "status": {}}
    new_rs = {"metadata": {"name": "d-abc"}, "spec": {"replicas": 2},
              "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}}
    status = logic.rollout_status(d, [new_rs], new_rs)
    assert status["observedGeneration"] == 2 and status["updatedReplicas"] == 2
    assert "unavailableReplicas" not in status  # omitempty
    avail = logic.condition(status["conditions"], "Available")
    prog = logic.condition(status["conditions"], "Progressing")
    assert (avail["status"], avail["reason"]) == ("True", "MinimumReplicasAvailable")
    assert (prog["status"], prog["reason"], prog["message"]) == (
        "True", "NewReplicaSetAvailable", 'ReplicaSet "d-abc" has successfully progressed.')
    # no progress for longer than progressDeadlineSeconds -> ProgressDeadlineExceeded
    stuck_rs = {"metadata": {"name": "d-abc"}, "spec": {"replicas": 2}, "status": {"replicas": 2}}
    old = "2026-01-01T00:00:00Z"
    d["status"] = {"replicas": 2, "updatedReplicas": 2, "conditions": [
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "lastUpdateTime": old,
         "lastTransitionTime": old, "message": "x"}]}
    at = datetime.datetime(2026, 1, 1, 0, 11, tzinfo=datetime.timezone.utc)
    status = logic.rollout_status(d, [stuck_rs], stuck_rs, at)
    prog = logic.condition(status["conditions"], "Progressing")
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert logic.condition(status["conditions"], "Available")["status"] == "False"
    at = datetime.datetime(2026, 1, 1, 0, 9, tzinfo=datetime.timezone.utc)
    prog = logic.condition(logic.rollout_status(d, [stuck_rs], stuck_rs, at)["conditions"], "Progressing")
    assert prog["reason"] == "ReplicaSetUpdated"


def test_named_target_port_and_slices():
    svc = {"metadata": {"name": "web", "namespace": NS, "uid": "u1", "labels": {"tier": "x"}},
           "spec": {"selector": {"app": "nginx"}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}
    pod = {"metadata": {"name": "p1", "namespace": NS, "uid": "p", "labels": {"app": "nginx"}},
           "spec": {"nodeName": "w1", "containers": [{"ports": [{"name": "web", "containerPort": 8080}]}]},
           "status": {"podIP": "10.244.1.5", "phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}
    (body,) = logic.slice_bodies(svc, [pod])
    assert body["metadata"]["labels"] == {"tier": "x", logic.SERVICE_NAME_LABEL: "web", logic.MANAGED_BY_LABEL: logic.MANAGED_BY}
    assert body["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert body["endpoints"][0]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    eps = logic.endpoints_object(svc, [pod])
    assert eps["subsets"][0]["notReadyAddresses"][0]["ip"] == "10.244.1.5" and "addresses" not in eps["subsets"][0]
    # a pod without an IP or in a terminal phase is not an endpoint: the placeholder slice has none
    pod["status"]["phase"] = "Failed"
    (placeholder,) = logic.slice_bodies(svc, [pod])
    assert placeholder["endpoints"] == [] and "ports" not in placeholder
    assert "subsets" not in logic.endpoints_object(svc, [pod])


# ---- against the API emulator -------------------------------------------------
class Lab:
    """The emulator, the controllers, and this test as the kubelet."""

    def __init__(self, api):
        self.api = api
        self.client = Client(api.kubeconfig)
        self.ctl = Controllers(self.client, log=lambda line: None)
        self.ips = iter(f"10.244.{n}.{h}" for h in range(10, 250) for n in (1, 2))
        self.client.create("namespaces", None, {"metadata": {"name": NS}})
        self.add_node("cp01", taints=[CP_TAINT])
        self.add_node("worker01")
        self.add_node("worker02")

    def add_node(self, name, ready="True", taints=None):
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {},
                "status": {"conditions": [{"type": "Ready", "status": ready}],
                           "addresses": [{"type": "InternalIP", "address": "198.18.0.1"}]}}
        if taints:
            body["spec"]["taints"] = taints
        self.client.create("nodes", None, body)

    def deployment(self, name, replicas, labels, annotations=None):
        template = {"metadata": {"labels": labels}, "spec": {"containers": [
            {"name": name, "image": f"{name}:1", "ports": [{"containerPort": 80}]}]}}
        if annotations:
            template["metadata"]["annotations"] = annotations
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": NS, "labels": labels},
                "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template}}

    def kubelet(self, ready=True):
        """Start every scheduled pod that has no IP yet (phase Running, podIP, Ready); how many."""
        started = 0
        for pod in self.pods():
            if pod["spec"].get("nodeName") and not (pod.get("status") or {}).get("podIP"):
                self.set_ready(pod, ready)
                started += 1
        return started

    def set_ready(self, pod, ready):
        status = dict(pod.get("status") or {})
        status.update({"phase": "Running", "podIP": status.get("podIP") or next(self.ips)})
        conds = [c for c in status.get("conditions") or [] if c["type"] not in ("Ready", "ContainersReady")]
        conds += [{"type": t, "status": "True" if ready else "False",
                   "lastTransitionTime": logic.timestamp()} for t in ("Ready", "ContainersReady")]
        status["conditions"] = conds
        self.client.patch("pods", NS, pod["metadata"]["name"], {"status": status}, sub="status")

    def pods(self, selector=None):
        return self.client.list("pods", NS, label_selector=selector)

    def settle(self, ready=True, rounds=10):
        for _ in range(rounds):
            actions = self.ctl.reconcile_once()
            if not self.kubelet(ready) and not actions:
                return
        raise AssertionError(f"did not settle: {actions}")

    def rollout_status(self, name):
        return self.api.kubectl("-n", NS, "rollout", "status", f"deployment/{name}", "--timeout=5s", check=False)


@pytest.fixture
def lab(kube_api, monkeypatch):  # noqa: F811
    # kubectl >= 1.35 lists through a watch with sendInitialEvents=true and waits for
    # the initial-events-end bookmark, which the emulator does not send: plain list+watch
    monkeypatch.setenv("KUBE_FEATURE_WatchListClient", "false")
    return Lab(kube_api)


def test_deployment_to_pods_scheduled_over_workers(lab):
    lab.client.create("deployments", NS, lab.deployment("nginx", 2, {"app": "nginx"}))
    lab.ctl.reconcile_once()
    (rs,) = lab.client.list("replicasets", NS)
    d = lab.client.get("deployments", NS, "nginx")
    want_hash = logic.compute_hash(d["spec"]["template"])
    assert rs["metadata"]["name"] == f"nginx-{want_hash}"
    assert rs["metadata"]["labels"][logic.HASH_LABEL] == want_hash
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "nginx", logic.HASH_LABEL: want_hash}
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert rs["metadata"]["annotations"][logic.REVISION] == "1"
    lab.settle()
    pods = lab.pods()
    assert len(pods) == 2
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["worker01", "worker02"]  # never the tainted cp01
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"nginx-{want_hash}-")
        assert pod["metadata"]["labels"] == {"app": "nginx", logic.HASH_LABEL: want_hash}
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        assert pod["spec"]["containers"] == d["spec"]["template"]["spec"]["containers"]
        assert logic.pod_condition(pod, "PodScheduled")["status"] == "True"
    d = lab.client.get("deployments", NS, "nginx")
    st = d["status"]
    assert (st["observedGeneration"], st["replicas"], st["updatedReplicas"], st["readyReplicas"],
            st["availableReplicas"]) == (d["metadata"]["generation"], 2, 2, 2, 2)
    assert logic.condition(st["conditions"], "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert d["metadata"]["annotations"][logic.REVISION] == "1"
    out = lab.rollout_status("nginx")
    assert out.returncode == 0 and "successfully rolled out" in out.stdout, out.stdout + out.stderr


def test_not_ready_pods_keep_rollout_waiting(lab):
    lab.client.create("deployments", NS, lab.deployment("nginx", 2, {"app": "nginx"}))
    lab.settle(ready=False)
    st = lab.client.get("deployments", NS, "nginx")["status"]
    assert st["replicas"] == 2 and st["updatedReplicas"] == 2 and "availableReplicas" not in st
    assert logic.condition(st["conditions"], "Available")["status"] == "False"
    out = lab.rollout_status("nginx")
    assert out.returncode != 0
    assert "0 of 2 updated replicas are available" in out.stdout


def test_template_change_rolls_out_new_replicaset(lab):
    lab.client.create("deployments", NS, lab.deployment("busybox", 1, {"app": "busybox"},
                                                        {"kubelab.io/capability-digest": "aaa"}))
    lab.settle()
    (first,) = lab.pods()
    old_hash = first["metadata"]["labels"][logic.HASH_LABEL]
    lab.client.patch("deployments", NS, "busybox", {"spec": {"template": {"metadata": {
        "annotations": {"kubelab.io/capability-digest": "bbb"}}}}})
    # one pass: new ReplicaSet with the surge pod; the old pod stays until the new one is available
    lab.ctl.reconcile_once()
    d = lab.client.get("deployments", NS, "busybox")
    assert d["status"]["observedGeneration"] == 2  # observed in the same sync that created the ReplicaSet
    prog = logic.condition(d["status"]["conditions"], "Progressing")
    assert prog["reason"] == "NewReplicaSetCreated" and prog["message"].startswith('Created new replica set "busybox-')
    assert d["status"]["replicas"] == 1 and d["status"].get("updatedReplicas", 0) == 0
    out = lab.rollout_status("busybox")
    assert out.returncode != 0 and "0 out of 1 new replicas have been updated" in out.stdout, out.stdout
    lab.ctl.reconcile_once()
    names = {p["metadata"]["name"] for p in lab.pods()}
    assert first["metadata"]["name"] in names and len(names) == 2
    lab.settle()
    (pod,) = lab.pods()
    assert pod["metadata"]["name"] != first["metadata"]["name"]
    assert pod["metadata"]["annotations"] == {"kubelab.io/capability-digest": "bbb"}
    assert pod["metadata"]["labels"][logic.HASH_LABEL] != old_hash
    rs = {r["metadata"]["name"]: r for r in lab.client.list("replicasets", NS)}
    assert rs[f"busybox-{old_hash}"]["spec"]["replicas"] == 0
    assert rs[f"busybox-{old_hash}"]["metadata"]["annotations"][logic.REVISION] == "1"
    new_name = pod["metadata"]["ownerReferences"][0]["name"]
    assert rs[new_name]["metadata"]["annotations"][logic.REVISION] == "2"
    d = lab.client.get("deployments", NS, "busybox")
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"] == 2
    assert d["status"]["replicas"] == d["status"]["updatedReplicas"] == 1
    assert lab.rollout_status("busybox").returncode == 0


def test_unschedulable_pod_reports_reason(lab):
    lab.client.delete("nodes", None, "worker01")
    lab.client.delete("nodes", None, "worker02")
    lab.client.create("deployments", NS, lab.deployment("nginx", 1, {"app": "nginx"}))
    lab.settle()
    (pod,) = lab.pods()
    assert "nodeName" not in pod["spec"]
    cond = logic.pod_condition(pod, "PodScheduled")
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert cond["message"].startswith("0/1 nodes are available: 1 node(s) had untolerated taint(s).")
    # a worker joins: the pod gets scheduled there
    lab.add_node("worker03")
    lab.settle()
    assert lab.pods()[0]["spec"]["nodeName"] == "worker03"


def test_endpoints_and_slices_follow_ready_pods(lab):
    lab.client.create("deployments", NS, lab.deployment("nginx", 2, {"app": "nginx"}))
    lab.client.create("services", NS, {"metadata": {"name": "nginx-svc"}, "spec": {
        "selector": {"app": "nginx"}, "ports": [{"name": "http", "port": 8080, "targetPort": 80}]}})
    lab.client.create("services", NS, {"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 1}]}})
    lab.settle()
    pods = {p["status"]["podIP"]: p for p in lab.pods()}
    slices = lab.client.list("endpointslices", NS, label_selector=f"{logic.SERVICE_NAME_LABEL}=nginx-svc")
    assert len(slices) == 1
    (sl,) = slices
    assert sl["metadata"]["name"].startswith("nginx-svc-") and sl["addressType"] == "IPv4"
    assert sl["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    assert sorted(e["addresses"][0] for e in sl["endpoints"]) == sorted(pods)
    assert all(e["conditions"]["ready"] for e in sl["endpoints"])
    assert {e["nodeName"] for e in sl["endpoints"]} == {"worker01", "worker02"}
    eps = lab.client.get("endpoints", NS, "nginx-svc")
    assert sorted(a["ip"] for a in eps["subsets"][0]["addresses"]) == sorted(pods)
    assert eps["subsets"][0]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    # a Service without a selector gets nothing from the controllers
    assert lab.client.get("endpoints", NS, "manual") is None
    assert not lab.client.list("endpointslices", NS, label_selector=f"{logic.SERVICE_NAME_LABEL}=manual")
    # one pod stops being ready: it moves to notReady, the other stays
    ip, pod = sorted(pods.items())[0]
    lab.set_ready(pod, False)
    lab.ctl.reconcile_once()
    (sl,) = lab.client.list("endpointslices", NS, label_selector=f"{logic.SERVICE_NAME_LABEL}=nginx-svc")
    assert {e["addresses"][0]: e["conditions"]["ready"] for e in sl["endpoints"]}[ip] is False
    eps = lab.client.get("endpoints", NS, "nginx-svc")
    assert [a["ip"] for a in eps["subsets"][0]["notReadyAddresses"]] == [ip]
    # the rollout module's reader sees one ready address
    from ansible.module_utils.kubelab_rollout import service_endpoints  # noqa: PLC0415
    result = service_endpoints("nginx-svc", slices=[sl])
    assert result["ready_addresses"] == [other for other in sorted(pods) if other != ip]
    assert result["not_ready_addresses"] == [ip]


def test_deleting_deployment_and_service_cleans_up(lab):
    lab.client.create("deployments", NS, lab.deployment("nginx", 2, {"app": "nginx"}))
    lab.client.create("services", NS, {"metadata": {"name": "nginx-svc"}, "spec": {
        "selector": {"app": "nginx"}, "ports": [{"port": 80}]}})
    lab.settle()
    assert len(lab.pods()) == 2
    lab.client.delete("deployments", NS, "nginx")
    lab.client.delete("services", NS, "nginx-svc")
    lab.settle()
    assert lab.pods() == [] and lab.client.list("replicasets", NS) == []
    assert lab.client.list("endpointslices", NS) == [] and lab.client.get("endpoints", NS, "nginx-svc") is None


def test_scale_down_deletes_pods(lab):
    lab.client.create("deployments", NS, lab.deployment("nginx", 3, {"app": "nginx"}))
    lab.settle()
    assert len(lab.pods()) == 3
    lab.client.patch("deployments", NS, "nginx", {"spec": {"replicas": 1}})
    lab.settle()
    assert len(lab.pods()) == 1
    st = lab.client.get("deployments", NS, "nginx")["status"]
    assert (st["replicas"], st["availableReplicas"]) == (1, 1)


def test_cli_once(kube_api):  # noqa: F811
    client = Client(kube_api.kubeconfig)
    client.create("namespaces", None, {"metadata": {"name": NS}})
    client.create("nodes", None, {"metadata": {"name": "w1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    client.create("deployments", NS, Lab.deployment(None, "web", 1, {"app": "web"}))
    proc = subprocess.run([sys.executable, "-m", "controllers", "--kubeconfig", kube_api.kubeconfig, "--once"],
                          capture_output=True, text=True, timeout=60, cwd=STANDINS, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "created replicaset web-" in proc.stdout and "scheduler: pod test/web-" in proc.stdout
    (pod,) = client.list("pods", NS)
    assert pod["spec"]["nodeName"] == "w1"
    bad = subprocess.run([sys.executable, "-m", "controllers", "--kubeconfig", "/nonexistent", "--once"],
                         capture_output=True, text=True, timeout=60, cwd=STANDINS, check=False)
    assert bad.returncode == 1 and "controllers: cannot use kubeconfig /nonexistent" in bad.stderr


def test_cli_loop_mode_reconciles_until_sigterm(kube_api):  # noqa: F811
    import time  # noqa: PLC0415

    client = Client(kube_api.kubeconfig)
    client.create("namespaces", None, {"metadata": {"name": NS}})
    client.create("nodes", None, {"metadata": {"name": "w1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    proc = subprocess.Popen([sys.executable, "-m", "controllers", "--kubeconfig", kube_api.kubeconfig,
                             "--interval", "0.2"], cwd=STANDINS, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        client.create("deployments", NS, Lab.deployment(None, "web", 2, {"app": "web"}))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pods = client.list("pods", NS)
            if len(pods) == 2 and all(p["spec"].get("nodeName") == "w1" for p in pods):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no scheduled pods: {client.list('pods', NS)}")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "controllers: running" in out


def test_apiserver_endpoint_reconciler(kube_api):  # noqa: F811
    client = Client(kube_api.kubeconfig)
    ctl = Controllers(client, log=lambda line: None, apiserver_endpoint=("198.18.0.10", 6443))
    ctl.settle()
    eps = client.get("endpoints", "default", "kubernetes")
    assert eps["subsets"] == [{"addresses": [{"ip": "198.18.0.10"}],
                               "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    sl = client.get("endpointslices", "default", "kubernetes")
    assert sl["metadata"]["labels"] == {logic.SERVICE_NAME_LABEL: "kubernetes"}
    assert sl["endpoints"] == [{"addresses": ["198.18.0.10"], "conditions": {"ready": True}}]
    assert ctl.reconcile_once() == []  # idempotent
    # without the option nothing touches them (the Service has no selector)
    assert Controllers(client, log=lambda line: None).settle() == []
    assert client.get("endpoints", "default", "kubernetes") is not None
    bad = subprocess.run([sys.executable, "-m", "controllers", "--kubeconfig", kube_api.kubeconfig, "--once",
                          "--apiserver-endpoint", "nohost"], capture_output=True, text=True, timeout=60,
                         cwd=STANDINS, check=False)
    assert bad.returncode == 2 and "expected IPv4:PORT" in bad.stderr
