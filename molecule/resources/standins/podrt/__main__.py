"""podrt CLI (TEST DOUBLE): python3 -m podrt {run,status,exec,logs,delete,list,routes} ... (see CONTRACT.md)."""

from __future__ import annotations

import argparse
import json
import sys

from .routes import RouteError, host_gw_routes
from .runtime import PodRuntime, PodRuntimeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="podrt")
    parser.add_argument("--state-dir", default="/run/kubelab-podrt")
    parser.add_argument("--pod-cidr", default="10.244.0.0/24", help="this node's pod CIDR (10.244.N.0/24)")
    parser.add_argument("--node-netns", default=None)
    parser.add_argument("--node-ip", default="")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="start a pod from a Pod JSON file ('-': stdin); the process is detached")
    run.add_argument("pod")
    run.add_argument("--caps", default=None, help="CRI-O's effective default_capabilities, comma separated")
    run.add_argument("--resolv-conf", default=None, help="file to use as the pod's /etc/resolv.conf")
    for name in ("status", "logs", "delete"):
        one = sub.add_parser(name)
        one.add_argument("namespace")
        one.add_argument("name")
        if name == "delete":
            one.add_argument("--grace", type=float, default=None)
    ex = sub.add_parser("exec")
    ex.add_argument("namespace")
    ex.add_argument("name")
    ex.add_argument("--timeout", type=float, default=30.0)
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    sub.add_parser("list")
    rt = sub.add_parser("routes", help="host-gw routes from a JSON {node: [podCIDR, nodeIP]} or Node list")
    rt.add_argument("own_node")
    rt.add_argument("nodes_json")
    rt.add_argument("--node-cidr", default=None)
    rt.add_argument("--dev", default=None)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "routes":
            with open(args.nodes_json, encoding="utf-8") as handle:
                nodes = json.load(handle)
            if isinstance(nodes, dict) and "items" in nodes:
                nodes = nodes["items"]
            for route in host_gw_routes(args.own_node, nodes, args.node_cidr, args.dev):
                print(" ".join(route["argv"]))
            return 0
        rt_ = PodRuntime(args.pod_cidr, args.state_dir, node_netns=args.node_netns, node_ip=args.node_ip)
        if args.cmd == "run":
            text = sys.stdin.read() if args.pod == "-" else open(args.pod, encoding="utf-8").read()
            caps = None if args.caps is None else [c for c in args.caps.split(",") if c.strip()]
            resolv = None if args.resolv_conf is None else open(args.resolv_conf, encoding="utf-8").read()
            print(json.dumps(rt_.run_pod(json.loads(text), caps, resolv), indent=1))
        elif args.cmd == "status":
            print(json.dumps(rt_.status(args.namespace, args.name), indent=1))
        elif args.cmd == "logs":
            sys.stdout.write(rt_.logs(args.namespace, args.name))
        elif args.cmd == "delete":
            if not rt_.delete_pod(args.namespace, args.name, args.grace):
                print(f"podrt: pod {args.namespace}/{args.name} not found on this node", file=sys.stderr)
                return 1
        elif args.cmd == "list":
            for key in rt_.pods():
                print(key.replace("_", "/", 1))
        elif args.cmd == "exec":
            argv_ = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            res = rt_.exec(args.namespace, args.name, argv_, timeout=args.timeout)
            sys.stdout.write(res.stdout)
            sys.stderr.write(res.stderr)
            return 124 if res.timed_out else res.rc
    except (PodRuntimeError, RouteError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", "Error")
        print(f"podrt: {reason}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
