# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""python3 -m controllers --kubeconfig FILE [--once] [--interval SECONDS]"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import time

from .kclient import ApiError, Client
from .manager import Controllers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="controllers", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--once", action="store_true",
                        help="reconcile until a pass changes nothing (at most --max-passes), then exit")
    parser.add_argument("--max-passes", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes in loop mode")
    parser.add_argument("--apiserver-endpoint", metavar="IP:PORT",
                        help="also keep default/kubernetes Endpoints and EndpointSlice at this address, as "
                             "kube-apiserver's endpoint reconciler does")
    args = parser.parse_args(argv)
    endpoint = None
    if args.apiserver_endpoint:
        ip, _, port = args.apiserver_endpoint.rpartition(":")
        try:
            ipaddress.IPv4Address(ip)
            endpoint = (ip, int(port))
        except ValueError:
            parser.error(f"--apiserver-endpoint {args.apiserver_endpoint!r}: expected IPv4:PORT, e.g. 198.18.0.10:6443")
    try:
        client = Client(args.kubeconfig)
    except (OSError, ValueError) as exc:
        print(f"controllers: cannot use kubeconfig {args.kubeconfig}: {exc}", file=sys.stderr)
        return 1
    controllers = Controllers(client, log=lambda line: print(line, flush=True), apiserver_endpoint=endpoint)
    if args.once:
        try:
            controllers.settle(args.max_passes)
        except (ApiError, OSError) as exc:
            print(f"controllers: {exc}", file=sys.stderr)
            return 1
        finally:
            client.close()
        return 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print("controllers: running", flush=True)
    while not stop:
        try:
            controllers.reconcile_once()
        except (ApiError, OSError) as exc:  # the API server restarting: keep going, as controllers do
            print(f"controllers: {exc}", file=sys.stderr, flush=True)
        time.sleep(args.interval)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
