"""Render the workloads role's manifests the way a playbook run does, and check
them: Kubernetes schema of the pinned minor (kubernetes-validate, strict),
field-by-field equality with the lab write-up's objects, externalIP
derivation, nodePort validation and the capability digest.

Each case is a play that runs the role's ``manifests`` task file on the
implicit localhost (no connection to any inventory host: the inventory below
only feeds hostvars), all in one ``ansible-playbook`` run per test module.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

pytestmark = [pytest.mark.unit, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WRITEUP = ROOT / "tests" / "data" / "writeup"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
DIGEST_ANNOTATION = "kubelab.io/crio-capabilities-digest"

PLAY = """\
- name: Render the workloads manifests, case {case}
  hosts: localhost
  connection: local
  gather_facts: false
  vars: {vars}
  tasks:
    - name: Render
      block:
        - name: Render
          ansible.builtin.include_role:
            name: workloads
            tasks_from: manifests
        - name: Keep them
          ansible.builtin.set_fact:
            render_results: "{{{{ render_results | default({{}}) | combine({{'{case}': {{'manifests': __workloads_manifests}}}}) }}}}"
      rescue:
        - name: Keep the error
          ansible.builtin.set_fact:
            render_results: >-
              {{{{ render_results | default({{}}) | combine({{'{case}': {{'error':
                   ([ansible_failed_result.msg] + (ansible_failed_result.results | default([])
                   | selectattr('failed', 'defined') | selectattr('failed') | map(attribute='msg') | list))
                   | join('; ')}}}}) }}}}
"""

WRITE = """\
- name: Write the results
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Write the results
      ansible.builtin.copy:
        content: "{{{{ render_results | to_nice_json }}}}"
        dest: "{out}"
        mode: "0644"
"""

CP = {"cp1": {"ansible_host": "10.20.2.234", "kubelab_node_ip": "10.20.2.234"}}
# The write-up's workers: one with kubelab_node_ip, one with ansible_host only.
WORKERS = {
    "test-k8s-worker01-centos8.snetsystems.com": {"ansible_host": "10.20.2.235", "kubelab_node_ip": "10.20.2.235"},
    "test-k8s-worker02-centos8.snetsystems.com": {"ansible_host": "10.20.2.236"},
}
# One inventory; each case picks its groups through kubelab_*_group.
INVENTORY = {
    "all": {
        "children": {
            "control_plane": {"hosts": CP},
            "workers": {"hosts": WORKERS},
            "workers_none": {"hosts": {}},
            "workers_one": {"hosts": {"w1": {"ansible_host": "198.51.100.21"}}},
            "workers_invalid": {"hosts": {"w9": {"ansible_host": "worker-03.example"}}},
        }
    }
}

WRITEUP_CAPS = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID",
                "SETPCAP", "NET_BIND_SERVICE", "KILL", "NET_RAW"]

CASES = {
    "writeup": {},
    "no_workers": {"kubelab_workers_group": "workers_none"},
    "one_worker": {"kubelab_workers_group": "workers_one"},
    "override": {"workloads_external_ips": ["198.51.100.7", "198.51.100.8"]},
    "empty_override": {"workloads_external_ips": []},
    "invalid_address": {"kubelab_workers_group": "workers_invalid"},
    "fixed_node_ports": {
        "workloads_services": [
            {"name": "nginx-svc", "type": "ClusterIP", "port": 80, "port_name": "http"},
            {"name": "nginx-svc-lb", "type": "LoadBalancer", "port": 8080, "target_port": 80,
             "protocol": "TCP", "node_port": 30036},
            {"name": "nginx-svc-np", "type": "NodePort", "port": 8081, "target_port": 80,
             "protocol": "TCP", "node_port": 30037},
        ]
    },
    "bad_node_port": {
        "workloads_services": [{"name": "nginx-svc-np", "type": "NodePort", "port": 8081, "node_port": 8081}]
    },
    "caps_reordered": {"crio_default_capabilities": list(reversed(WRITEUP_CAPS))},
    "caps_without_net_raw": {"crio_default_capabilities": WRITEUP_CAPS[:-1]},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """case name -> (ok, manifests or None, error message or run output).

    One ansible-playbook run, one play per case, on the implicit localhost.
    """
    work = tmp_path_factory.mktemp("render")
    (work / "inventory.yml").write_text(yaml.safe_dump(INVENTORY))
    plays = [
        PLAY.format(case=name, vars=json.dumps(case_vars or {"render_case": name}))
        for name, case_vars in CASES.items()
    ] + [WRITE.format(out=work / "results.json")]
    (work / "play.yml").write_text("---\n" + "\n".join(plays))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_LOCAL_TEMP=str(work / "tmp"),
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(work / "inventory.yml"), str(work / "play.yml")],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {}
    everything = json.loads((work / "results.json").read_text())
    for name in CASES:
        data = everything[name]
        results[name] = ("manifests" in data, data.get("manifests"), data.get("error", ""))
    return results


def ok(rendered, case):
    success, manifests, error = rendered[case]
    assert success, error
    return manifests


def by_key(manifests):
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests}


def writeup_objects():
    objects = []
    for name in ("nginx-deployment.yaml", "services.yaml", "busybox-deployment.yaml"):
        objects.extend(d for d in yaml.safe_load_all((WRITEUP / name).read_text()) if d)
    return objects


def differences(expected, actual, path="$"):
    """Every field where two objects differ, as 'path: expected != actual'."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                out.append(f"{path}.{key}: missing in rendered")
            elif key not in expected:
                out.append(f"{path}.{key}: not in the write-up ({actual[key]!r})")
            else:
                out.extend(differences(expected[key], actual[key], f"{path}.{key}"))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items != {len(actual)} items"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(differences(e, a, f"{path}[{i}]"))
        return out
    return [] if expected == actual and type(expected) is type(actual) else [f"{path}: {expected!r} != {actual!r}"]


