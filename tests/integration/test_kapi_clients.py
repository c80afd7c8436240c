"""The Kubernetes API emulator (TEST DOUBLE, molecule/resources/standins/kapi)
against the real clients the project uses: kubectl, the typed Python client
and kubernetes.core.k8s. Loopback only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_kapi import kube_api, kube_api_tls, kubectl_binary  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.slow

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: test}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx, namespace: test, labels: {app: nginx}}
spec:
  replicas: 2
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - {name: nginx, image: "nginx:stable-alpine3.17-slim", ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: nginx-svc-lb, namespace: test}
spec:
  type: LoadBalancer
  selector: {app: nginx}
  externalIPs: [192.0.2.10]
  ports: [{port: 8080, targetPort: 80, protocol: TCP}]
"""

needs_kubectl = pytest.mark.skipif(kubectl_binary() is None, reason="kubectl not installed")


@needs_kubectl
def test_kubectl_apply_get_patch_delete(kube_api):
    out = kube_api.kubectl("apply", "-f", "-", input=MANIFESTS).stdout
    assert out.split("\n")[:3] == ["namespace/test created", "deployment.apps/nginx created",
                                   "service/nginx-svc-lb created"]
    again = kube_api.kubectl("apply", "-f", "-", input=MANIFESTS).stdout
    assert again.count("unchanged") == 3, again

    deploy = json.loads(kube_api.kubectl("get", "deploy", "nginx", "-n", "test", "-o", "json").stdout)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:stable-alpine3.17-slim"
    assert "kubectl.kubernetes.io/last-applied-configuration" in deploy["metadata"]["annotations"]

    svc = json.loads(kube_api.kubectl("get", "svc", "nginx-svc-lb", "-n", "test", "-o", "json").stdout)
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    assert svc["spec"]["externalIPs"] == ["192.0.2.10"]

    kube_api.kubectl("patch", "deploy", "nginx", "-n", "test", "--subresource=status", "--type=merge",
                     "-p", '{"status": {"replicas": 2, "readyReplicas": 2}}')
    ready = kube_api.kubectl("get", "deploy", "nginx", "-n", "test", "-o", "jsonpath={.status.readyReplicas}")
    assert ready.stdout == "2"

    # client-side apply of a change merges the container list by name
    changed = MANIFESTS.replace("replicas: 2", "replicas: 3")
    assert "deployment.apps/nginx configured" in kube_api.kubectl("apply", "-f", "-", input=changed).stdout
    deploy = json.loads(kube_api.kubectl("get", "deploy", "nginx", "-n", "test", "-o", "json").stdout)
    assert deploy["spec"]["replicas"] == 3 and deploy["metadata"]["generation"] == 2
    assert deploy["status"]["readyReplicas"] == 2

    ssa = kube_api.kubectl("apply", "--server-side", "-f", "-", input=MANIFESTS)
    assert "deployment.apps/nginx serverside-applied" in ssa.stdout

    missing = kube_api.kubectl("get", "deploy", "nope", "-n", "test", check=False)
    assert missing.returncode == 1 and 'deployments.apps "nope" not found' in missing.stderr

    kube_api.kubectl("delete", "namespace", "test")
    listed = kube_api.kubectl("get", "deploy", "-A", "-o", "json").stdout
    assert json.loads(listed)["items"] == []


@needs_kubectl
def test_kubectl_over_https_checks_the_ca(kube_api_tls):
    out = kube_api_tls.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert "namespace/kube-system" in out
    bad = kube_api_tls.kubectl("--certificate-authority", "/etc/ssl/certs/ca-certificates.crt",
                               "get", "ns", check=False)
    assert bad.returncode != 0 and "certificate" in bad.stderr


