"""The workloads stage against the Kubernetes API emulator (kapi: kmock plus
kubelab's adapter, a test double with no controllers).

- playbooks/workloads.yml through ansible-playbook, on the implicit localhost
  of a tiny inventory: first run changed, second run unchanged; a changed
  CRI-O capability list changes only the busybox Deployment's pod template;
  workloads_state=absent removes the namespace, and a rerun is unchanged.
- the wait, with Deployment status and EndpointSlices set by the test (no
  controller fills them in here): the play passes when they say ready.
- kubelab_rollout_wait (in-process, real kubernetes client over HTTP to the
  emulator): ready passes; progressing times out with the pods' states and
  the recent events in the message; ProgressDeadlineExceeded fails at once.
- a cluster that denies externalIPs by admission: a small proxy in front of
  the emulator answers Service writes that carry externalIPs the way
  kube-apiserver's DenyServiceExternalIPs plugin does (403), and the play
  must fail with the plain explanation.

Loopback only: the addresses in the inventory are documentation addresses
(RFC 5737) that are only stored in the emulator, never contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from fixtures_kapi import kube_api_module  # noqa: F401  (pytest fixture)

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
DIGEST = "kubelab.io/crio-capabilities-digest"

INVENTORY = {
    "all": {
        "children": {
            "control_plane": {"hosts": {"cp1": {"ansible_host": "192.0.2.10"}}},
            "workers": {
                "hosts": {
                    "w1": {"ansible_host": "192.0.2.11", "kubelab_node_ip": "192.0.2.21"},
                    "w2": {"ansible_host": "192.0.2.12"},
                }
            },
        }
    }
}


@pytest.fixture
def kube_api(kube_api_module):  # noqa: F811
    """The module's emulator, without the test namespace (the emulator deletes
    a namespace's content with it, at once): every test starts clean."""
    import kubernetes.client
    from kubernetes.client.rest import ApiException

    api = kubernetes.client.CoreV1Api(kube_api_module.client())
    try:
        api.delete_namespace("test")
    except ApiException as exc:
        if exc.status != 404:
            raise
    assert "test" not in [ns.metadata.name for ns in api.list_namespace().items]
    return kube_api_module