def test_differences_helper_finds_a_change():
    a = {"spec": {"ports": [{"port": 80}], "type": "ClusterIP"}}
    b = {"spec": {"ports": [{"port": "80"}], "type": "ClusterIP", "x": 1}}
    assert differences(a, b) == ["$.spec.ports[0].port: 80 != '80'", "$.spec.x: not in the write-up (1)"]


@pytest.mark.parametrize("case", ["writeup", "no_workers", "empty_override", "fixed_node_ports", "caps_without_net_raw"])
def test_every_manifest_validates_strictly_against_the_pinned_minor(rendered, case):
    defaults = yaml.safe_load((ROOT / "roles" / "kubelab" / "defaults" / "main.yml").read_text())
    minor = defaults["kubelab_kubernetes_version"]
    manifests = ok(rendered, case)
    assert [m["kind"] for m in manifests] == ["Namespace", "Deployment", "Deployment", "Service", "Service", "Service"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, minor, strict=True)


def test_strict_validation_would_catch_a_wrong_field(rendered):
    manifest = copy.deepcopy(by_key(ok(rendered, "writeup"))[("Service", "nginx-svc")])
    manifest["spec"]["externalIps"] = manifest["spec"].pop("externalIPs")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, "1.35", strict=True)


def test_defaults_equal_the_writeup_field_by_field(rendered):
    got = by_key(ok(rendered, "writeup"))
    expected = writeup_objects()
    assert set(got) == {(o["kind"], o["metadata"]["name"]) for o in expected}
    for obj in expected:
        actual = copy.deepcopy(got[(obj["kind"], obj["metadata"]["name"])])
        if obj["metadata"]["name"] == "busybox":
            # The one addition to the write-up: the capability digest.
            annotations = actual["spec"]["template"]["metadata"].pop("annotations")
            assert set(annotations) == {DIGEST_ANNOTATION}
        if obj["kind"] == "Deployment":
            # The one change: full image names (test_images_are_full_names).
            for container in obj["spec"]["template"]["spec"]["containers"]:
                container["image"] = "docker.io/library/" + container["image"]
        assert differences(obj, actual) == [], obj["metadata"]["name"]


