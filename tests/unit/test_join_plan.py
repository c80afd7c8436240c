"""Join planning: the decision table, the CA pin, and the module around them."""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ansible.module_utils.kubelab_join import (
    ACTION_JOIN,
    ACTION_NONE,
    ACTION_RESET_AND_JOIN,
    ACTION_WAIT,
    JoinPlanError,
    ca_cert_hash,
    index_nodes,
    not_ready,
    plan_join,
    plan_worker,
)

pytestmark = pytest.mark.unit


def node(name, ready="True"):
    conds = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conds.append({"type": "Ready", "status": ready})
    return {"metadata": {"name": name}, "status": {"conditions": conds}}


def node_list(*items):
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


# --- decision table ---------------------------------------------------------

NODES = {"ready": "Ready", "notready": "NotReady", "unknown": "Unknown"}


@pytest.mark.parametrize(
    "name, kubelet_conf, expected",
    [
        ("new", False, ACTION_JOIN),  # new worker
        ("ready", True, ACTION_NONE),  # joined
        ("new", True, ACTION_RESET_AND_JOIN),  # half-joined: file, no Node
        ("notready", True, ACTION_WAIT),  # joined, NotReady: never join twice
        ("unknown", True, ACTION_WAIT),
        ("notready", False, ACTION_JOIN),  # stale Node of a reinstalled host
    ],
)
def test_plan_worker_table(name, kubelet_conf, expected):
    action, reason = plan_worker(name, kubelet_conf, NODES)
    assert action == expected
    assert reason


@pytest.mark.parametrize("name", ["new", "notready", "unknown"])
@pytest.mark.parametrize("leftovers", [["/etc/kubernetes/pki/ca.crt"], ["/var/lib/kubelet/config.yaml"],
                                       ["/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/config.yaml"]])
def test_unfinished_join_is_reset_first(name, leftovers):
    """No kubelet.conf but ca.crt / config.yaml: a join whose kubelet never finished its
    TLS bootstrap; a plain join would be refused ([ERROR FileAvailable--etc-kubernetes-pki-ca.crt])."""
    action, reason = plan_worker(name, False, NODES, leftovers)
    assert action == ACTION_RESET_AND_JOIN
    assert all(path in reason for path in leftovers) and "did not finish" in reason


def test_unfinished_join_under_a_ready_name_still_needs_a_human():
    with pytest.raises(JoinPlanError, match="another machine"):
        plan_worker("ready", False, NODES, ["/etc/kubernetes/pki/ca.crt"])


def test_plan_join_passes_leftovers_through():
    workers = [{"host": "w1", "node_name": "w1", "kubelet_conf": False, "leftovers": ["/etc/kubernetes/pki/ca.crt"]},
               {"host": "w2", "node_name": "w2", "kubelet_conf": False}]
    result = plan_join(workers, node_list(node("cp")))
    assert result["plan"]["w1"]["action"] == ACTION_RESET_AND_JOIN
    assert result["plan"]["w2"]["action"] == ACTION_JOIN
    assert result["needs_token"] is True


def test_role_probe_reports_the_leftovers():
    """The workers role's own probe and set_fact, evaluated with Ansible's templating."""
    from pathlib import Path

    import yaml
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    tasks = yaml.safe_load((Path(__file__).resolve().parents[2] / "roles/workers/tasks/main.yml").read_text())
    describe = next(t for t in tasks if t["name"].startswith("Describe this worker"))
    probe = next(t for t in tasks if t["name"].startswith("Look for the kubelet kubeconfig"))
    script = probe["ansible.builtin.raw"]
    assert "/etc/kubernetes/pki/ca.crt" in script and "/var/lib/kubelet/config.yaml" in script
    variables = {"inventory_hostname": "w1", "workers_node_name": "w1",
                 "__workers_kubelet_conf": {"stdout_lines": ["present=/etc/kubernetes/pki/ca.crt",
                                                             "present=/var/lib/kubelet/config.yaml", "probed"]}}
    templar = Templar(loader=DataLoader(), variables=variables)
    me = {k: templar.template(trust_as_template(v)) for k, v in describe["ansible.builtin.set_fact"]["__workers_self"].items()}
    assert me["kubelet_conf"] is False
    assert me["leftovers"] == ["/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/config.yaml"]
    assert plan_worker("w1", me["kubelet_conf"], {}, me["leftovers"])[0] == ACTION_RESET_AND_JOIN
    variables["__workers_kubelet_conf"] = {"stdout_lines": ["present=/etc/kubernetes/kubelet.conf",
                                                            "present=/etc/kubernetes/pki/ca.crt", "probed"]}
    templar = Templar(loader=DataLoader(), variables=variables)
    me = {k: templar.template(trust_as_template(v)) for k, v in describe["ansible.builtin.set_fact"]["__workers_self"].items()}
    assert me["kubelet_conf"] is True and me["leftovers"] == ["/etc/kubernetes/pki/ca.crt"]