def test_typed_client_nodes_and_configmaps(kube_api):
    import kubernetes.client as k

    api = kube_api.client()
    core = k.CoreV1Api(api)
    node = k.V1Node(
        metadata=k.V1ObjectMeta(name="w1", labels={"kubernetes.io/hostname": "w1"}),
        status=k.V1NodeStatus(conditions=[k.V1NodeCondition(type="Ready", status="True")]),
    )
    core.create_node(node)
    core.patch_node("w1", {"metadata": {"labels": {"node-role.kubernetes.io/worker": ""}}})
    nodes = core.list_node(label_selector="node-role.kubernetes.io/worker")
    assert [n.metadata.name for n in nodes.items] == ["w1"]
    assert nodes.items[0].status.conditions[0].status == "True"
    core.create_namespaced_config_map("kube-public", k.V1ConfigMap(metadata=k.V1ObjectMeta(name="cluster-info"),
                                                                   data={"kubeconfig": "x"}))
    cm = core.read_namespaced_config_map("cluster-info", "kube-public")
    assert cm.data == {"kubeconfig": "x"} and cm.metadata.uid
    with pytest.raises(k.exceptions.ApiException) as err:
        core.read_namespace("absent")
    assert err.value.status == 404
    core.delete_node("w1")
    assert core.list_node().items == []


def test_kubernetes_core_k8s_changed_then_unchanged(kube_api, tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Apply the test manifests\n"
        "      kubernetes.core.k8s:\n"
        f"        kubeconfig: {kube_api.kubeconfig}\n"
        "        state: present\n"
        "        apply: true\n"
        "        definition: \"{{ lookup('ansible.builtin.file', 'm.yml') | ansible.builtin.from_yaml_all | list }}\"\n"
        "    - name: Read the deployment back\n"
        "      kubernetes.core.k8s_info:\n"
        f"        kubeconfig: {kube_api.kubeconfig}\n"
        "        kind: Deployment\n        namespace: test\n        name: nginx\n"
        "      register: info\n"
        "    - name: Show it\n      ansible.builtin.debug:\n        var: info.resources[0].spec.replicas\n",
        encoding="utf-8",
    )
    (tmp_path / "m.yml").write_text(MANIFESTS, encoding="utf-8")
    venv_bin = Path(sys.executable).parent
    # Only the JSON callback may write to stdout: no ansible.cfg from the
    # environment (kubelab's enables profile_tasks).
    env = {k: v for k, v in os.environ.items() if k not in ("ANSIBLE_CONFIG", "ANSIBLE_CALLBACKS_ENABLED")}
    env.update(ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")

    def play():
        proc = subprocess.run([str(venv_bin / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
        return tasks[0]["hosts"]["localhost"], tasks[2]["hosts"]["localhost"]

    first, shown = play()
    assert first["changed"] is True
    assert shown["info.resources[0].spec.replicas"] == 2
    second, _ = play()
    assert second["changed"] is False


@needs_kubectl
def test_kubectl_typed_create_commands_and_table_output(kube_api):
    """kubectl's generator commands send protobuf; plain `get` asks for a Table."""
    assert kube_api.kubectl("create", "namespace", "x").stdout == "namespace/x created\n"
    kube_api.kubectl("create", "configmap", "c", "-n", "x", "--from-literal=a=b")
    kube_api.kubectl("create", "secret", "generic", "s", "-n", "x", "--from-literal=k=v")
    cm = json.loads(kube_api.kubectl("get", "configmap", "c", "-n", "x", "-o", "json").stdout)
    assert cm["data"] == {"a": "b"} and "generateName" not in cm["metadata"]
    secret = json.loads(kube_api.kubectl("get", "secret", "s", "-n", "x", "-o", "json").stdout)
    assert secret["data"] == {"k": "dg=="} and secret["type"] == "Opaque"
    refused = kube_api.kubectl("create", "deployment", "d", "-n", "x", "--image=nginx", check=False)
    assert refused.returncode == 1 and "not supported by this test double" in refused.stderr

    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "cp1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.35.0"},
                       "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}]}}
    kube_api.kubectl("create", "-f", "-", input=json.dumps(node))
    kube_api.kubectl("cordon", "cp1")
    lines = kube_api.kubectl("get", "nodes").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert lines[1].split()[:3] == ["cp1", "Ready,SchedulingDisabled", "control-plane"]
    assert lines[1].split()[4] == "v1.35.0"
    wide = kube_api.kubectl("get", "nodes", "-o", "wide").stdout
    assert "192.0.2.1" in wide
    svc = kube_api.kubectl("get", "svc", "kubernetes").stdout.splitlines()
    assert svc[1].split()[:5] == ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