def play(tmp_path, kubeconfig, *args, **extra):
    """Run playbooks/workloads.yml; return (returncode, stats for localhost, output)."""
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(INVENTORY))
    extra = dict({"kubelab_admin_kubeconfig": kubeconfig, "workloads_wait": False}, **extra)
    extra_file = tmp_path / f"extra-{time.monotonic_ns()}.json"
    extra_file.write_text(json.dumps(extra))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
    )
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inv), str(ROOT / "playbooks" / "workloads.yml"), "-e", f"@{extra_file}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    try:
        # ansible.cfg enables profile_tasks: its lines come before and after
        # the json callback's document.
        start = proc.stdout.index("\n{\n") + 1 if not proc.stdout.startswith("{") else 0
        data, _ = json.JSONDecoder().raw_decode(proc.stdout[start:])
    except ValueError:
        pytest.fail(f"no JSON from ansible-playbook (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    stats = data["stats"].get("localhost", {})
    return proc.returncode, stats, data


def failures(data):
    msgs = []
    for p in data["plays"]:
        for task in p["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed"):
                    msgs.append(f"{task['task']['name']}: {result.get('msg')}")
    return msgs


def changed_tasks(data):
    """[(task name, ["Kind ns/name" of each changed object])] of changed tasks."""
    out = []
    for p in data["plays"]:
        for task in p["tasks"]:
            result = task["hosts"].get("localhost", {})
            if result.get("changed"):
                inner = result.get("result") or {}
                items = inner.get("results", [result]) if isinstance(inner, dict) else [result]
                labels = []
                for item in items:
                    obj = item.get("result") or {}
                    if item.get("changed") and isinstance(obj, dict) and obj.get("metadata"):
                        meta = obj["metadata"]
                        labels.append(f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name')}")
                out.append((task["task"]["name"], labels))
    return out


def apps(api):
    import kubernetes.client

    return kubernetes.client.AppsV1Api(api.client())


def core(api):
    import kubernetes.client

    return kubernetes.client.CoreV1Api(api.client())


def test_apply_is_idempotent_and_digest_rolls_only_busybox(kube_api, tmp_path):
    rc, stats, data = play(tmp_path, kube_api.kubeconfig)
    assert rc == 0, failures(data)
    assert stats["changed"] >= 1
    # one module run for every object, the namespace first
    [(name, labels)] = changed_tasks(data)
    assert name == "workloads : Apply the namespace, Deployments and Services"
    assert labels[0] == "Namespace /test"
    assert sorted(labels) == sorted(
        [
            "Namespace /test",
            "Deployment test/nginx",
            "Deployment test/busybox",
            "Service test/nginx-svc",
            "Service test/nginx-svc-lb",
            "Service test/nginx-svc-np",
        ]
    )

    svcs = {s.metadata.name: s for s in core(kube_api).list_namespaced_service("test").items}
    assert set(svcs) == {"nginx-svc", "nginx-svc-lb", "nginx-svc-np"}
    for svc in svcs.values():
        assert svc.spec.external_ips == ["192.0.2.21", "192.0.2.12"]
        assert svc.spec.selector == {"app": "nginx"}
    node_ports = {n: svcs[n].spec.ports[0].node_port for n in ("nginx-svc-lb", "nginx-svc-np")}
    assert all(30000 <= p <= 32767 for p in node_ports.values())
    nginx = apps(kube_api).read_namespaced_deployment("nginx", "test")
    busybox = apps(kube_api).read_namespaced_deployment("busybox", "test")
    assert nginx.spec.replicas == 2 and busybox.spec.replicas == 1
    digest = busybox.spec.template.metadata.annotations[DIGEST]
    generations = (nginx.metadata.generation, busybox.metadata.generation)

    rc, stats, data = play(tmp_path, kube_api.kubeconfig)
    assert rc == 0, failures(data)
    assert stats["changed"] == 0, changed_tasks(data)
    # the server-allocated nodePorts survive a re-apply
    again = {s.metadata.name: s for s in core(kube_api).list_namespaced_service("test").items}
    assert {n: again[n].spec.ports[0].node_port for n in node_ports} == node_ports

    caps = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"]
    rc, stats, data = play(tmp_path, kube_api.kubeconfig, crio_default_capabilities=caps)
    assert rc == 0, failures(data)
    assert changed_tasks(data) == [("workloads : Apply the namespace, Deployments and Services", ["Deployment test/busybox"])]
    nginx = apps(kube_api).read_namespaced_deployment("nginx", "test")
    busybox = apps(kube_api).read_namespaced_deployment("busybox", "test")
    assert busybox.spec.template.metadata.annotations[DIGEST] != digest
    assert (nginx.metadata.generation, busybox.metadata.generation) == (generations[0], generations[1] + 1)

    rc, stats, data = play(tmp_path, kube_api.kubeconfig, crio_default_capabilities=list(reversed(caps)))
    assert rc == 0 and stats["changed"] == 0, changed_tasks(data)


def test_absent_removes_the_namespace_and_is_idempotent(kube_api, tmp_path):
    rc, _, data = play(tmp_path, kube_api.kubeconfig)
    assert rc == 0, failures(data)
    rc, stats, data = play(tmp_path, kube_api.kubeconfig, workloads_state="absent")
    assert rc == 0, failures(data)
    assert stats["changed"] == 1
    names = [ns.metadata.name for ns in core(kube_api).list_namespace().items]
    assert "test" not in names
    assert apps(kube_api).list_deployment_for_all_namespaces().items == []
    rc, stats, data = play(tmp_path, kube_api.kubeconfig, workloads_state="absent")
    assert rc == 0 and stats["changed"] == 0, changed_tasks(data)


def test_check_mode_changes_nothing(kube_api, tmp_path):
    rc, stats, data = play(tmp_path, kube_api.kubeconfig, "--check", workloads_wait=True)
    assert rc == 0, failures(data)
    assert stats["changed"] == 1  # would apply
    assert "test" not in [ns.metadata.name for ns in core(kube_api).list_namespace().items]


def test_missing_kubeconfig_is_a_clear_error(tmp_path):
    rc, _, data = play(tmp_path, str(tmp_path / "nope" / "admin.conf"))
    assert rc != 0
    [msg] = failures(data)
    assert "does not exist on the controller" in msg and "control_plane stage" in msg


# --- the wait, with the status a controller would have written -------------


def set_deployment_status(api, name, status, generation=None):
    obj = apps(api).read_namespaced_deployment(name, "test")
    status = dict({"observedGeneration": generation or obj.metadata.generation}, **status)
    apps(api).patch_namespaced_deployment_status(name, "test", {"status": status})


def ready(name, replicas):
    return {
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
    }


def add_slice(api, service, addresses, ready_flag=True):
    import kubernetes.client

    body = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-abcde", "namespace": "test",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [a], "conditions": {"ready": ready_flag}} for a in addresses],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }
    kubernetes.client.DiscoveryV1Api(api.client()).create_namespaced_endpoint_slice("test", body)


def add_pod(api, name, labels, status):
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "test", "labels": labels},
            "spec": {"nodeName": "w1", "containers": [{"name": "nginx", "image": "nginx:stable-alpine3.17-slim"}]}}
    core(api).create_namespaced_pod("test", body)
    core(api).patch_namespaced_pod_status(name, "test", {"status": status})