def test_plan_worker_refuses_name_taken_by_ready_node():
    with pytest.raises(JoinPlanError, match="ready.*Ready.*no /etc/kubernetes/kubelet.conf"):
        plan_worker("ready", False, NODES)


def test_node_status_reads_ready_condition():
    nodes = index_nodes(node_list(node("a"), node("b", "False"), node("c", "Unknown"), node("d", None)))
    assert nodes == {"a": "Ready", "b": "NotReady", "c": "Unknown", "d": "Unknown"}


def test_plan_join_mixed_cluster_needs_token_only_for_joiners():
    workers = [
        {"host": "w1", "node_name": "w1.lab", "kubelet_conf": True},
        {"host": "w2", "node_name": "w2.lab", "kubelet_conf": False},
        {"host": "w3", "node_name": "w3.lab", "kubelet_conf": True},
    ]
    result = plan_join(workers, node_list(node("cp.lab"), node("w1.lab")))
    assert {h: p["action"] for h, p in result["plan"].items()} == {
        "w1": ACTION_NONE,
        "w2": ACTION_JOIN,
        "w3": ACTION_RESET_AND_JOIN,
    }
    assert result["plan"]["w2"]["node"] == "w2.lab"
    assert result["needs_token"] is True
    assert result["nodes"] == {"cp.lab": "Ready", "w1.lab": "Ready"}


def test_plan_join_all_joined_needs_no_token():
    workers = [{"host": "w1", "node_name": "w1", "kubelet_conf": True}]
    result = plan_join(workers, node_list(node("w1"), node("cp")))
    assert result["needs_token"] is False
    assert result["plan"]["w1"]["action"] == ACTION_NONE


def test_plan_join_waiting_node_needs_no_token():
    workers = [{"host": "w1", "node_name": "w1", "kubelet_conf": True}]
    result = plan_join(workers, node_list(node("w1", "False")))
    assert result["plan"]["w1"]["action"] == ACTION_WAIT
    assert result["needs_token"] is False


def test_plan_join_control_plane_unreachable_is_a_clear_error():
    with pytest.raises(JoinPlanError) as err:
        plan_join(
            [{"host": "w1", "node_name": "w1", "kubelet_conf": False}],
            None,
            api_error="rc=1: The connection to the server 192.168.252.10:6443 was refused",
            control_plane="cp1",
        )
    text = str(err.value)
    assert "cp1" in text and "connection to the server" in text and "control_plane stage" in text


def test_plan_join_rejects_two_hosts_with_one_node_name():
    workers = [
        {"host": "a", "node_name": "same", "kubelet_conf": False},
        {"host": "b", "node_name": "same", "kubelet_conf": False},
    ]
    with pytest.raises(JoinPlanError, match="hosts a and b would both register Node same"):
        plan_join(workers, node_list())


def test_plan_join_rejects_garbage_node_list():
    with pytest.raises(JoinPlanError, match="NodeList"):
        plan_join([], {"kind": "Status"})


def test_not_ready_reports_missing_and_notready():
    assert not_ready(["a", "b", "c"], {"a": "Ready", "b": "NotReady"}) == {"b": "NotReady", "c": "absent"}


# --- CA pin -----------------------------------------------------------------


def make_ca(key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP256R1())],
    ids=["rsa", "ecdsa"],
)
def test_ca_cert_hash_matches_spki_sha256(key):
    cert = make_ca(key)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert ca_cert_hash("junk before\n" + pem) == "sha256:" + hashlib.sha256(spki).hexdigest()


