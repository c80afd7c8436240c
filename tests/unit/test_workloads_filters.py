"""The workloads role's filters: externalIP derivation, capability digest,
admission-error explanation. Called directly; the same filters run inside the
role in tests/unit/test_workloads_render.py."""

from __future__ import annotations

import hashlib
import importlib.util
import json
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


def _k8s_failure(status):
    """A failed kubernetes.core.k8s result as the collection builds it: the
    response body (bytes) in msg, the HTTP reason phrase in reason."""
    return {"failed": True, "msg": "Failed to apply object: %r" % json.dumps(status).encode(),
            "reason": "Unprocessable Entity"}


def _invalid(kind, name, group, causes):
    qualified = "%s.%s" % (kind, group) if group else kind
    agg = "; ".join("%s: %s" % (c["field"], c["message"]) for c in causes)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": '%s "%s" is invalid: %s' % (qualified, name, agg), "reason": "Invalid", "code": 422,
            "details": {"name": name, "group": group, "kind": kind,
                        "causes": [dict(c, reason="FieldValueInvalid") for c in causes]}}


LABEL_VARS = {"nginx": "workloads_nginx_labels", "busybox": "workloads_busybox_labels"}


class TestInvalidExplained:
    def test_selector_change_names_object_field_reason_and_says_recreate(self):
        status = _invalid("Deployment", "nginx", "apps", [{
            "field": "spec.selector",
            "message": 'Invalid value: {"matchLabels":{"app":"web"}}: field is immutable'}])
        text = filters.apply_error(_k8s_failure(status), "test", LABEL_VARS)
        assert text.startswith("The cluster refused Deployment test/nginx: the API server found it invalid "
                               "(reason Invalid, HTTP 422): spec.selector: Invalid value: "
                               '{"matchLabels":{"app":"web"}}: field is immutable.')
        assert "must be recreated" in text
        assert "kubectl -n test delete deployment nginx" in text
        assert "workloads_nginx_labels" in text and "workloads_state=absent" in text
        assert "externalIPs" not in text

    def test_node_port_taken(self):
        status = _invalid("Service", "nginx-svc-np", "", [{
            "field": "spec.ports[0].nodePort", "message": "Invalid value: 30080: provided port is already allocated"}])
        text = filters.apply_error(_k8s_failure(status), "test", LABEL_VARS)
        assert text.startswith("The cluster refused Service test/nginx-svc-np: the API server found it invalid "
                               "(reason Invalid, HTTP 422): spec.ports[0].nodePort: Invalid value: 30080: "
                               "provided port is already allocated.")
        assert "node_port" in text and "workloads_services" in text

    def test_node_port_out_of_the_clusters_range(self):
        status = _invalid("Service", "nginx-svc-np", "", [{
            "field": "spec.ports[0].nodePort",
            "message": "Invalid value: 31000: provided port is not in the valid range. "
                       "The range of valid ports is 30000-30999"}])
        text = filters.apply_error(_k8s_failure(status), "test", LABEL_VARS)
        assert "The range of valid ports is 30000-30999" in text and "workloads_node_port_range" in text

    def test_refused_external_ip_is_validation_not_admission(self):
        status = _invalid("Service", "nginx-svc", "", [{
            "field": "spec.externalIPs[0]",
            "message": 'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)'}])
        text = filters.apply_error(_k8s_failure(status), "test", LABEL_VARS)
        assert text.startswith("The cluster refused Service test/nginx-svc: the API server found it invalid")
        assert "may not be in the loopback range" in text and "kubelab_node_ip" in text
        assert "admission" not in text

    def test_other_invalid_objects_are_still_named_with_their_fields(self):
        status = _invalid("Service", "nginx-svc", "", [{
            "field": "spec.clusterIPs[0]", "message": 'Invalid value: ["None"]: may not change once set'}])
        text = filters.apply_error(_k8s_failure(status), "test")
        assert 'Service test/nginx-svc' in text and 'spec.clusterIPs[0]: Invalid value: ["None"]' in text
        assert "kubectl -n test delete service nginx-svc" in text


class TestSpecialExternalIPs:
    @pytest.mark.parametrize("ip, why", [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.10.1", "link-local range"),
        ("fe80::5", "link-local range"), ("224.0.0.18", "link-local multicast"), ("ff02::1", "link-local multicast"),
        ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("::ffff:127.0.0.1", "loopback"),
    ])
    def test_explicit_special_address_is_refused_with_variable_value_and_allowed(self, ip, why):
        with pytest.raises(AnsibleFilterError) as info:
            filters.external_ips({}, ["w1"], ["cp1"], ["192.0.2.21", ip])
        text = str(info.value)
        assert "workloads_external_ips[1] is %s" % ip in text
        assert why in text and "Allowed:" in text

    def test_derived_loopback_names_host_and_source(self):
        hostvars = {"w1": {"ansible_host": "127.0.0.1"}}
        with pytest.raises(AnsibleFilterError) as info:
            filters.external_ips(hostvars, ["w1"], ["cp1"])
        text = str(info.value)
        assert "the address of workers host w1 (from ansible_host) is 127.0.0.1" in text
        assert "loopback" in text and "kubelab_node_ip" in text

    def test_the_filter_and_the_validator_share_one_special_ip_test(self):
        """module_utils/kubelab_validate.py special_ip is the filter's (one function, review finding 7)."""
        import ipaddress

        from ansible.module_utils import kubelab_validate

        assert filters.special_ip.__code__.co_filename == kubelab_validate.special_ip.__code__.co_filename
        for ip in ("ff12::1", "ff32::2", "::ffff:127.0.0.1", "::ffff:224.0.0.5", "fe80::1", "0.0.0.0", "10.0.0.1",
                   "ff05::2", "::ffff:10.1.1.1"):
            address = ipaddress.ip_address(ip)
            assert filters.special_ip(address) == kubelab_validate.special_ip(address), ip

    def test_other_multicast_and_ordinary_addresses_pass(self):
        # ValidateNonSpecialIP refuses only link-local multicast
        assert filters.external_ips({}, [], [], ["239.1.1.1", "2001:db8::1"]) == ["239.1.1.1", "2001:db8::1"]
