#!/usr/bin/env python3
"""kube-dns stand-in (TEST DOUBLE): a tiny authoritative DNS server for cluster.local.

Answers like CoreDNS's kubernetes plugin for the names kubelab's workloads use
(see CONTRACT.md for the upstream files and what is not modelled), fed from the
API's Services (through ../controllers/kclient.py) or a JSON file. Python 3.11
stdlib only (PyYAML when a kubeconfig is used). Also: the pod resolv.conf the
kubelet writes.

    python3 kube_dns.py (--kubeconfig FILE | --services-json FILE) [--listen 10.96.0.10:53]...
        [--zone cluster.local] [--ttl 5] [--interval 2]
    python3 kube_dns.py resolv-conf --namespace NS [--nameserver 10.96.0.10] [--host-resolv-conf F]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import socketserver
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

A, NS, CNAME, SOA, PTR, AAAA, SRV, ANY = 1, 2, 5, 6, 12, 28, 33, 255
IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP = 0, 1, 2, 3, 4
DEFAULT_TTL = 5  # CoreDNS kubernetes plugin default ttl


# ---- the name logic ---------------------------------------------------------
class Records:
    """What the kubernetes plugin knows: Services (and EndpointSlices for headless ones)."""

    def __init__(self, services: Iterable[dict], slices: Iterable[dict] = (), zone: str = "cluster.local",
                 ttl: int = DEFAULT_TTL):
        self.zone = zone.strip(".").lower()
        self.ttl = ttl
        self.services: dict[tuple[str, str], dict] = {}
        self.by_ip: dict[str, str] = {}
        self.namespaces: set[str] = set()
        endpoints: dict[tuple[str, str], list[str]] = {}
        for sl in slices or ():
            meta = sl.get("metadata") or {}
            owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
            if not owner or sl.get("addressType", "IPv4") != "IPv4":
                continue
            for ep in sl.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready", True) is False:
                    continue
                endpoints.setdefault((meta.get("namespace") or "default", owner), []).extend(ep.get("addresses") or [])
        for svc in services or ():
            meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
            name, namespace = str(meta.get("name", "")).lower(), str(meta.get("namespace") or "default").lower()
            if not name:
                continue
            entry = {"type": spec.get("type", "ClusterIP"), "ips": [], "cname": None}
            if entry["type"] == "ExternalName":
                entry["cname"] = str(spec.get("externalName", "")).strip(".")
            else:
                cips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
                cips = [ip for ip in cips if ip and ip != "None"]
                if cips:
                    entry["ips"] = [ip for ip in cips if ipaddress.ip_address(ip).version == 4]
                    fqdn = f"{name}.{namespace}.svc.{self.zone}"
                    for ip in entry["ips"]:
                        self.by_ip[ip] = fqdn
                else:  # headless: the ready endpoints' addresses
                    entry["ips"] = sorted(set(endpoints.get((namespace, name), [])))
            self.services[(namespace, name)] = entry
            self.namespaces.add(namespace)

    def soa(self) -> tuple:
        return (self.zone, SOA, self.ttl, ("ns.dns." + self.zone, "hostmaster." + self.zone,
                                           int(time.time()) & 0xFFFFFFFF, 7200, 1800, 86400, self.ttl))

    def resolve(self, qname: str, qtype: int) -> tuple[int, list[tuple], list[tuple]]:
        """(rcode, answers, authority); records are (name, type, ttl, data)."""
        name = qname.strip(".").lower()
        if name.endswith(".in-addr.arpa"):
            return self._reverse(qname, name, qtype)
        if name != self.zone and not name.endswith("." + self.zone):
            # the default Corefile forwards other names upstream; this lab has none
            return SERVFAIL, [], []
        labels = name[: -len(self.zone)].strip(".").split(".") if name != self.zone else []
        found, answers = self._lookup(labels, qname, qtype)
        if found is None:
            return NXDOMAIN, [], [self.soa()]
        if not answers:
            return NOERROR, [], [self.soa()]  # NODATA
        return NOERROR, answers, []

    def _lookup(self, labels: list[str], qname: str, qtype: int) -> tuple[bool | None, list[tuple]]:
        """None: no such name (NXDOMAIN); True with records, or True and [] (NODATA)."""
        ttl = self.ttl
        if not labels:
            if qtype == SOA:
                return True, [self.soa()]
            if qtype == NS:
                return True, [(qname, NS, ttl, "ns.dns." + self.zone)]
            return True, []
        if labels == ["svc"] or labels == ["pod"]:
            return True, []
        if len(labels) == 2 and labels[1] in ("svc", "pod"):
            return (True if labels[0] in self.namespaces or labels[1] == "pod" else None), []
        if len(labels) == 3 and labels[2] == "svc":
            entry = self.services.get((labels[1], labels[0]))
            if entry is None:
                return None, []
            if entry["cname"] and qtype in (A, AAAA, CNAME, ANY):
                return True, [(qname, CNAME, ttl, entry["cname"])]
            if qtype in (A, ANY):
                return True, [(qname, A, ttl, ip) for ip in entry["ips"]]
            return True, []
        if len(labels) == 3 and labels[2] == "pod":  # `pods insecure`: a-b-c-d.NS.pod.ZONE -> a.b.c.d
            try:
                ip = ipaddress.IPv4Address(labels[0].replace("-", "."))
            except ValueError:
                return None, []
            return True, ([(qname, A, ttl, str(ip))] if qtype in (A, ANY) else [])
        return None, []

    def _reverse(self, qname: str, name: str, qtype: int) -> tuple[int, list[tuple], list[tuple]]:
        parts = name[: -len(".in-addr.arpa")].split(".")
        if len(parts) == 4:
            ip = ".".join(reversed(parts))
            fqdn = self.by_ip.get(ip)
            if fqdn:
                return NOERROR, ([(qname, PTR, self.ttl, fqdn)] if qtype in (PTR, ANY) else []), \
                    ([] if qtype in (PTR, ANY) else [self.soa()])
        return NXDOMAIN, [], [self.soa()]


# ---- wire format (RFC 1035) ---------------------------------------------------
class FormatError(ValueError):
    pass


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    labels, jumped, end, hops = [], False, offset, 0
    while True:
        if offset >= len(data):
            raise FormatError("name runs past the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise FormatError("truncated pointer")
            if not jumped:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            jumped, hops = True, hops + 1
            if hops > 20:
                raise FormatError("pointer loop")
            continue
        if length & 0xC0:
            raise FormatError("bad label type")
        offset += 1
        if length == 0:
            break
        labels.append(data[offset:offset + length].decode("ascii", errors="replace"))
        offset += length
    return ".".join(labels), (end if jumped else offset)


def parse_query(data: bytes) -> dict[str, Any]:
    if len(data) < 12:
        raise FormatError("short header")
    ident, flags, qdcount, _an, _ns, _ar = struct.unpack("!6H", data[:12])
    if flags & 0x8000:
        raise FormatError("not a query")
    if qdcount != 1:
        raise FormatError(f"{qdcount} questions")
    qname, offset = _read_name(data, 12)
    if offset + 4 > len(data):
        raise FormatError("truncated question")
    qtype, qclass = struct.unpack("!2H", data[offset:offset + 4])
    return {"id": ident, "flags": flags, "opcode": (flags >> 11) & 0xF, "rd": bool(flags & 0x0100),
            "qname": qname, "qtype": qtype, "qclass": qclass, "question": data[12:offset + 4]}


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            raw = label.encode("ascii")
            if len(raw) > 63:
                raise ValueError(f"label too long: {label!r}")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def _rdata(rtype: int, data: Any) -> bytes:
    if rtype == A:
        return socket.inet_aton(data)
    if rtype in (CNAME, PTR, NS):
        return _encode_name(data)
    if rtype == SOA:
        mname, rname, *numbers = data
        return _encode_name(mname) + _encode_name(rname) + struct.pack("!5I", *numbers)
    raise ValueError(f"type {rtype}")


def build_response(query: dict[str, Any], rcode: int, answers: list[tuple] = (), authority: list[tuple] = (),
                   authoritative: bool = True) -> bytes:
    flags = 0x8000 | (query.get("opcode", 0) << 11) | (0x0400 if authoritative else 0) \
        | (query.get("flags", 0) & 0x0100) | 0x0080 | rcode
    question = query.get("question", b"")
    out = struct.pack("!6H", query.get("id", 0), flags, 1 if question else 0, len(answers), len(authority), 0)
    out += question
    qname = query.get("qname", "").strip(".").lower()
    for name, rtype, ttl, data in [*answers, *authority]:
        # the question's name is compressed to a pointer to offset 12, as CoreDNS (m.Compress) does
        owner = b"\xc0\x0c" if question and name.strip(".").lower() == qname else _encode_name(name)
        rdata = _rdata(rtype, data)
        out += owner + struct.pack("!HHIH", rtype, IN, ttl, len(rdata)) + rdata
    return out


def answer(records: Records, data: bytes) -> bytes | None:
    try:
        query = parse_query(data)
    except FormatError:
        if len(data) >= 2:
            return struct.pack("!6H", struct.unpack("!H", data[:2])[0], 0x8000 | FORMERR, 0, 0, 0, 0)
        return None
    if query["opcode"] != 0:
        return build_response(query, NOTIMP, authoritative=False)
    if query["qclass"] not in (IN, ANY):
        return build_response(query, NOTIMP, authoritative=False)
    rcode, answers, authority = records.resolve(query["qname"], query["qtype"])
    return build_response(query, rcode, answers, authority, authoritative=rcode != SERVFAIL)


# ---- pods' resolv.conf (kubelet pkg/kubelet/network/dns) --------------------------
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048
MAX_NAMESERVERS = 3


def parse_resolv_conf(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"nameservers": [], "searches": [], "options": []}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            out["nameservers"].append(fields[1])
        elif fields[0] in ("search", "domain"):
            out["searches"] = fields[1:]  # the last search/domain line wins
        elif fields[0] == "options":
            out["options"].extend(fields[1:])
    return out


def pod_resolv_conf(namespace: str, cluster_dns: Iterable[str] = ("10.96.0.10",), cluster_domain: str = "cluster.local",
                    host_resolv_conf: str = "", dns_policy: str = "ClusterFirst", host_network: bool = False,
                    dns_config: dict | None = None) -> str:
    """The /etc/resolv.conf the kubelet writes into a pod (GetPodDNS + appendDNSConfig)."""
    host = parse_resolv_conf(host_resolv_conf)
    policy = dns_policy or "ClusterFirst"
    if policy == "ClusterFirst" and host_network:
        policy = "Default"  # ClusterFirst on the host network falls back to Default
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        nameservers = list(cluster_dns)
        domain = cluster_domain.strip(".")
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *host["searches"]]
        options = ["ndots:5"]
    elif policy == "Default":
        nameservers, searches, options = host["nameservers"], list(host["searches"]), list(host["options"])
    elif policy == "None":
        nameservers, searches, options = [], [], []
    else:
        raise ValueError(f'unsupported dnsPolicy "{dns_policy}": ClusterFirst, ClusterFirstWithHostNet, Default, None')
    if dns_config:
        nameservers = _dedup(nameservers + list(dns_config.get("nameservers") or []))
        searches = _dedup(searches + list(dns_config.get("searches") or []))
        merged: dict[str, str | None] = {}
        for opt in options:
            key, _, value = opt.partition(":")
            merged[key] = value or None
        for opt in dns_config.get("options") or []:
            merged[opt["name"]] = opt.get("value")
        options = [k if v in (None, "") else f"{k}:{v}" for k, v in merged.items()]
    searches = _trim_searches(_dedup(searches))
    lines = []
    if nameservers:
        lines.append("\n".join(f"nameserver {ns}" for ns in nameservers[:MAX_NAMESERVERS]))
    if searches:
        lines.append("search " + " ".join(searches))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def _dedup(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _trim_searches(searches: list[str]) -> list[str]:
    """The kubelet keeps at most 32 search paths and 2048 characters (it logs that it trimmed)."""
    out, chars = [], 0
    for item in searches[:MAX_DNS_SEARCH_PATHS]:
        cost = len(item) + (1 if out else 0)
        if chars + cost > MAX_DNS_SEARCH_LIST_CHARS:
            break
        out.append(item)
        chars += cost
    return out


# ---- the server ---------------------------------------------------------------------
class Server:
    """UDP and TCP listeners on each address; ``records`` is swapped whole on reload."""

    def __init__(self, listens: list[tuple[str, int]], records: Records):
        self.records = records
        self.servers: list[socketserver.BaseServer] = []
        owner = self

        class UDP(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                reply = answer(owner.records, data)
                if reply is not None:
                    if len(reply) > 512:  # no EDNS0 here: header and question with TC set, retry over TCP
                        query = parse_query(data)
                        reply = reply[:2] + bytes([reply[2] | 0x02, reply[3]]) + struct.pack("!4H", 1, 0, 0, 0) \
                            + query["question"]
                    sock.sendto(reply, self.client_address)

        class TCP(socketserver.BaseRequestHandler):
            def handle(self):
                conn = self.request
                conn.settimeout(5)
                while True:
                    head = _recv_exact(conn, 2)
                    if head is None:
                        return
                    body = _recv_exact(conn, struct.unpack("!H", head)[0])
                    if body is None:
                        return
                    reply = answer(owner.records, body)
                    if reply is None:
                        return
                    conn.sendall(struct.pack("!H", len(reply)) + reply)

        for host, port in listens:
            udp = socketserver.ThreadingUDPServer((host, port), UDP, bind_and_activate=False)
            udp.allow_reuse_address = True
            udp.server_bind()
            udp.server_activate()
            port = udp.server_address[1]  # port 0: the TCP listener takes the same one
            tcp = socketserver.ThreadingTCPServer((host, port), TCP, bind_and_activate=False)
            tcp.allow_reuse_address = True
            tcp.daemon_threads = True
            tcp.server_bind()
            tcp.server_activate()
            self.servers += [udp, tcp]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [s.server_address[:2] for s in self.servers[::2]]

    def start(self) -> "Server":
        for srv in self.servers:
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()


def _recv_exact(conn: socket.socket, count: int) -> bytes | None:
    buf = b""
    while len(buf) < count:
        try:
            chunk = conn.recv(count - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def load_json(path: str) -> tuple[list[dict], list[dict]]:
    """Services (and EndpointSlices) from a JSON list / v1 List / {"services": [], "endpointslices": []}."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict) and ("services" in data or "endpointslices" in data):
        return list(data.get("services") or []), list(data.get("endpointslices") or [])
    items = data.get("items", []) if isinstance(data, dict) else data
    return ([i for i in items if i.get("kind", "Service") == "Service"],
            [i for i in items if i.get("kind") == "EndpointSlice"])


