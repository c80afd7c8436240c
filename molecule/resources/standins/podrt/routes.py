"""flannel host-gw routes (reimplemented from flannel-io/flannel pkg/backend/hostgw, cited in CONTRACT.md)."""

from __future__ import annotations

import ipaddress
from typing import Iterable, Mapping


class RouteError(ValueError):
    pass


def host_gw_routes(own_node: str, nodes: Mapping[str, tuple[str, str]] | Iterable[dict],
                   node_cidr: str | None = None, dev: str | None = None) -> list[dict]:
    """Routes a host-gw node adds for every OTHER node's pod subnet.

    ``nodes``: ``{name: (pod_cidr, node_ip)}`` or Node objects (``spec.podCIDR``,
    the InternalIP address). One route per other node, ``dst POD_CIDR via
    NODE_IP`` (flannel: RouteNetwork with the lease's PublicIP as gateway on the
    external interface). host-gw needs the gateway on a directly connected
    network: with ``node_cidr`` (the node network, e.g. 198.18.0.0/24) a node
    IP outside it is refused, as flannel's host-gw refuses nodes that are not
    on the same L2 (the kernel says "Nexthop has invalid gateway").
    Each route: ``{"dst", "via", "dev"?, "node", "argv"}`` where argv is the
    ``ip route replace`` command line.
    """
    table = _table(nodes)
    if own_node not in table:
        raise RouteError(f"node {own_node!r} has no pod CIDR among {sorted(table)}")
    net = ipaddress.ip_network(node_cidr) if node_cidr else None
    seen: dict[ipaddress.IPv4Network, str] = {}
    for name, (cidr, _ip) in table.items():
        other = seen.get(cidr)
        if other is not None:
            raise RouteError(f"pod CIDR {cidr} is given to both {other!r} and {name!r}")
        seen[cidr] = name
    routes = []
    for name in sorted(table):
        if name == own_node:
            continue
        cidr, node_ip = table[name]
        if net is not None and node_ip not in net:
            raise RouteError(f"node {name!r} IP {node_ip} is not on the node network {net}: "
                             "host-gw needs every node on the same L2 network")
        argv = ["ip", "route", "replace", str(cidr), "via", str(node_ip)]
        route = {"node": name, "dst": str(cidr), "via": str(node_ip)}
        if dev:
            argv += ["dev", dev]
            route["dev"] = dev
        route["argv"] = argv
        routes.append(route)
    return routes


def _table(nodes) -> dict[str, tuple[ipaddress.IPv4Network, ipaddress.IPv4Address]]:
    out = {}
    items = nodes.items() if isinstance(nodes, Mapping) else ((None, n) for n in nodes)
    for name, value in items:
        if name is None:  # a Node object
            node = value
            name = node.get("metadata", {}).get("name")
            cidr = (node.get("spec") or {}).get("podCIDR")
            addrs = [a.get("address") for a in (node.get("status") or {}).get("addresses") or []
                     if a.get("type") == "InternalIP"]
            if not cidr or not addrs:
                raise RouteError(f"node {name!r} has no spec.podCIDR or InternalIP address")
            node_ip = addrs[0]
        else:
            cidr, node_ip = value
        try:
            out[name] = (ipaddress.ip_network(cidr), ipaddress.ip_address(node_ip))
        except ValueError as exc:
            raise RouteError(f"node {name!r}: {exc}") from None
    return out
