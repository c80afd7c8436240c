"""`kubelab up` and `kubelab demo` against the offline container lab.

Uses the lab interface of molecule/resources/ (image/build.sh,
standins/build.sh OUTDIR, playbooks/lab_create.yml and lab_destroy.yml with
-e kubelab_lab_spec=SPEC). The nodes are podman containers on a podman network
this test creates (192.168.249.0/24 for `up`; the demo's own 192.168.253.0/24
for `demo`), so no traffic leaves this machine. CRI-O, kubeadm and kubelet on
those nodes are stand-ins (test doubles): this proves the command drives the
real playbooks end to end, not that a real cluster works.

Skips, with the reason, when podman, root, the node images or the lab tooling
are missing.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from kubelab import cli
from kubelab.demo import networks_on_subnet

pytestmark = [pytest.mark.podman, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "molecule" / "resources"
IMAGES = ("localhost/kubelab-node:el8", "localhost/kubelab-node:debian12")
CONTAINERS_CONF = RESOURCES / "containers.conf"


def lab_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    return env


def require_lab() -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    if os.geteuid() != 0:
        pytest.skip("the offline lab needs root (rootful podman)")
    for tool in ("image/build.sh", "standins/build.sh", "playbooks/lab_create.yml", "playbooks/lab_destroy.yml"):
        if not (RESOURCES / tool).is_file():
            pytest.skip(f"lab tooling missing: molecule/resources/{tool}")
    for image in IMAGES:
        found = subprocess.run(["podman", "image", "exists", image], env=lab_env(), check=False)
        if found.returncode != 0:
            pytest.skip(f"node image {image} is not built (molecule/resources/image/build.sh)")


def playbook(name: str, spec: Path) -> subprocess.CompletedProcess:
    controller = spec.parent / "controller.yml"
    controller.write_text(
        f"all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(controller),
         str(RESOURCES / "playbooks" / name), "-e", f"kubelab_lab_spec={spec}"],
        env=lab_env(), cwd=ROOT, check=False, capture_output=True, text=True,
    )


@pytest.fixture
def lab(tmp_path):
    require_lab()
    taken = networks_on_subnet("192.168.249.0/24", "kubelab-clitest", lab_env())
    if taken:
        pytest.skip(f"podman network {', '.join(taken)} already uses 192.168.249.0/24")
    repo = tmp_path / "standins-out"
    built = subprocess.run([str(RESOURCES / "standins" / "build.sh"), str(repo)], env=lab_env(), cwd=ROOT,
                           check=False, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    spec = tmp_path / "spec.yml"
    inventory = tmp_path / "inventory.yml"
    data = {
        "name": "clitest", "network": "kubelab-clitest", "subnet": "192.168.249.0/24",
        "repo_dir": str(repo), "inventory_out": str(inventory),
        "nodes": [
            {"name": "kubelab-clitest-cp1", "flavour": "el8", "ip": "192.168.249.10", "group": "control_plane"},
            {"name": "kubelab-clitest-w1", "flavour": "debian12", "ip": "192.168.249.11", "group": "workers"},
        ],
    }
    with spec.open("w") as handle:
        YAML(typ="safe", pure=True).dump(data, handle)
    try:
        created = playbook("lab_create.yml", spec)
        assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
        assert inventory.is_file(), "lab_create.yml wrote no inventory"
        yield inventory, [n["name"] for n in data["nodes"]]
    finally:
        destroyed = playbook("lab_destroy.yml", spec)
        assert destroyed.returncode == 0, destroyed.stdout[-3000:] + destroyed.stderr[-3000:]


def kubelab(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err, environ=lab_env())
    return code, out.getvalue(), err.getvalue()


def host_rows(out: str, names: list[str]) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] in names:
            rows[fields[0]] = fields
    return rows


def test_up_converges_the_lab_and_reruns_without_changes(lab, tmp_path):
    inventory, names = lab
    art = tmp_path / "art"
    code, out, err = kubelab("up", "-i", str(inventory), "--artifacts-dir", str(art))
    assert code == 0, out[-4000:] + err
    rows = host_rows(out, names)
    assert set(rows) == set(names)
    assert all(row[3:5] == ["0", "0"] for row in rows.values()), rows  # failed, unreachable
    assert f"Report: {art / 'report'}" in out
    code, out, err = kubelab("up", "-i", str(inventory), "--artifacts-dir", str(art))
    assert code == 0, out[-4000:] + err
    rows = host_rows(out, names)
    changed = {name: row[2] for name, row in rows.items() if row[2] != "0"}
    assert not changed, f"rerunning site.yml on a converged lab changed tasks on nodes: {changed}"


def test_demo_up_and_down(tmp_path):
    require_lab()
    exists = subprocess.run(["podman", "network", "exists", "kubelab-demo"], env=lab_env(), check=False)
    if exists.returncode == 0:
        pytest.skip("a kubelab demo lab already exists on this machine")
    taken = networks_on_subnet("192.168.253.0/24", "kubelab-demo", lab_env())
    if taken:
        pytest.skip(f"podman network {', '.join(taken)} already uses the demo subnet 192.168.253.0/24")
    env = lab_env() | {"KUBELAB_HOME": str(tmp_path / "demo")}
    out, err = io.StringIO(), io.StringIO()
    try:
        code = cli.main(["demo"], out=out, err=err, environ=env)
        text = out.getvalue()
        assert code == 0, text[-4000:] + err.getvalue()
        assert text.count("OFFLINE demo lab") == 2
        assert "kubelab demo --down" in text
    finally:
        down_out, down_err = io.StringIO(), io.StringIO()
        down = cli.main(["demo", "--down"], out=down_out, err=down_err, environ=env)
        assert down == 0, down_out.getvalue()[-3000:] + down_err.getvalue()
    assert not (tmp_path / "demo" / "lab-spec.yml").exists()