def load_api(client) -> tuple[list[dict], list[dict]]:
    return client.list("services"), client.list("endpointslices")


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["resolv-conf"]:
        parser = argparse.ArgumentParser(prog="kube_dns.py resolv-conf")
        parser.add_argument("--namespace", required=True)
        parser.add_argument("--nameserver", action="append", default=None)
        parser.add_argument("--cluster-domain", default="cluster.local")
        parser.add_argument("--host-resolv-conf", default=None)
        parser.add_argument("--dns-policy", default="ClusterFirst")
        args = parser.parse_args(argv[1:])
        host = Path(args.host_resolv_conf).read_text() if args.host_resolv_conf else ""
        try:
            sys.stdout.write(pod_resolv_conf(args.namespace, args.nameserver or ["10.96.0.10"], args.cluster_domain,
                                             host, args.dns_policy))
        except ValueError as exc:
            print(f"kube-dns: {exc}", file=sys.stderr)
            return 1
        return 0
    parser = argparse.ArgumentParser(prog="kube_dns.py")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--kubeconfig")
    src.add_argument("--services-json")
    parser.add_argument("--listen", action="append", default=None, help="HOST:PORT (default 0.0.0.0:53)")
    parser.add_argument("--zone", default="cluster.local")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL)
    parser.add_argument("--interval", type=float, default=2.0, help="reload period in seconds")
    args = parser.parse_args(argv)
    if args.kubeconfig:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from controllers.kclient import Client  # noqa: PLC0415

        try:
            client = Client(args.kubeconfig)
        except Exception as exc:  # noqa: BLE001 - reported, as kube-proxy does
            print(f"kube-dns: cannot use kubeconfig {args.kubeconfig}: {exc}", file=sys.stderr)
            return 1

        def load():
            return load_api(client)
    else:
        def load():
            return load_json(args.services_json)
    try:
        services, slices = load()
    except Exception as exc:  # noqa: BLE001
        print(f"kube-dns: cannot read services: {exc}", file=sys.stderr)
        return 1
    server = Server([_listen(x) for x in (args.listen or ["0.0.0.0:53"])],
                    Records(services, slices, args.zone, args.ttl)).start()
    print("kube-dns: serving " + " ".join(f"{h}:{p}" for h, p in server.addresses)
          + f" ({len(services)} services)", flush=True)
    import signal  # noqa: PLC0415

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(args.interval):
        try:
            services, slices = load()
            server.records = Records(services, slices, args.zone, args.ttl)
        except Exception as exc:  # noqa: BLE001 - the API restarting: keep the last answers
            print(f"kube-dns: reload failed, keeping the last records: {exc}", file=sys.stderr, flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
