# TEST DOUBLE - used only by kubelab's molecule/resources and tests, never by the roles.
"""Run the emulator: python3 -m kapi --listen 127.0.0.1:6443 [--tls-cert F --tls-key F]."""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys

import aiohttp.web

from .server import KapiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kapi", description="Kubernetes API emulator (kubelab TEST DOUBLE)")
    parser.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT (port 0: any free port)")
    parser.add_argument("--tls-cert", help="serving certificate (PEM); HTTPS when given with --tls-key")
    parser.add_argument("--tls-key", help="private key of the serving certificate (PEM)")
    parser.add_argument("--state-file", help="JSON file that keeps the objects across restarts")
    parser.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    parser.add_argument("--service-node-port-range", default="30000-32767")
    parser.add_argument("--allow-special-external-ips", action="store_true",
                        help="tests only: accept loopback/link-local/unspecified Service externalIPs "
                             "(kube-apiserver refuses them; see README.md)")
    parser.add_argument("--exec-timeout", type=float, default=60.0,
                        help="seconds a pods/exec command may run on the kubelet stand-in (README.md)")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    host, _, port = args.listen.rpartition(":")
    low, _, high = args.service_node_port_range.partition("-")
    server = KapiServer(state_file=args.state_file, service_cidr=args.service_cluster_ip_range,
                        node_port_range=(int(low), int(high)),
                        allow_special_external_ips=args.allow_special_external_ips,
                        exec_timeout=args.exec_timeout)
    ssl_ctx = None
    if args.tls_cert:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
    return asyncio.run(_serve(server, host.strip("[]") or "0.0.0.0", int(port), ssl_ctx))


async def _serve(server: KapiServer, host: str, port: int, ssl_ctx: ssl.SSLContext | None) -> int:
    runner = aiohttp.web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, host, port, ssl_context=ssl_ctx, shutdown_timeout=1)
    await site.start()
    bound = runner.addresses[0]
    scheme = "https" if ssl_ctx else "http"
    print(f"kapi: serving on {scheme}://{bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