def test_ca_cert_hash_matches_kubeadm_documented_openssl_pipeline(tmp_path):
    """kubeadm's docs compute the pin with openssl; the module must agree."""
    cert = make_ca(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    path = tmp_path / "ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        f"openssl x509 -pubkey -in {path} | openssl rsa -pubin -outform der 2>/dev/null"
        " | openssl dgst -sha256 -hex | sed 's/^.* //'",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert ca_cert_hash(path.read_text()) == "sha256:" + out


def test_ca_cert_hash_rejects_non_certificates():
    with pytest.raises(ValueError, match="no PEM certificate"):
        ca_cert_hash("hello")
    with pytest.raises(ValueError):
        ca_cert_hash("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


# --- the module -------------------------------------------------------------


class Exit(Exception):
    pass


@pytest.fixture
def run_module(monkeypatch, tmp_path):
    import kubelab_join_plan
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    cert = make_ca(ec.generate_private_key(ec.SECP256R1()))
    ca = tmp_path / "ca.crt"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def run(args, answers):
        calls = []

        def fake_run_command(self, cmd, *a, **kw):
            calls.append(cmd)
            answer = answers[min(len(calls), len(answers)) - 1]
            return answer if isinstance(answer, tuple) else (0, json.dumps(answer), "")

        def exit_json(self, **kw):
            raise Exit(dict(kw, failed=False))

        def fail_json(self, **kw):
            raise Exit(dict(kw, failed=True))

        monkeypatch.setattr(basic.AnsibleModule, "run_command", fake_run_command)
        monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
        monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
        monkeypatch.setattr(kubelab_join_plan.time, "sleep", lambda s: None)
        full = dict({"kubectl": "/usr/bin/kubectl", "ca_cert": str(ca), "poll_interval": 1}, **args)
        with patch_module_args(full), pytest.raises(Exit) as res:
            kubelab_join_plan.main()
        return res.value.args[0], calls

    run.ca = ca
    return run


def test_module_plans_with_one_api_query(run_module):
    result, calls = run_module(
        {
            "workers": [
                {"host": "w1", "node_name": "w1", "kubelet_conf": True},
                {"host": "w2", "node_name": "w2", "kubelet_conf": False},
            ]
        },
        [node_list(node("cp"), node("w1"))],
    )
    assert result["failed"] is False and result["changed"] is False
    assert len(calls) == 1 and calls[0][-4:] == ["get", "nodes", "-o", "json"]
    assert result["joining"] == ["w2"] and result["needs_token"] is True
    assert result["ca_cert_hash"] == ca_cert_hash(run_module.ca.read_text())


def test_module_fails_clearly_when_api_down(run_module):
    result, _ = run_module(
        {"workers": [{"host": "w1", "node_name": "w1", "kubelet_conf": False}]},
        [(1, "", "The connection to the server 10.0.0.1:6443 was refused")],
    )
    assert result["failed"] is True
    assert "did not answer" in result["msg"] and "was refused" in result["msg"]


def test_module_waits_until_ready(run_module):
    result, calls = run_module(
        {"wait_ready": ["w2"], "wait_timeout": 60},
        [node_list(node("w2", "False")), (1, "", "blip"), node_list(node("w2"))],
    )
    assert result["failed"] is False
    assert len(calls) == 3
    assert result["nodes"] == {"w2": "Ready"}


def test_module_wait_times_out_with_status(run_module, monkeypatch):
    import kubelab_join_plan

    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(kubelab_join_plan.time, "time", lambda: next(clock))
    result, _ = run_module({"wait_ready": ["w2", "w3"], "wait_timeout": 30}, [node_list(node("w2", "False"))])
    assert result["failed"] is True
    assert "w2 is NotReady" in result["msg"] and "w3 is absent" in result["msg"]


def test_module_fails_on_missing_ca(run_module, tmp_path):
    result, _ = run_module({"ca_cert": str(tmp_path / "nope.crt")}, [node_list()])
    assert result["failed"] is True and "nope.crt" in result["msg"]
