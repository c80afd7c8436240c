"""Parsers against real captured busybox 1.35 / nginx outputs (tests/data/captures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible.module_utils import kubelab_parsers as p

pytestmark = pytest.mark.unit
CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"
FQDN = "nginx-svc.test.svc.cluster.local"
CLUSTER_IP = "10.105.132.127"


def cap(name):
    return json.loads((CAPTURES / f"{name}.json").read_text())


def nslookup(name):
    c = cap(name)
    return p.parse_nslookup(c["stdout"], c["stderr"]), c


def test_nslookup_fqdn_new_format():
    parsed, c = nslookup("nslookup_fqdn_ok")
    assert c["rc"] == 0
    assert parsed["format"] == "new"
    assert parsed["server"] == "10.96.0.10"
    # the empty "Non-authoritative answer" block (AAAA) adds no answer
    assert parsed["answers"] == [{"name": FQDN, "address": CLUSTER_IP}]
    assert p.evaluate_nslookup(parsed, "10.96.0.10", FQDN, CLUSTER_IP)[0] == p.OK


def test_nslookup_short_name_with_search_nxdomain_noise_passes_despite_rc1():
    parsed, c = nslookup("nslookup_short_ok")
    assert c["rc"] == 1  # busybox 1.35 exits 1 because other search variants failed
    assert parsed["errors"] == {"nginx-svc.svc.cluster.local": "NXDOMAIN", "nginx-svc.cluster.local": "NXDOMAIN"}
    assert parsed["answers"] == [{"name": FQDN, "address": CLUSTER_IP}]
    assert p.evaluate_nslookup(parsed, "10.96.0.10", FQDN, CLUSTER_IP)[0] == p.OK


@pytest.mark.parametrize("name", ["nslookup_short_nxdomain", "nslookup_fqdn_nxdomain"])
def test_nslookup_nxdomain_is_hard_failure(name):
    parsed, _ = nslookup(name)
    assert parsed["answers"] == []
    assert "NXDOMAIN" in parsed["errors"].values()
    assert p.evaluate_nslookup(parsed, "10.96.0.10", "no-such-svc.test.svc.cluster.local", CLUSTER_IP)[0] == "nxdomain"


def test_nslookup_timeout_is_transient():
    parsed, _ = nslookup("nslookup_timeout")
    assert parsed["timed_out"] is True
    assert p.evaluate_nslookup(parsed, "10.96.0.10", FQDN, CLUSTER_IP)[0] == p.TIMEOUT


def test_nslookup_wrong_address_and_wrong_server():
    parsed, _ = nslookup("nslookup_fqdn_ok")
    assert p.evaluate_nslookup(parsed, "10.96.0.10", FQDN, "10.96.0.99")[0] == "wrong_answer"
    outcome, observed = p.evaluate_nslookup(parsed, "10.96.0.11", FQDN, CLUSTER_IP)
    assert outcome == "wrong_server" and "server 10.96.0.10" in observed


def test_nslookup_old_format_busybox_128():
    parsed, _ = nslookup("busybox128_nslookup_ok")
    assert parsed["format"] == "old"
    assert parsed["server"] == "10.96.0.10"
    assert parsed["answers"] == [{"name": FQDN, "address": CLUSTER_IP}]
    assert p.evaluate_nslookup(parsed, "10.96.0.10", FQDN, CLUSTER_IP)[0] == p.OK
    parsed, _ = nslookup("busybox128_nslookup_nxdomain")
    assert parsed["errors"] == {"no-such-svc": "NXDOMAIN"}
    assert p.evaluate_nslookup(parsed, "10.96.0.10", FQDN, CLUSTER_IP)[0] == "nxdomain"


def test_nslookup_write_up_output():
    # the lab write-up's own (flattened) output, one item per line
    text = ("Server: 10.96.0.10\nAddress: 10.96.0.10:53\n\n"
            "** server can't find nginx-svc.svc.cluster.local: NXDOMAIN\n\n"
            f"Name: {FQDN}\nAddress: {CLUSTER_IP}\n")
    parsed = p.parse_nslookup(text)
    assert p.evaluate_nslookup(parsed, "10.96.0.10", FQDN, CLUSTER_IP)[0] == p.OK


def test_ping_outcomes():
    ok = cap("ping_ok")
    res = p.parse_ping(ok["stdout"], ok["stderr"], ok["rc"])
    assert res["outcome"] == p.OK and res["transmitted"] == 2 and res["received"] == 2
    assert res["rtt_avg_ms"] > 0
    denied = cap("ping_permission_denied")
    assert denied["rc"] == 1
    assert p.parse_ping(denied["stdout"], denied["stderr"], denied["rc"])["outcome"] == "permission_denied"
    lost = cap("ping_timeout")
    res = p.parse_ping(lost["stdout"], lost["stderr"], lost["rc"])
    assert res["outcome"] == p.TIMEOUT and res["received"] == 0


def test_capeff_net_raw_bit():
    with_raw = p.parse_cap_masks(cap("status_net_raw")["stdout"])
    without = p.parse_cap_masks(cap("status_no_net_raw")["stdout"])
    assert p.has_capability(with_raw["CapEff"], p.CAP_NET_RAW)
    assert not p.has_capability(without["CapEff"], p.CAP_NET_RAW)
    # only bit 13 differs between the two captures
    assert with_raw["CapEff"] ^ without["CapEff"] == 1 << 13
    assert "NET_RAW" in p.capability_names(with_raw["CapEff"])
    assert "NET_RAW" not in p.capability_names(without["CapEff"])
    # CRI-O >= 1.18 default set (no NET_RAW) = 0x5fb; the lab's drop-in adds bit 13
    crio_default = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP",
                    "NET_BIND_SERVICE", "KILL"]
    assert sorted(p.capability_names(0x5FB)) == sorted(crio_default)
    assert not p.has_capability(0x5FB, p.CAP_NET_RAW)
    assert p.has_capability(0x25FB, p.CAP_NET_RAW)


@pytest.mark.parametrize("name,outcome", [
    ("telnet_ok", p.OK), ("telnet_dns_ok", p.OK), ("telnet_refused", "refused"),
    ("telnet_timeout", p.TIMEOUT), ("telnet_bad_name", "bad_address"),
])
def test_tcp_connect(name, outcome):
    c = cap(name)
    assert p.parse_tcp_connect(c["stdout"], c["stderr"], c["rc"]) == outcome


def test_tcp_connect_timeout_as_container_runtime_reports_it():
    assert p.parse_tcp_connect("", "", 143) == p.TIMEOUT
    assert p.parse_tcp_connect("", "", 1) == "error"


def test_nginx_log_lines_and_markers():
    lines = (CAPTURES / "nginx_access.log").read_text().splitlines()
    entries = [p.parse_nginx_line(line) for line in lines]
    assert all(entries)
    assert entries[0]["method"] == "GET" and entries[0]["status"] == 200
    assert entries[0]["forwarded_for"] == "-"
    # the capture was taken with markers r1-SEQ; a marker is PREFIX.SEQ now: the
    # old form is not counted, the same real lines with the new form are
    assert p.count_markers("\n".join(lines), "kubelab-verify", "r1") == {}
    text = "\n".join(lines).replace("kubelab-verify=r1-", "kubelab-verify=r1.")
    assert p.count_markers(text, "kubelab-verify", "r1") == {"r1.0001": 2, "r1.0002": 2}
    assert p.count_markers(text, "kubelab-verify", "r2") == {}
    # the write-up's own log line (official image, main format)
    line = '10.244.2.1 - - [27/Jun/2023:08:30:40 +0000] "GET / HTTP/1.1" 200 615 "-" "curl/7.61.1" "-"'
    entry = p.parse_nginx_line(line)
    assert entry["remote_addr"] == "10.244.2.1" and entry["bytes"] == "615" and entry["user_agent"] == "curl/7.61.1"
    assert p.parse_nginx_line("2023/06/27 08:30:40 [notice] 1#1: start worker process 30") is None


def _access(path):
    return '10.244.1.1 - - [26/Nov/2026:22:36:17 +0000] "GET %s HTTP/1.1" 200 210 "-" "kubelab-verify" "-"' % path


def test_marker_of_one_service_is_never_counted_as_another_whose_name_it_prefixes():
    """Issue 14: nginx-svc-lb's requests must not count as nginx-svc's."""
    svc = p.marker_prefix("0123abcd", "test", "nginx-svc")
    lb = p.marker_prefix("0123abcd", "test", "nginx-svc-lb")
    assert svc == "0123abcd.test.nginx-svc" and not lb.startswith(svc + ".")
    log = "\n".join([_access("/?kubelab-verify=%s" % p.spread_marker(lb, 1)),
                     _access("/?kubelab-verify=%s" % p.spread_marker(lb, 2)),
                     _access("/?kubelab-verify=%s" % p.spread_marker(svc, 7))])
    assert p.count_markers(log, "kubelab-verify", svc) == {"0123abcd.test.nginx-svc.0007": 1}
    assert p.count_markers(log, "kubelab-verify", lb) == {"0123abcd.test.nginx-svc-lb.0001": 1,
                                                         "0123abcd.test.nginx-svc-lb.0002": 1}


@pytest.mark.parametrize("path", [
    "/?kubelab-verify=r1.test.a.0001x",          # not digits to the end of the value
    "/?kubelab-verify=r1.test.a.0001.5",         # a longer marker
    "/?kubelab-verify=r1.test.a.",               # no sequence number
    "/?kubelab-verify=r1.test.a-b.0001",         # another Service (a-b)
    "/?kubelab-verify=r2.test.a.0001",           # another run
    "/?kubelab-verify=r1.other.a.0001",          # another namespace
    "/?x-kubelab-verify=r1.test.a.0001",         # another key
    "/r1.test.a.0001",                           # not in the query
])
def test_only_an_exact_marker_of_the_service_and_run_counts(path):
    assert p.count_markers(_access(path), "kubelab-verify", "r1.test.a") == {}


def test_marker_in_a_longer_query_and_logged_twice():
    line = _access("/?a=1&kubelab-verify=r1.test.a.0003&b=2")
    assert p.count_markers(line + "\n" + line, "kubelab-verify", "r1.test.a") == {"r1.test.a.0003": 2}


@pytest.mark.parametrize("fields", [("", "test", "a"), ("r1", "te.st", "a"), ("r1", "test", "a.b")])
def test_marker_prefix_refuses_fields_that_could_overlap(fields):
    with pytest.raises(ValueError):
        p.marker_prefix(*fields)
