#!/usr/bin/env python3
# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""kube-proxy stand-in: Services + EndpointSlices from the API -> one nftables table.

The ruleset follows kube-proxy's nftables mode (kubernetes/kubernetes
release-1.35 pkg/proxy/nftables/proxier.go); see CONTRACT.md.

    kube_proxy.py --kubeconfig F [--hostname-override NAME] [--node-ip IP]
                  [--nodeport-addresses primary|CIDR,...] [--cluster-cidr CIDR]
                  [--service-cidr CIDR] [--masquerade-all] [--table kube-proxy]
                  [--nft 'nft'] [--once | --sync-period 30 --min-sync-period 1]
                  [--dump]

``render_ruleset`` is the pure function (objects -> ``nft -f`` text).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from typing import Any

TABLE = "kube-proxy"  # proxier.go kubeProxyTable
MASQ_MARK = "0x4000"  # --masquerade-bit 14
CHAIN_NAME_BASE_MAX = 240  # proxier.go chainNameBaseLengthMax
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


def hash_and_truncate(name: str) -> str:
    """proxier.go hashAndTruncate: base32(sha256(name))[:8] + "-" + name, at most 240 characters."""
    encoded = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()
    out = encoded[:8] + "-" + name
    if len(out) > CHAIN_NAME_BASE_MAX:
        out = out[:CHAIN_NAME_BASE_MAX - 3] + "..."
    return out


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def service_ports(services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The proxier's service-port map: one entry per Service port with its usable endpoints.

    Skipped as kube-proxy skips them (pkg/proxy/servicechangetracker.go):
    ExternalName Services and headless ones (clusterIP None or empty).
    Endpoints (pkg/proxy/endpointslicecache.go, topology.go
    CategorizeEndpoints): IPv4 slices of the Service
    (label kubernetes.io/service-name), the slice port of the same name;
    ready endpoints (``conditions.ready`` nil counts as ready), or, when none
    is ready, the serving+terminating ones.
    """
    out = []
    for svc in sorted(services, key=lambda s: (_meta(s).get("namespace", ""), _meta(s)["name"])):
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            continue
        cluster_ip = spec.get("clusterIP")
        if not cluster_ip or cluster_ip == "None":
            continue
        ns, name = _meta(svc).get("namespace", "default"), _meta(svc)["name"]
        mine = [s for s in slices if _meta(s).get("namespace") == ns
                and (_meta(s).get("labels") or {}).get(SERVICE_NAME_LABEL) == name
                and s.get("addressType", "IPv4") == "IPv4"]
        lb_ips = [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                  if i.get("ip")]
        for port in spec.get("ports") or []:
            protocol = PROTOCOLS.get(port.get("protocol") or "TCP")
            if protocol is None:
                continue
            port_name = port.get("name") or ""
            ready, fallback = [], []
            for sl in mine:
                numbers = [p.get("port") for p in sl.get("ports") or []
                           if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == (port.get("protocol") or "TCP")]
                if not numbers or numbers[0] is None:
                    continue
                for ep in sl.get("endpoints") or []:
                    cond = ep.get("conditions") or {}
                    for addr in (ep.get("addresses") or [])[:1]:
                        item = (addr, int(numbers[0]))
                        if cond.get("ready") is None or cond.get("ready"):
                            ready.append(item)
                        elif cond.get("serving") and cond.get("terminating"):
                            fallback.append(item)
            endpoints = sorted(set(ready or fallback), key=lambda e: (ipaddress.ip_address(e[0]), e[1]))
            out.append({
                "namespace": ns, "name": name, "port_name": port_name, "protocol": protocol,
                "cluster_ip": cluster_ip, "port": int(port["port"]),
                "external_ips": list(spec.get("externalIPs") or []), "lb_ips": lb_ips,
                "node_port": int(port["nodePort"]) if port.get("nodePort") else None,
                "endpoints": endpoints,
                "base": hash_and_truncate(f"{ns}/{name}/{protocol}/{port_name}"),
            })
    return out


def render_ruleset(services: list[dict[str, Any]], slices: list[dict[str, Any]], *,
                   nodeport_ips: list[str] | None = None, cluster_cidr: str | None = None,
                   service_cidr: str | None = None, masquerade_all: bool = False, table: str = TABLE) -> str:
    """The whole table as ``nft -f`` input, replacing any earlier version atomically.

    ``nodeport_ips`` None: NodePorts on every local address but 127.0.0.0/8
    (``fib daddr type local``); a list: only those (the nodeport-ips set).
    """
    sps = service_ports(services, slices)
    cluster_ips, service_ips, node_ports, no_ep, no_ep_np = set(), [], [], [], []
    chains: list[str] = []
    for sp in sps:
        proto, port = sp["protocol"], sp["port"]
        svc_chain, ext_chain = "service-" + sp["base"], "external-" + sp["base"]
        label = f'"{sp["namespace"]}/{sp["name"]}' + (f':{sp["port_name"]}"' if sp["port_name"] else '"')
        cluster_ips.add(sp["cluster_ip"])
        externals = sp["external_ips"] + sp["lb_ips"]
        if not sp["endpoints"]:
            for ip in [sp["cluster_ip"], *externals]:
                no_ep.append(f"{ip} . {proto} . {port} comment {label} : goto reject-chain")
            if sp["node_port"]:
                no_ep_np.append(f"{proto} . {sp['node_port']} comment {label} : goto reject-chain")
            continue
        service_ips.append(f"{sp['cluster_ip']} . {proto} . {port} : goto {svc_chain}")
        for ip in externals:
            service_ips.append(f"{ip} . {proto} . {port} : goto {ext_chain}")
        if sp["node_port"]:
            node_ports.append(f"{proto} . {sp['node_port']} : goto {ext_chain}")
        rules = []
        if masquerade_all:
            rules.append(f"ip daddr {sp['cluster_ip']} {proto} dport {port} jump mark-for-masquerade")
        elif cluster_cidr:
            rules.append(f"ip daddr {sp['cluster_ip']} {proto} dport {port} ip saddr != {cluster_cidr} "
                         "jump mark-for-masquerade")
        ep_chains = []
        for ip, target in sp["endpoints"]:
            ep_chain = "endpoint-" + hash_and_truncate(
                f"{sp['namespace']}/{sp['name']}/{proto}/{sp['port_name']}__{ip}/{target}")
            ep_chains.append(ep_chain)
            chains.append(_chain(ep_chain, [f"ip saddr {ip} jump mark-for-masquerade",
                                            f"meta l4proto {proto} dnat to {ip}:{target}"]))
        vmap = ", ".join(f"{i} : goto {c}" for i, c in enumerate(ep_chains))
        rules.append(f"numgen random mod {len(ep_chains)} vmap {{ {vmap} }}")
        chains.append(_chain(svc_chain, rules))
        if externals or sp["node_port"]:
            chains.append(_chain(ext_chain, ["jump mark-for-masquerade", f"goto {svc_chain}"]))

    match_all = nodeport_ips is None
    lines = [f"add table ip {table}", f"delete table ip {table}", f"table ip {table} {{",
             '\tcomment "rules for kube-proxy"']
    lines += _set("cluster-ips", "ipv4_addr", "Active ClusterIPs", sorted(cluster_ips, key=ipaddress.ip_address))
    if not match_all:
        lines += _set("nodeport-ips", "ipv4_addr", "IPs that accept NodePort traffic",
                      [ip for ip in nodeport_ips if not ipaddress.ip_address(ip).is_loopback])
    lines += _map("no-endpoint-services", "ipv4_addr . inet_proto . inet_service : verdict",
                  "vmap to drop or reject packets to services with no endpoints", no_ep)
    lines += _map("no-endpoint-nodeports", "inet_proto . inet_service : verdict",
                  "vmap to drop or reject packets to service nodeports with no endpoints", no_ep_np)
    lines += _map("firewall-ips", "ipv4_addr . inet_proto . inet_service : verdict",
                  "destinations that are subject to LoadBalancerSourceRanges", [])
    lines += _map("service-ips", "ipv4_addr . inet_proto . inet_service : verdict",
                  "ClusterIP, ExternalIP and LoadBalancer IP traffic", service_ips)
    lines += _map("service-nodeports", "inet_proto . inet_service : verdict", "NodePort traffic", node_ports)
    # knftables writes the named priorities (dstnat-10, ...) as numbers, which every nft accepts:
    # dstnat = -100, srcnat = 100
    base = [
        ("filter-prerouting", "filter", "prerouting", "-110", ["ct state new jump firewall-check"]),
        ("filter-input", "filter", "input", "-110",
         ["ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"]),
        ("filter-forward", "filter", "forward", "-110",
         ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"]),
        ("filter-output", "filter", "output", "-110",
         ["ct state new jump service-endpoints-check", "ct state new jump firewall-check"]),
        ("filter-output-post-dnat", "filter", "output", "-90", ["ct state new jump cluster-ips-check"]),
        ("nat-prerouting", "nat", "prerouting", "-100", ["jump services"]),
        ("nat-output", "nat", "output", "-100", ["jump services"]),
        ("nat-postrouting", "nat", "postrouting", "100", ["jump masquerading"]),
    ]
    for name, ctype, hook, prio, rules in base:
        lines.append(f"\tchain {name} {{")
        lines.append(f"\t\ttype {ctype} hook {hook} priority {prio}; policy accept;")
        lines += [f"\t\t{r}" for r in rules]
        lines.append("\t}")
    no_local = "ip daddr != 127.0.0.0/8"
    np_match = f"fib daddr type local {no_local}" if match_all else "ip daddr @nodeport-ips"
    cluster_check = ['ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"']
    if service_cidr:
        cluster_check.append(f'ip daddr {{ {service_cidr} }} drop comment "Drop traffic to unallocated ClusterIPs"')
    lines += [
        _chain("mark-for-masquerade", [f"mark set mark or {MASQ_MARK}"]),
        _chain("masquerading", [f"mark and {MASQ_MARK} == 0 return", f"mark set mark xor {MASQ_MARK}",
                                "masquerade fully-random"]),
        _chain("cluster-ips-check", cluster_check),
        _chain("reject-chain", ["reject"], "helper for @no-endpoint-services / @no-endpoint-nodeports"),
        _chain("service-endpoints-check", ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"]),
        _chain("nodeport-endpoints-check",
               [f"{no_local if match_all else 'ip daddr @nodeport-ips'} meta l4proto . th dport "
                "vmap @no-endpoint-nodeports"]),
        _chain("firewall-check", ["ip daddr . meta l4proto . th dport vmap @firewall-ips"]),
        _chain("services", ["ip daddr . meta l4proto . th dport vmap @service-ips",
                            f"{np_match} meta l4proto . th dport vmap @service-nodeports"]),
    ]
    lines += chains
    lines.append("}")
    return "\n".join(lines) + "\n"


def _chain(name: str, rules: list[str], comment: str | None = None) -> str:
    body = [f"\tchain {name} {{"]
    if comment:
        body.append(f'\t\tcomment "{comment}"')
    body += [f"\t\t{r}" for r in rules]
    body.append("\t}")
    return "\n".join(body)


def _set(name: str, stype: str, comment: str, elements: list[str]) -> list[str]:
    out = [f"\tset {name} {{", f"\t\ttype {stype}", f'\t\tcomment "{comment}"']
    if elements:
        out.append(f"\t\telements = {{ {', '.join(elements)} }}")
    out.append("\t}")
    return out


def _map(name: str, mtype: str, comment: str, elements: list[str]) -> list[str]:
    out = [f"\tmap {name} {{", f"\t\ttype {mtype}", f'\t\tcomment "{comment}"']
    if elements:
        out.append("\t\telements = { " + ",\n\t\t\t     ".join(sorted(elements)) + " }")
    out.append("\t}")
    return out


# ---- the program --------------------------------------------------------------
def _client(kubeconfig: str):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(here))  # the stand-ins directory: controllers.kclient
    from controllers.kclient import Client  # noqa: PLC0415
    return Client(kubeconfig)


def node_primary_ip(client, hostname: str) -> str | None:
    """The node's primary IP as kube-proxy finds it (the Node's first InternalIP, else ExternalIP)."""
    node = client.get("nodes", None, hostname)
    for kind in ("InternalIP", "ExternalIP"):
        for addr in ((node or {}).get("status") or {}).get("addresses") or []:
            if addr.get("type") == kind and ":" not in addr.get("address", ""):
                return addr["address"]
    return None


def nodeport_ips_for(option: str, client, hostname: str, node_ip: str | None) -> list[str] | None:
    """--nodeport-addresses: ``primary`` (the nftables default), 0.0.0.0/0 (all), or CIDRs matched
    against the Node's addresses."""
    if option == "primary":
        ip = node_ip or node_primary_ip(client, hostname)
        if not ip:
            raise SystemExit(f"kube-proxy: no primary IP for node {hostname!r} (no --node-ip and the Node has "
                             "no InternalIP/ExternalIP address)")
        return [ip]
    cidrs = [ipaddress.ip_network(c.strip()) for c in option.split(",") if c.strip()]
    if any(c.prefixlen == 0 for c in cidrs):
        return None
    node = client.get("nodes", None, hostname) or {}
    addrs = [a["address"] for a in (node.get("status") or {}).get("addresses") or []
             if a.get("type") in ("InternalIP", "ExternalIP")]
    if node_ip:
        addrs.append(node_ip)
    return sorted({a for a in addrs if any(ipaddress.ip_address(a) in c for c in cidrs)})


