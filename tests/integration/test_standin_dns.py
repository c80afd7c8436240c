"""The kube-dns stand-in (molecule/resources/standins/dns, a TEST DOUBLE).

Unit tests of the name logic, the wire format and the pods' resolv.conf, then
busybox's nslookup against the server inside network namespaces this test
builds (nothing leaves them): first the CLI fed from a JSON file, then a real
podrt busybox pod whose resolv.conf the kubelet's way points at 10.96.0.10,
answered from the API emulator's Services.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fixtures_kapi import STANDINS, kube_api  # noqa: F401  (pytest fixture)

KUBE_DNS = STANDINS / "dns" / "kube_dns.py"
_spec = importlib.util.spec_from_file_location("kube_dns", KUBE_DNS)
kd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kd)


def _svc(name, namespace, cip, stype="ClusterIP", **spec):
    body = {"type": stype, "ports": [{"port": 80}], **spec}
    if cip is not None:
        body["clusterIP"] = cip
    return {"kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": body}


SERVICES = [
    _svc("nginx-svc", "test", "10.96.100.10"),
    _svc("nginx-svc-np", "test", "10.96.100.12", "NodePort"),
    _svc("kube-dns", "kube-system", "10.96.0.10"),
    _svc("kubernetes", "default", "10.96.0.1"),
    _svc("headless", "test", "None"),
    _svc("ext", "test", None, "ExternalName", externalName="example.org."),
]
SLICES = [{"kind": "EndpointSlice", "metadata": {"name": "headless-x", "namespace": "test",
                                                 "labels": {"kubernetes.io/service-name": "headless"}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}},
                         {"addresses": ["10.244.2.6"], "conditions": {"ready": False}},
                         {"addresses": ["10.244.2.7"]}]}]


def _records():
    return kd.Records(SERVICES, SLICES)


# ---- name logic ------------------------------------------------------------------
@pytest.mark.unit
def test_service_names():
    rec = _records()
    rcode, answers, authority = rec.resolve("nginx-svc.test.svc.cluster.local.", kd.A)
    assert rcode == kd.NOERROR and answers == [("nginx-svc.test.svc.cluster.local.", kd.A, 5, "10.96.100.10")]
    assert not authority
    assert rec.resolve("KUBE-DNS.Kube-System.svc.cluster.local", kd.A)[1][0][3] == "10.96.0.10"
    # what busybox tries first for `nslookup nginx-svc.test` from namespace test: not a name
    assert rec.resolve("nginx-svc.test.test.svc.cluster.local", kd.A)[0] == kd.NXDOMAIN
    for unknown in ("nosuch.test.svc.cluster.local", "nginx-svc.other.svc.cluster.local",
                    "nginx-svc.cluster.local", "a.b.c.nginx-svc.test.svc.cluster.local"):
        rcode, answers, authority = rec.resolve(unknown, kd.A)
        assert (rcode, answers) == (kd.NXDOMAIN, []), unknown
        assert authority[0][1] == kd.SOA and authority[0][3][:2] == ("ns.dns.cluster.local", "hostmaster.cluster.local")
    # an existing name without that record type: NODATA (NOERROR, no answer, SOA)
    rcode, answers, authority = rec.resolve("nginx-svc.test.svc.cluster.local", kd.AAAA)
    assert (rcode, answers, authority[0][1]) == (kd.NOERROR, [], kd.SOA)
    # namespaces and the zone's empty non-terminals exist
    assert rec.resolve("test.svc.cluster.local", kd.A)[:2] == (kd.NOERROR, [])
    assert rec.resolve("nosuchns.svc.cluster.local", kd.A)[0] == kd.NXDOMAIN
    assert rec.resolve("cluster.local", kd.SOA)[1][0][1] == kd.SOA
    assert rec.resolve("cluster.local", kd.NS)[1][0][3] == "ns.dns.cluster.local"


@pytest.mark.unit
def test_headless_externalname_pods_reverse_and_outside():
    rec = _records()
    assert [a[3] for a in rec.resolve("headless.test.svc.cluster.local", kd.A)[1]] == ["10.244.1.5", "10.244.2.7"]
    assert rec.resolve("ext.test.svc.cluster.local", kd.A)[1] == [("ext.test.svc.cluster.local", kd.CNAME, 5,
                                                                   "example.org")]
    assert rec.resolve("10-244-1-5.test.pod.cluster.local", kd.A)[1][0][3] == "10.244.1.5"
    assert rec.resolve("10-244-1-500.test.pod.cluster.local", kd.A)[0] == kd.NXDOMAIN
    assert rec.resolve("10.0.96.10.in-addr.arpa", kd.PTR)[1][0][3] == "kube-dns.kube-system.svc.cluster.local"
    assert rec.resolve("99.0.96.10.in-addr.arpa", kd.PTR)[0] == kd.NXDOMAIN
    # no upstream in this lab: what CoreDNS's forward answers when it cannot reach one
    assert rec.resolve("example.org", kd.A)[0] == kd.SERVFAIL
    assert kd.Records(SERVICES, zone="k8s.test.").resolve("nginx-svc.test.svc.k8s.test", kd.A)[1][0][3] == \
        "10.96.100.10"


def _query(name, qtype=kd.A, ident=0x1234, rd=True):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".")) + b"\0"
    return struct.pack("!6H", ident, 0x0100 if rd else 0, 1, 0, 0, 0) + q + struct.pack("!2H", qtype, 1)


def _parse(reply):
    ident, flags, qd, an, ns, ar = struct.unpack("!6H", reply[:12])
    return {"id": ident, "qr": bool(flags & 0x8000), "aa": bool(flags & 0x0400), "rd": bool(flags & 0x0100),
            "ra": bool(flags & 0x0080), "rcode": flags & 0xF, "counts": (qd, an, ns, ar)}


@pytest.mark.unit
def test_wire_format():
    rec = _records()
    reply = kd.answer(rec, _query("nginx-svc.test.svc.cluster.local"))
    head = _parse(reply)
    assert head == {"id": 0x1234, "qr": True, "aa": True, "rd": True, "ra": True, "rcode": 0, "counts": (1, 1, 0, 0)}
    assert reply.endswith(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton("10.96.100.10"))
    nx = _parse(kd.answer(rec, _query("nosuch.test.svc.cluster.local")))
    assert nx["rcode"] == kd.NXDOMAIN and nx["counts"] == (1, 0, 1, 0)
    # a name given with a compression pointer in the question is still read
    assert kd._read_name(b"\x00" * 12 + b"\x07cluster\x05local\x00" + b"\x03svc\xc0\x0c", 27) == ("svc.cluster.local", 33)
    assert _parse(kd.answer(rec, b"\x12\x34\x00"))["rcode"] == kd.FORMERR
    assert _parse(kd.answer(rec, _query("x")[:15]))["rcode"] == kd.FORMERR
    assert kd.answer(rec, b"\x01") is None
    with pytest.raises(kd.FormatError, match="pointer loop"):
        kd._read_name(b"\x00" * 12 + b"\xc0\x0c", 12)


@pytest.mark.unit
def test_pod_resolv_conf():
    host = "nameserver 192.0.2.53\nsearch lab.example corp.example\noptions edns0\n"
    assert kd.pod_resolv_conf("test", host_resolv_conf=host) == (
        "nameserver 10.96.0.10\n"
        "search test.svc.cluster.local svc.cluster.local cluster.local lab.example corp.example\n"
        "options ndots:5\n")
    assert kd.pod_resolv_conf("test") == \
        "nameserver 10.96.0.10\nsearch test.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    # ClusterFirst on the host network behaves as Default; ClusterFirstWithHostNet does not
    assert kd.pod_resolv_conf("test", host_resolv_conf=host, host_network=True) == (
        "nameserver 192.0.2.53\nsearch lab.example corp.example\noptions edns0\n")
    assert "10.96.0.10" in kd.pod_resolv_conf("test", host_network=True, dns_policy="ClusterFirstWithHostNet")
    merged = kd.pod_resolv_conf("test", dns_config={"nameservers": ["1.2.3.4"], "searches": ["x.example"],
                                                    "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    assert merged == ("nameserver 10.96.0.10\nnameserver 1.2.3.4\n"
                      "search test.svc.cluster.local svc.cluster.local cluster.local x.example\n"
                      "options ndots:2 edns0\n")
    assert kd.pod_resolv_conf("test", dns_policy="None", dns_config={"nameservers": ["1.2.3.4"]}) == \
        "nameserver 1.2.3.4\n"
    many = "search " + " ".join(f"d{i}.example" for i in range(40)) + "\n"
    assert len(kd.pod_resolv_conf("t", host_resolv_conf=many).split("\n")[1].split()) == 1 + 32
    with pytest.raises(ValueError, match='unsupported dnsPolicy "Bogus"'):
        kd.pod_resolv_conf("test", dns_policy="Bogus")


# ---- busybox against the server ------------------------------------------------------
def _run(*argv, check=True):
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for tool in ("ip", "busybox"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")


@pytest.fixture
def netns():
    _need_root()
    name = f"kd{os.getpid() % 100000}"
    _run("ip", "netns", "add", name)
    _run("ip", "-n", name, "link", "set", "lo", "up")
    try:
        yield name
    finally:
        _run("ip", "netns", "delete", name, check=False)


def _nslookup(ns, name, server="127.0.0.1"):
    return _run("ip", "netns", "exec", ns, "busybox", "nslookup", name, server, check=False)


@pytest.mark.root
@pytest.mark.netns
def test_cli_answers_busybox_nslookup(netns, tmp_path):
    data = tmp_path / "services.json"
    data.write_text(json.dumps({"kind": "List", "items": SERVICES + SLICES}))
    proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, str(KUBE_DNS), "--services-json",
                             str(data), "--listen", "127.0.0.1:53", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "kube-dns: serving 127.0.0.1:53 (6 services)" in proc.stdout.readline()
        ok = _nslookup(netns, "nginx-svc.test.svc.cluster.local")
        assert ok.returncode == 0, ok
        assert "Name:\tnginx-svc.test.svc.cluster.local\nAddress: 10.96.100.10" in ok.stdout, ok.stdout
        nx = _nslookup(netns, "nosuch.test.svc.cluster.local")
        assert nx.returncode == 1 and "** server can't find nosuch.test.svc.cluster.local: NXDOMAIN" in nx.stdout, nx
        # TCP as well
        def tcp_query():
            with socket.create_connection(("127.0.0.1", 53), timeout=5) as conn:
                q = _query("kube-dns.kube-system.svc.cluster.local", ident=7)
                conn.sendall(struct.pack("!H", len(q)) + q)
                size = struct.unpack("!H", conn.recv(2))[0]
                return conn.recv(size)
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from fixtures_dataplane import run_in_netns  # noqa: PLC0415
        reply = run_in_netns(netns, tcp_query)
        assert _parse(reply)["id"] == 7 and reply.endswith(socket.inet_aton("10.96.0.10"))
        # reload: a new Service answers without a restart
        data.write_text(json.dumps(SERVICES + [_svc("late", "test", "10.96.100.99")]))
        deadline = time.monotonic() + 10
        while _nslookup(netns, "late.test.svc.cluster.local").returncode != 0:
            assert time.monotonic() < deadline, "the new Service never answered"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0
    bad = _run(sys.executable, str(KUBE_DNS), "--kubeconfig", "/nonexistent", check=False)
    assert bad.returncode == 1 and "kube-dns: cannot use kubeconfig /nonexistent" in bad.stderr


@pytest.mark.root
@pytest.mark.netns
def test_busybox_pod_resolves_through_search_domains(kube_api, tmp_path):  # noqa: F811
    _need_root()
    sys.path.insert(0, str(STANDINS))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from controllers.kclient import Client  # noqa: PLC0415
    from fixtures_dataplane import run_in_netns  # noqa: PLC0415
    from podrt.runtime import PodRuntime  # noqa: PLC0415

    client = Client(kube_api.kubeconfig)
    for ns in ("test", "kube-system"):
        if client.get("namespaces", None, ns) is None:
            client.create("namespaces", None, {"metadata": {"name": ns}})
    for svc in SERVICES[:3]:
        body = {k: v for k, v in svc.items() if k != "kind"}
        client.create("services", svc["metadata"]["namespace"], body)
    services, slices = kd.load_api(client)
    assert {s["metadata"]["name"] for s in services} >= {"nginx-svc", "kube-dns"}
    node = f"kdn{os.getpid() % 100000}"
    _run("ip", "netns", "add", node)
    rt = None
    server = None
    try:
        _run("ip", "-n", node, "link", "set", "lo", "up")
        _run("ip", "-n", node, "addr", "add", "10.96.0.10/32", "dev", "lo")  # kube-dns's ClusterIP, on the node
        server = run_in_netns(node, lambda: kd.Server([("10.96.0.10", 53)], kd.Records(services, slices)).start())
        rt = PodRuntime("10.244.3.0/24", tmp_path / "podrt", node_netns=node)
        rt.run_pod({"metadata": {"name": "busybox", "namespace": "test"},
                    "spec": {"containers": [{"name": "busybox", "image": "docker.io/library/busybox",
                                             "command": ["/bin/sh", "-c", "sleep inf"]}]}},
                   resolv_conf=kd.pod_resolv_conf("test"))

        def lookup(*argv):
            return rt.exec("test", "busybox", ["nslookup", *argv], timeout=20)
        from ansible.module_utils.kubelab_parsers import evaluate_nslookup, parse_nslookup  # noqa: PLC0415

        # busybox 1.35 queries every search domain and exits 1 when any of them is NXDOMAIN,
        # as it does against CoreDNS (nginx-svc.svc.cluster.local does not exist there either);
        # kubelab's check judges the answer, not the exit code
        short = lookup("nginx-svc")  # search domains and server from the pod's resolv.conf
        assert "Server:\t\t10.96.0.10" in short.stdout and "Address:\t10.96.0.10:53" in short.stdout, short
        assert "Name:\tnginx-svc.test.svc.cluster.local\nAddress: 10.96.100.10" in short.stdout, short.stdout
        assert "** server can't find nginx-svc.svc.cluster.local: NXDOMAIN" in short.stdout
        assert evaluate_nslookup(parse_nslookup(short.stdout, short.stderr), "10.96.0.10",
                                 "nginx-svc.test.svc.cluster.local", "10.96.100.10")[0] == "ok"
        explicit = lookup("nginx-svc.test.svc.cluster.local", "10.96.0.10")
        assert explicit.rc == 0 and "Name:\tnginx-svc.test.svc.cluster.local" in explicit.stdout, explicit
        # with a server argument busybox 1.35 asks the bare name, no search domains: outside
        # cluster.local, which CoreDNS forwards upstream; this lab has no upstream (SERVFAIL)
        bare = lookup("nginx-svc", "10.96.0.10")
        assert bare.rc == 1 and "** server can't find nginx-svc: SERVFAIL" in bare.stdout, bare
        cross = lookup("kube-dns.kube-system.svc.cluster.local")
        assert cross.rc == 0, cross
        assert "Name:\tkube-dns.kube-system.svc.cluster.local\nAddress: 10.96.0.10" in cross.stdout, cross
        # busybox 1.35 nslookup applies the search list only to names without a dot: the
        # cross-namespace short form goes out bare (upstream in CoreDNS; no upstream here)
        dotted = lookup("kube-dns.kube-system")
        assert dotted.rc == 1 and "** server can't find kube-dns.kube-system: SERVFAIL" in dotted.stdout, dotted
        # ... while the C library's resolver (busybox telnet, wget, ping) follows ndots:5 and the
        # search list: kube-dns.kube-system.test.svc... is NXDOMAIN, kube-dns.kube-system.svc... answers
        telnet = rt.exec("test", "busybox", ["timeout", "5", "telnet", "kube-dns.kube-system", "53"], timeout=20)
        assert telnet.rc == 0 and "Connected to kube-dns.kube-system" in telnet.stdout, telnet
        unknown = lookup("nosuch")
        assert unknown.rc == 1 and "Name:" not in unknown.stdout, unknown
        assert "** server can't find nosuch.test.svc.cluster.local: NXDOMAIN" in unknown.stdout, unknown
        outcome = evaluate_nslookup(parse_nslookup(unknown.stdout, unknown.stderr), "10.96.0.10",
                                    "nosuch.test.svc.cluster.local", "10.96.100.10")[0]
        assert outcome == "nxdomain"
    finally:
        if rt is not None:
            for key in rt.pods():
                rt.delete_pod(*key.split("_", 1), grace=0)
        if server is not None:
            server.stop()
        _run("ip", "netns", "delete", node, check=False)