def add_event(api, name, involved_kind, involved_name, reason, message):
    body = {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "test"},
            "involvedObject": {"kind": involved_kind, "name": involved_name, "namespace": "test"},
            "reason": reason, "message": message, "type": "Warning",
            "lastTimestamp": "2026-11-26T22:00:00Z", "count": 3}
    core(api).create_namespaced_event("test", body)


def test_play_waits_for_ready_status_and_endpoints(kube_api, tmp_path):
    rc, _, data = play(tmp_path, kube_api.kubeconfig)
    assert rc == 0, failures(data)
    set_deployment_status(kube_api, "nginx", ready("nginx", 2))
    set_deployment_status(kube_api, "busybox", ready("busybox", 1))
    for svc in ("nginx-svc", "nginx-svc-lb", "nginx-svc-np"):
        add_slice(kube_api, svc, ["10.244.1.15", "10.244.2.14"])
    rc, stats, data = play(tmp_path, kube_api.kubeconfig, workloads_wait=True,
                           workloads_rollout_timeout=10, workloads_endpoints_timeout=5, workloads_wait_interval=0.5)
    assert rc == 0, failures(data)
    assert stats["changed"] == 0
    waits = [t for p in data["plays"] for t in p["tasks"] if "Wait for the Deployments" in t["task"]["name"]]
    result = waits[0]["hosts"]["localhost"]
    assert result["deployments"]["nginx"]["state"] == "complete"
    assert result["services"]["nginx-svc-np"]["ready_addresses"] == ["10.244.1.15", "10.244.2.14"]