def apply(ruleset: str, nft: list[str]) -> None:
    proc = subprocess.run([*nft, "-f", "-"], input=ruleset, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(nft)} -f - failed ({proc.returncode}): {proc.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kube-proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--hostname-override", default=socket.gethostname())
    parser.add_argument("--node-ip", help="primary node IP (default: the Node's InternalIP)")
    parser.add_argument("--nodeport-addresses", default="primary")
    parser.add_argument("--cluster-cidr", help="pod network: ClusterIP traffic from outside it is masqueraded")
    parser.add_argument("--service-cidr", help="drop traffic to unallocated ClusterIPs of this range")
    parser.add_argument("--masquerade-all", action="store_true")
    parser.add_argument("--table", default=TABLE)
    parser.add_argument("--nft", default="nft", help="the nft command (split like a shell would)")
    parser.add_argument("--once", action="store_true", help="sync once and exit")
    parser.add_argument("--dump", action="store_true", help="print the ruleset instead of applying it")
    parser.add_argument("--sync-period", type=float, default=30.0)
    parser.add_argument("--min-sync-period", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        client = _client(args.kubeconfig)
    except (OSError, ValueError) as exc:
        print(f"kube-proxy: cannot use kubeconfig {args.kubeconfig}: {exc}", file=sys.stderr)
        return 1
    nft = shlex.split(args.nft)

    def sync(last: str | None) -> str:
        ruleset = render_ruleset(
            client.list("services"), client.list("endpointslices"),
            nodeport_ips=nodeport_ips_for(args.nodeport_addresses, client, args.hostname_override, args.node_ip),
            cluster_cidr=args.cluster_cidr, service_cidr=args.service_cidr,
            masquerade_all=args.masquerade_all, table=args.table)
        if args.dump:
            sys.stdout.write(ruleset)
        elif ruleset != last:
            apply(ruleset, nft)
            print(f"kube-proxy: programmed table ip {args.table}", flush=True)
        return ruleset

    if args.once or args.dump:
        try:
            sync(None)
        except (OSError, RuntimeError) as exc:
            print(f"kube-proxy: {exc}", file=sys.stderr)
            return 1
        return 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    last, last_full = None, 0.0
    while not stop:
        try:
            if time.monotonic() - last_full >= args.sync_period:
                last, last_full = None, time.monotonic()  # a full resync re-applies
            last = sync(last)
        except (OSError, RuntimeError) as exc:
            print(f"kube-proxy: {exc}", file=sys.stderr, flush=True)
        time.sleep(args.min_sync_period)
    return 0


if __name__ == "__main__":
    sys.exit(main())