def test_images_are_full_names(rendered):
    """docker.io/library/NAME: no registries.conf short-name resolution on the node.

    A short name (the write-up's ``nginx:...``, ``busybox``) is resolved only
    through the node's registries.conf (search list, short-name mode).
    """
    got = by_key(ok(rendered, "writeup"))
    images = {name: got[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]["image"]
              for name in ("nginx", "busybox")}
    assert images == {"nginx": "docker.io/library/nginx:stable-alpine3.17-slim",
                      "busybox": "docker.io/library/busybox"}
    writeup = {o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
               for o in writeup_objects() if o["kind"] == "Deployment"}
    assert writeup == {"nginx": "nginx:stable-alpine3.17-slim", "busybox": "busybox"}


def test_capability_digest_of_the_writeup_list(rendered):
    busybox = by_key(ok(rendered, "writeup"))[("Deployment", "busybox")]
    digest = busybox["spec"]["template"]["metadata"]["annotations"][DIGEST_ANNOTATION]
    assert digest == hashlib.sha256(",".join(sorted(WRITEUP_CAPS)).encode()).hexdigest()
    nginx = by_key(ok(rendered, "writeup"))[("Deployment", "nginx")]
    assert "annotations" not in nginx["spec"]["template"]["metadata"]


def test_capability_digest_changes_with_the_list_and_only_then(rendered):
    base = by_key(ok(rendered, "writeup"))
    reordered = by_key(ok(rendered, "caps_reordered"))
    changed = by_key(ok(rendered, "caps_without_net_raw"))
    assert reordered == base, "reordering the same names must not roll anything"
    diffs = [(k, differences(base[k], changed[k])) for k in base]
    diffs = [(k, d) for k, d in diffs if d]
    assert len(diffs) == 1
    key, fields = diffs[0]
    assert key == ("Deployment", "busybox")
    assert len(fields) == 1 and fields[0].startswith(
        "$.spec.template.metadata.annotations.kubelab.io/crio-capabilities-digest:"
    )


def external_ips(manifests):
    ips = {m["metadata"]["name"]: m["spec"].get("externalIPs") for m in manifests if m["kind"] == "Service"}
    assert len(set(map(json.dumps, ips.values()))) == 1, f"all three Services must agree: {ips}"
    return next(iter(ips.values()))


def test_external_ips_from_the_workers(rendered):
    assert external_ips(ok(rendered, "writeup")) == ["10.20.2.235", "10.20.2.236"]


def test_external_ips_one_worker(rendered):
    assert external_ips(ok(rendered, "one_worker")) == ["198.51.100.21"]


def test_external_ips_no_workers_falls_back_to_the_control_plane(rendered):
    assert external_ips(ok(rendered, "no_workers")) == ["10.20.2.234"]


def test_external_ips_explicit_override(rendered):
    assert external_ips(ok(rendered, "override")) == ["198.51.100.7", "198.51.100.8"]


def test_external_ips_explicit_empty_list_omits_the_field(rendered):
    assert external_ips(ok(rendered, "empty_override")) is None


def test_external_ips_invalid_address_is_a_clear_error(rendered):
    success, manifests, output = rendered["invalid_address"]
    assert not success and manifests is None
    assert "the address of workers host w9 (from ansible_host) is 'worker-03.example', which is not an IP address" in output


def test_fixed_node_ports(rendered):
    got = by_key(ok(rendered, "fixed_node_ports"))
    assert got[("Service", "nginx-svc-lb")]["spec"]["ports"][0]["nodePort"] == 30036
    assert got[("Service", "nginx-svc-np")]["spec"]["ports"][0]["nodePort"] == 30037
    assert "nodePort" not in got[("Service", "nginx-svc")]["spec"]["ports"][0]
    # auto by default
    for key, manifest in by_key(ok(rendered, "writeup")).items():
        if key[0] == "Service":
            assert "nodePort" not in manifest["spec"]["ports"][0]


def test_node_port_outside_the_range_is_refused(rendered):
    success, manifests, output = rendered["bad_node_port"]
    assert not success and manifests is None
    assert "workloads_services entry nginx-svc-np is invalid" in output
    assert "30000-32767" in output