def test_play_fails_with_pod_states_when_rollout_never_completes(kube_api, tmp_path):
    rc, _, data = play(tmp_path, kube_api.kubeconfig)
    assert rc == 0, failures(data)
    set_deployment_status(kube_api, "nginx", dict(ready("nginx", 2), availableReplicas=1, readyReplicas=1))
    set_deployment_status(kube_api, "busybox", ready("busybox", 1))
    add_pod(kube_api, "nginx-6c8cf466cd-xgbd7", {"app": "nginx"},
            {"phase": "Pending", "containerStatuses": [
                {"name": "nginx", "ready": False, "restartCount": 0, "image": "nginx:stable-alpine3.17-slim", "imageID": "",
                 "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]})
    add_event(kube_api, "nginx-6c8cf466cd-xgbd7.1", "Pod", "nginx-6c8cf466cd-xgbd7", "Failed",
              "Failed to pull image \"nginx:stable-alpine3.17-slim\"")
    t0 = time.monotonic()
    rc, _, data = play(tmp_path, kube_api.kubeconfig, workloads_wait=True,
                       workloads_rollout_timeout=3, workloads_wait_interval=0.5)
    assert rc != 0
    [msg] = failures(data)
    assert "Timed out after 3s waiting for Deployment(s) nginx in namespace test" in msg
    assert "1 of 2 updated replicas are available" in msg
    assert "pod nginx-6c8cf466cd-xgbd7 phase=Pending node=w1 ready=0/1" in msg
    assert "waiting ImagePullBackOff (Back-off pulling image)" in msg
    assert 'Warning Pod/nginx-6c8cf466cd-xgbd7: Failed Failed to pull image "nginx:stable-alpine3.17-slim" (x3)' in msg
    assert time.monotonic() - t0 < 60


# --- the module alone, in-process, against the emulator ----------------------


def run_module(kubeconfig, capsys, **args):
    from ansible.module_utils.testing import patch_module_args

    import kubelab_rollout_wait

    args = dict({"kubeconfig": kubeconfig, "namespace": "test", "interval": 0.2}, **args)
    t0 = time.monotonic()
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            kubelab_rollout_wait.main()
    out = json.loads(capsys.readouterr().out)
    out["_seconds"] = time.monotonic() - t0
    return out


@pytest.fixture
def deployed(kube_api):
    """The namespace, the two Deployments and the Services, created with the
    typed client (the playbook's apply is covered above; this is faster)."""
    core(kube_api).create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}})
    for name, replicas in (("nginx", 2), ("busybox", 1)):
        apps(kube_api).create_namespaced_deployment("test", {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "test", "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": name}]}}},
        })
    for name, port in (("nginx-svc", 80), ("nginx-svc-lb", 8080), ("nginx-svc-np", 8081)):
        core(kube_api).create_namespaced_service("test", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "test"},
            "spec": {"selector": {"app": "nginx"}, "ports": [{"name": "http", "port": port, "targetPort": 80}]},
        })
    return kube_api


def test_module_ready_passes(deployed, capsys):
    set_deployment_status(deployed, "nginx", ready("nginx", 2))
    out = run_module(deployed.kubeconfig, capsys, deployments=["nginx"], timeout=5, _ansible_check_mode=True)
    assert out.get("failed") is not True, out
    assert out["changed"] is False
    assert out["deployments"]["nginx"]["message"] == 'deployment "nginx" successfully rolled out'


def test_module_without_status_times_out(deployed, capsys):
    # No controller here: the Deployment was never observed.
    out = run_module(deployed.kubeconfig, capsys, deployments=["busybox"], timeout=1)
    assert out["failed"] is True
    assert 'Waiting for deployment "busybox" spec update to be observed' in out["msg"]
    assert "Pods:\n  (no pods)" in out["msg"]
    assert 1 <= out["_seconds"] < 10


