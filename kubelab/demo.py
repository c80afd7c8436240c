"""`kubelab demo`: the offline container lab.

Builds the test node images and the stand-in package repositories, creates
the podman lab from a spec (molecule/resources/playbooks/lab_create.yml),
then converges site.yml against the inventory that lab_create wrote.
Everything the demo keeps lives in one per-user directory ($KUBELAB_HOME or
~/.kubelab/demo). Nothing here is a real cluster: CRI-O, kubeadm and kubelet
are stand-ins (test doubles).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ruamel.yaml import YAML

from kubelab.errors import KubelabError

NETWORK = "kubelab-demo"
SUBNET = "192.168.253.0/24"
SUBNET_PREFIX = "192.168.253."
FIRST_HOST = 10
MIN_NODES = 2
MAX_NODES = 9

BANNER = (
    "This is the OFFLINE demo lab: podman containers on this machine, with\n"
    "stand-ins (test doubles) for CRI-O, kubeadm and kubelet (behind them: the\n"
    "API server, controllers, kube-proxy, flannel and CoreDNS; the test pods\n"
    "are real nginx and busybox processes). It is NOT a real\n"
    "Kubernetes cluster; it shows what kubelab does and how it reports."
)


@dataclass(frozen=True)
class DemoPaths:
    home: Path

    @property
    def spec(self) -> Path:
        return self.home / "lab-spec.yml"

    @property
    def inventory(self) -> Path:
        return self.home / "inventory.yml"

    @property
    def controller_inventory(self) -> Path:
        return self.home / "controller.yml"

    @property
    def standins(self) -> Path:
        return self.home / "standins-out"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    def created(self) -> list[Path]:
        """Everything the demo writes in its home (removed by --down)."""
        return [self.spec, self.inventory, self.controller_inventory, self.standins, self.artifacts]


def demo_home(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("KUBELAB_HOME"):
        return Path(environ["KUBELAB_HOME"]).expanduser().resolve()
    return Path(environ.get("HOME", str(Path.home()))) / ".kubelab" / "demo"


def lab_spec(nodes: int, paths: DemoPaths) -> dict:
    """The lab_create.yml spec: one EL8 control plane, then workers
    alternating EL8 and Debian 12."""
    if not MIN_NODES <= nodes <= MAX_NODES:
        raise KubelabError(
            f"--nodes must be between {MIN_NODES} and {MAX_NODES} (one control plane plus workers), not {nodes}."
        )
    entries = [
        {"name": "kubelab-demo-cp1", "flavour": "el8", "ip": f"{SUBNET_PREFIX}{FIRST_HOST}", "group": "control_plane"}
    ]
    for index in range(1, nodes):
        entries.append(
            {
                "name": f"kubelab-demo-w{index}",
                "flavour": "el8" if index % 2 else "debian12",
                "ip": f"{SUBNET_PREFIX}{FIRST_HOST + index}",
                "group": "workers",
            }
        )
    return {
        "name": "demo",
        "network": NETWORK,
        "subnet": SUBNET,
        "repo_dir": str(paths.standins),
        "inventory_out": str(paths.inventory),
        "nodes": entries,
    }


def write_yaml(path: Path, data: dict) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("---\n")
        yaml.dump(data, handle)


def read_spec(path: Path) -> dict | None:
    if not path.is_file():
        return None
    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def controller_inventory(python: str) -> dict:
    """lab_create/lab_destroy run on this machine only, with this Python."""
    return {
        "all": {
            "hosts": {
                "localhost": {"ansible_connection": "local", "ansible_python_interpreter": python}
            }
        }
    }


class Commands(Protocol):
    def run(self, argv: list[str], env: Mapping[str, str], cwd: Path) -> int: ...


class Subprocesses:
    """Runs a build script with its output going straight to the terminal."""

    def run(self, argv: list[str], env: Mapping[str, str], cwd: Path) -> int:
        try:
            return subprocess.run(argv, env=dict(env), cwd=cwd, check=False).returncode
        except OSError as exc:
            raise KubelabError(f"{argv[0]} could not be started: {exc.strerror}.") from None


def lab_environ(root: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment with CONTAINERS_CONF set to the test nodes'
    containers.conf unless the caller chose one."""
    env = dict(os.environ if environ is None else environ)
    conf = root / "molecule" / "resources" / "containers.conf"
    if "CONTAINERS_CONF" not in env and conf.is_file():
        env["CONTAINERS_CONF"] = str(conf)
    return env


def require_tooling(root: Path, which=shutil.which) -> dict[str, Path]:
    """The lab entry points; a clear error when one is missing."""
    if which("podman") is None:
        raise KubelabError("podman is not installed; the demo lab runs its nodes as podman containers.")
    tools = {
        "image": root / "molecule" / "resources" / "image" / "build.sh",
        "standins": root / "molecule" / "resources" / "standins" / "build.sh",
        "create": root / "molecule" / "resources" / "playbooks" / "lab_create.yml",
        "destroy": root / "molecule" / "resources" / "playbooks" / "lab_destroy.yml",
    }
    for name, path in tools.items():
        if not path.is_file():
            raise KubelabError(f"The offline lab tooling is incomplete: {path.relative_to(root)} is missing ({name}).")
    return tools


def networks_on_subnet(subnet: str, own: str, env: Mapping[str, str], run=subprocess.run) -> list[str]:
    """Other podman networks that overlap the demo's subnet (podman refuses
    to create ours then). Empty when podman cannot be asked."""
    import ipaddress
    import json

    try:
        proc = run(["podman", "network", "ls", "--format", "json"], env=dict(env), capture_output=True,
                   text=True, check=False)
        networks = json.loads(proc.stdout) if proc.returncode == 0 else []
    except (OSError, ValueError):
        return []
    wanted = ipaddress.ip_network(subnet)
    users = []
    for network in networks if isinstance(networks, list) else []:
        name = network.get("name") or network.get("Name") or ""
        if name == own:
            continue
        for entry in network.get("subnets") or []:
            try:
                if ipaddress.ip_network(entry.get("subnet", ""), strict=False).overlaps(wanted):
                    users.append(name)
                    break
            except ValueError:
                continue
    return users


def remove_state(paths: DemoPaths) -> list[Path]:
    """Remove what the demo wrote (only that: $KUBELAB_HOME may hold other files)."""
    removed = []
    for path in paths.created():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed.append(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
            removed.append(path)
    try:
        paths.home.rmdir()
    except OSError:
        pass
    return removed
