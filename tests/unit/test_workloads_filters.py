"""The workloads role's filters: externalIP derivation, capability digest,
admission-error explanation. Called directly; the same filters run inside the
role in tests/unit/test_workloads_render.py."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
WRITEUP = ROOT / "tests" / "data" / "writeup"
_spec = importlib.util.spec_from_file_location(
    "workloads_filters", ROOT / "roles" / "workloads" / "filter_plugins" / "workloads.py"
)
filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filters)


HOSTVARS = {
    "cp1": {"ansible_host": "192.0.2.10", "kubelab_node_ip": "10.20.2.234"},
    "w1": {"ansible_host": "192.0.2.11", "kubelab_node_ip": "10.20.2.235"},
    "w2": {"ansible_host": "10.20.2.236"},
    "w3": {"ansible_host": "192.0.2.13", "ansible_facts": {"default_ipv4": {"address": "10.20.2.237"}}},
    "bad": {"ansible_host": "worker-03.example"},
    "none": {},
}


class TestExternalIps:
    def test_no_workers_uses_the_control_plane(self):
        assert filters.external_ips(HOSTVARS, [], ["cp1"]) == ["10.20.2.234"]

    def test_one_worker(self):
        assert filters.external_ips(HOSTVARS, ["w1"], ["cp1"]) == ["10.20.2.235"]

    def test_two_workers_in_inventory_order_with_ansible_host_fallback(self):
        assert filters.external_ips(HOSTVARS, ["w1", "w2"], ["cp1"]) == ["10.20.2.235", "10.20.2.236"]

    def test_facts_default_route_before_ansible_host(self):
        assert filters.external_ips(HOSTVARS, ["w3"], ["cp1"]) == ["10.20.2.237"]

    def test_kubelab_node_ip_wins(self):
        assert filters.external_ips(HOSTVARS, ["w1"], []) == ["10.20.2.235"]

    def test_explicit_override(self):
        assert filters.external_ips(HOSTVARS, ["w1", "w2"], ["cp1"], ["198.51.100.7", "2001:db8::1"]) == [
            "198.51.100.7",
            "2001:db8::1",
        ]

    def test_explicit_empty_list_means_none(self):
        assert filters.external_ips(HOSTVARS, ["w1"], ["cp1"], []) == []

    def test_duplicates_removed(self):
        hv = dict(HOSTVARS, w4={"kubelab_node_ip": "10.20.2.235"})
        assert filters.external_ips(hv, ["w1", "w4"], []) == ["10.20.2.235"]

    def test_invalid_derived_address_names_host_and_source(self):
        with pytest.raises(AnsibleFilterError) as err:
            filters.external_ips(HOSTVARS, ["w1", "bad"], ["cp1"])
        msg = str(err.value)
        assert "workers host bad (from ansible_host)" in msg
        assert "'worker-03.example', which is not an IP address" in msg
        assert "kubelab_node_ip" in msg

    def test_invalid_explicit_address(self):
        with pytest.raises(AnsibleFilterError, match=r"workloads_external_ips\[1\] is '10.20.2.0/24'"):
            filters.external_ips(HOSTVARS, [], [], ["10.20.2.1", "10.20.2.0/24"])

    def test_explicit_string_is_rejected(self):
        with pytest.raises(AnsibleFilterError, match="must be a list"):
            filters.external_ips(HOSTVARS, [], [], "10.20.2.1")

    def test_host_without_any_address(self):
        with pytest.raises(AnsibleFilterError, match="workers host none: it has no kubelab_node_ip"):
            filters.external_ips(HOSTVARS, ["none"], [])

    def test_no_hosts_at_all(self):
        with pytest.raises(AnsibleFilterError, match="no worker and no control-plane host"):
            filters.external_ips(HOSTVARS, [], [])


def writeup_capabilities():
    text = (WRITEUP / "default_capabilities.conf").read_text()
    return [line.strip().strip('",') for line in text.splitlines() if line.strip().startswith('"')]


class TestCapabilityDigest:
    def test_writeup_list_digest(self):
        caps = writeup_capabilities()
        assert len(caps) == 10 and "NET_RAW" in caps
        expected = hashlib.sha256(",".join(sorted(caps)).encode()).hexdigest()
        assert filters.capability_digest(caps) == expected

    def test_order_case_prefix_and_duplicates_do_not_change_it(self):
        caps = writeup_capabilities()
        variant = ["cap_" + c.lower() for c in reversed(caps)] + ["KILL"]
        assert filters.capability_digest(variant) == filters.capability_digest(caps)

    def test_a_different_list_changes_it(self):
        caps = writeup_capabilities()
        without = [c for c in caps if c != "NET_RAW"]
        assert filters.capability_digest(without) != filters.capability_digest(caps)

    def test_bad_input(self):
        with pytest.raises(AnsibleFilterError, match="must be a list"):
            filters.capability_digest("NET_RAW")
        with pytest.raises(AnsibleFilterError, match="not a Linux capability name"):
            filters.capability_digest(["NET RAW"])


class TestApplyError:
    def test_deny_service_external_ips_plugin(self):
        # The message kube-apiserver's DenyServiceExternalIPs plugin returns.
        result = {
            "failed": True,
            "msg": "Failed to create object: b'{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
            "\"services \\\\\"nginx-svc\\\\\" is forbidden: Use of external IPs is denied by admission "
            "control\",\"reason\":\"Forbidden\",\"code\":403}'",
            "reason": "Forbidden",
            "status": 403,
        }
        text = filters.apply_error(result)
        assert text.startswith("The cluster refused Service nginx-svc because it sets externalIPs")
        assert "DenyServiceExternalIPs" in text
        assert "workloads_external_ips: []" in text
        assert "denied by admission control" in text

    def test_policy_engine_422(self):
        result = {
            "failed": True,
            "msg": 'Service "nginx-svc-lb" is invalid: spec.externalIPs: Invalid value: "10.20.2.235": '
            "externalIPs are not allowed",
            "status": 422,
        }
        assert filters.apply_error(result).startswith("The cluster refused Service nginx-svc-lb because")

    def test_other_failures_are_not_explained(self):
        assert filters.apply_error({"failed": True, "msg": "connection refused", "status": None}) == ""
        assert filters.apply_error({"failed": True, "msg": "forbidden: User cannot create services"}) == ""
        assert filters.apply_error({"failed": False, "msg": "externalIPs denied 403"}) == ""
        assert filters.apply_error({"failed": True, "msg": "externalIPs: 10.1.1.1 bad", "status": 500}) == ""