def test_module_progressing_times_out_with_pods_and_events(deployed, capsys):
    set_deployment_status(deployed, "nginx", dict(ready("nginx", 2), updatedReplicas=1, availableReplicas=1))
    add_pod(deployed, "nginx-6c8cf466cd-mpfz4", {"app": "nginx"},
            {"phase": "Running", "containerStatuses": [{"name": "nginx", "ready": True, "restartCount": 0,
                                                         "image": "nginx", "imageID": "", "state": {"running": {}}}]})
    add_pod(deployed, "nginx-7d9f8b5c4-zzzzz", {"app": "nginx"},
            {"phase": "Pending", "containerStatuses": [
                {"name": "nginx", "ready": False, "restartCount": 0, "image": "nginx", "imageID": "",
                 "state": {"waiting": {"reason": "ContainerCreating"}}}]})
    add_pod(deployed, "busybox-9ff887cc8-f5m46", {"app": "busybox"}, {"phase": "Running"})
    add_event(deployed, "e1", "ReplicaSet", "nginx-7d9f8b5c4", "SuccessfulCreate", "Created pod: nginx-7d9f8b5c4-zzzzz")
    add_event(deployed, "e2", "Pod", "busybox-9ff887cc8-f5m46", "Pulled", "not about nginx")
    out = run_module(deployed.kubeconfig, capsys, deployments=["nginx"], timeout=2)
    assert out["failed"] is True
    msg = out["msg"]
    assert "1 out of 2 new replicas have been updated" in msg
    assert "pod nginx-6c8cf466cd-mpfz4 phase=Running node=w1 ready=1/1 container nginx: running" in msg
    assert "pod nginx-7d9f8b5c4-zzzzz phase=Pending node=w1 ready=0/1 container nginx: waiting ContainerCreating" in msg
    assert "busybox" not in msg
    assert "ReplicaSet/nginx-7d9f8b5c4: SuccessfulCreate Created pod: nginx-7d9f8b5c4-zzzzz" in msg
    assert 2 <= out["_seconds"] < 10


def test_module_deadline_exceeded_fails_fast(deployed, capsys):
    status = dict(ready("nginx", 2), updatedReplicas=1, availableReplicas=1)
    status["conditions"] = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                             "message": 'ReplicaSet "nginx-7d9f8b5c4" has timed out progressing.'}]
    set_deployment_status(deployed, "nginx", status)
    out = run_module(deployed.kubeconfig, capsys, deployments=["nginx"], timeout=120)
    assert out["failed"] is True
    assert 'deployment "nginx" exceeded its progress deadline: ReplicaSet "nginx-7d9f8b5c4" has timed out' in out["msg"]
    assert out["_seconds"] < 10


def test_module_service_endpoints_from_slices_and_timeout(deployed, capsys):
    add_slice(deployed, "nginx-svc", ["10.244.1.15"], ready_flag=False)
    out = run_module(deployed.kubeconfig, capsys, services=["nginx-svc"], endpoints_timeout=1)
    assert out["failed"] is True
    assert 'service "nginx-svc" has no ready endpoint (1 not ready: 10.244.1.15)' in out["msg"]
    add_slice(deployed, "nginx-svc-lb", ["10.244.1.15"])
    out = run_module(deployed.kubeconfig, capsys, services=["nginx-svc-lb"], endpoints_timeout=1)
    assert out.get("failed") is not True, out
    assert out["services"]["nginx-svc-lb"]["source"] == "EndpointSlice"


# --- a cluster that denies externalIPs by admission --------------------------

DENY_MESSAGE = "Use of external IPs is denied by admission control"


class DenyExternalIPsProxy:
    """Forwards to the emulator, but answers a Service create/patch/update
    that carries spec.externalIPs as kube-apiserver's DenyServiceExternalIPs
    admission plugin does: 403 Forbidden, Status message above."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.url = ""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def handle(self, request):
        import aiohttp
        from aiohttp import web

        body = await request.read()
        if request.method in ("POST", "PUT", "PATCH") and "/services" in request.path and b"externalIPs" in body:
            name = request.path.rstrip("/").split("/")[-1] if request.method != "POST" else "nginx-svc"
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": f'services "{name}" is forbidden: {DENY_MESSAGE}',
                      "reason": "Forbidden", "details": {"name": name, "kind": "services"}, "code": 403}
            return web.json_response(status, status=403)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as session:
            async with session.request(request.method, self.upstream + request.path_qs,
                                       data=body, headers=headers) as resp:
                data = await resp.read()
                return web.Response(body=data, status=resp.status,
                                    content_type=resp.content_type or "application/json")

    def start(self):
        from aiohttp import web

        async def setup():
            self.runner = web.ServerRunner(web.Server(self.handle))
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]
            return f"http://127.0.0.1:{port}"

        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(setup(), self.loop).result(10)
        return self

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_denied_external_ips_are_explained(kube_api, tmp_path):
    proxy = DenyExternalIPsProxy(kube_api.url).start()
    try:
        kubeconfig = tmp_path / "denying.conf"
        kubeconfig.write_text(Path(kube_api.kubeconfig).read_text().replace(kube_api.url, proxy.url))
        rc, _, data = play(tmp_path, str(kubeconfig))
        assert rc != 0
        msgs = failures(data)
        explained = [m for m in msgs if "Explain why the cluster refused" in m]
        assert len(explained) == 1, msgs
        msg = explained[0]
        assert "The cluster refused Service nginx-svc because it sets externalIPs" in msg
        assert "because it sets externalIPs" in msg
        assert "DenyServiceExternalIPs" in msg
        assert "workloads_external_ips: []" in msg
        assert DENY_MESSAGE in msg
        # and the advice works: without externalIPs the same cluster takes them
        rc, _, data = play(tmp_path, str(kubeconfig), workloads_external_ips=[])
        assert rc == 0, failures(data)
    finally:
        proxy.stop()


# ---- what the API server refuses (kapi README "Validation") ----------------

def explanation(data):
    msgs = [m for m in failures(data) if "Explain why the cluster refused" in m]
    assert len(msgs) == 1, failures(data)
    return msgs[0]


def test_a_changed_selector_is_refused_and_the_message_says_recreate(kube_api, tmp_path):
    rc, _, data = play(tmp_path, kube_api.kubeconfig)
    assert rc == 0, failures(data)
    rc, _, data = play(tmp_path, kube_api.kubeconfig, workloads_nginx_labels={"app": "web"})
    assert rc != 0
    msg = explanation(data)
    assert "The cluster refused Deployment test/nginx: the API server found it invalid (reason Invalid, HTTP 422): " \
           'spec.selector: Invalid value: {"matchLabels":{"app":"web"}}: field is immutable.' in msg
    assert "must be recreated" in msg and "kubectl -n test delete deployment nginx" in msg
    assert "workloads_nginx_labels" in msg
    # nothing was deleted or changed: the role does not recreate on its own
    nginx = apps(kube_api).read_namespaced_deployment("nginx", "test")
    assert nginx.spec.selector.match_labels == {"app": "nginx"}


def test_a_node_port_another_service_holds_is_refused_by_name(kube_api, tmp_path):
    core(kube_api).create_namespaced_service("default", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "holder"},
        "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}})
    try:
        services = [{"name": "nginx-svc-np", "type": "NodePort", "port": 8081, "target_port": 80,
                     "port_name": "http", "node_port": 30080}]
        rc, _, data = play(tmp_path, kube_api.kubeconfig, workloads_services=services)
        assert rc != 0
        msg = explanation(data)
        assert "The cluster refused Service test/nginx-svc-np" in msg
        assert "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated" in msg
        assert "node_port" in msg
    finally:
        core(kube_api).delete_namespaced_service("holder", "default")


def test_a_loopback_external_ip_is_refused_before_any_api_call(kube_api, tmp_path):
    rc, _, data = play(tmp_path, kube_api.kubeconfig, workloads_external_ips=["127.0.0.1"])
    assert rc != 0
    msgs = failures(data)
    assert any("workloads_external_ips[0] is 127.0.0.1" in m and "loopback" in m for m in msgs), msgs
    assert "test" not in [ns.metadata.name for ns in core(kube_api).list_namespace().items]
