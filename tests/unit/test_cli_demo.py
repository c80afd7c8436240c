"""`kubelab demo` against a fake project tree: the order of the steps, the
lab spec handed to lab_create.yml, the plain statement that this is the
offline lab with stand-ins, and `--down`. The real lab is exercised by
tests/integration/test_cli_demo_lab.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from test_cli import PASSING, FakeRunner

from kubelab import cli, demo

pytestmark = pytest.mark.unit


class FakeCommands:
    def __init__(self, fail: str | None = None):
        self.calls: list[tuple[list[str], dict]] = []
        self.fail = fail

    def run(self, argv, env, cwd):
        self.calls.append((list(argv), dict(env)))
        return 7 if self.fail and self.fail in argv[0] else 0


class LabRunner(FakeRunner):
    """lab_create.yml writes the inventory named in the spec, as the real one does."""

    def run(self, request, progress):
        if request.playbook.name == "lab_create.yml":
            spec = YAML(typ="safe").load(Path(request.extravars["kubelab_lab_spec"]).read_text())
            Path(spec["inventory_out"]).write_text("all:\n  hosts: {}\n")
        return super().run(request, progress)


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "project"
    for rel in ("site.yml", "ansible.cfg", "molecule/resources/image/build.sh",
                "molecule/resources/standins/build.sh", "molecule/resources/playbooks/lab_create.yml",
                "molecule/resources/playbooks/lab_destroy.yml", "molecule/resources/containers.conf"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return root


def run_demo(argv, root, home, runner=None, commands=None, which=lambda name: "/usr/bin/" + name,
             subnet_users=lambda subnet, own, env: []):
    out, err = io.StringIO(), io.StringIO()
    runner = runner or LabRunner([("converged", None), ("converged", PASSING)])
    commands = commands or FakeCommands()
    code = cli.main(["demo", *argv], out=out, err=err, runner_factory=lambda r: runner,
                    environ={"HOME": "/nonexistent", "KUBELAB_HOME": str(home)},
                    commands=commands, which=which, root=root, subnet_users=subnet_users)
    return code, out.getvalue(), err.getvalue(), runner, commands


def test_demo_builds_creates_and_converges(root, tmp_path):
    home = tmp_path / "home"
    code, out, err, runner, commands = run_demo([], root, home)
    assert code == 0, err
    # Said plainly, before and after.
    assert out.startswith(demo.BANNER)
    assert out.count("NOT a real\nKubernetes cluster") == 2
    assert out.rstrip().endswith("Tear the demo lab down with: kubelab demo --down")
    # Build scripts first, with the test nodes' containers.conf.
    assert [c[0] for c in commands.calls] == [
        [str(root / "molecule/resources/image/build.sh")],
        [str(root / "molecule/resources/standins/build.sh"), str(home / "standins-out")],
    ]
    assert all(c[1]["CONTAINERS_CONF"] == str(root / "molecule/resources/containers.conf") for c in commands.calls)
    # Then lab_create with the spec, then site.yml against the lab's inventory.
    create, up = runner.requests
    assert create.playbook == root / "molecule/resources/playbooks/lab_create.yml"
    assert create.extravars == {"kubelab_lab_spec": str(home / "lab-spec.yml")}
    assert create.inventory == home / "controller.yml"
    assert up.playbook == root / "site.yml"
    assert up.inventory == home / "inventory.yml"
    assert up.extravars == {"kubelab_artifacts_dir": str(home / "artifacts")}
    spec = YAML(typ="safe").load((home / "lab-spec.yml").read_text())
    assert spec == {
        "name": "demo", "network": "kubelab-demo", "subnet": "192.168.253.0/24",
        "repo_dir": str(home / "standins-out"), "inventory_out": str(home / "inventory.yml"),
        "nodes": [
            {"name": "kubelab-demo-cp1", "flavour": "el8", "ip": "192.168.253.10", "group": "control_plane"},
            {"name": "kubelab-demo-w1", "flavour": "el8", "ip": "192.168.253.11", "group": "workers"},
            {"name": "kubelab-demo-w2", "flavour": "debian12", "ip": "192.168.253.12", "group": "workers"},
        ],
    }
    controller = YAML(typ="safe").load((home / "controller.yml").read_text())
    assert controller["all"]["hosts"]["localhost"]["ansible_connection"] == "local"
    assert "1 checks: 1 passed" in out


def test_demo_nodes_and_size_change(root, tmp_path):
    home = tmp_path / "home"
    code, _out, _err, _r, _c = run_demo(["--nodes", "4"], root, home)
    assert code == 0
    nodes = YAML(typ="safe").load((home / "lab-spec.yml").read_text())["nodes"]
    assert [(n["name"], n["flavour"], n["ip"]) for n in nodes][3] == ("kubelab-demo-w3", "el8", "192.168.253.13")
    code, _out, err, runner, _c = run_demo(["--nodes", "3"], root, home)
    assert code == 1 and runner.requests == []
    assert "A demo lab with 4 nodes already exists" in err and "kubelab demo --down" in err


@pytest.mark.parametrize("nodes", ["1", "10"])
def test_demo_node_count_is_bounded(root, tmp_path, nodes):
    code, _out, err, runner, commands = run_demo(["--nodes", nodes], root, tmp_path / "home")
    assert code == 1 and runner.requests == [] and commands.calls == []
    assert "--nodes must be between 2 and 9" in err


def test_demo_without_podman(root, tmp_path):
    code, _out, err, runner, commands = run_demo([], root, tmp_path / "home", which=lambda name: None)
    assert code == 1 and runner.requests == [] and commands.calls == []
    assert err == "kubelab: error: podman is not installed; the demo lab runs its nodes as podman containers.\n"


def test_demo_without_lab_tooling(root, tmp_path):
    (root / "molecule/resources/playbooks/lab_create.yml").unlink()
    code, _out, err, _r, commands = run_demo([], root, tmp_path / "home")
    assert code == 1 and commands.calls == []
    assert "molecule/resources/playbooks/lab_create.yml is missing" in err


def test_demo_image_build_failure(root, tmp_path):
    code, _out, err, runner, _c = run_demo([], root, tmp_path / "home", commands=FakeCommands(fail="image"))
    assert code == 1 and runner.requests == []
    assert "Building the node images failed (molecule/resources/image/build.sh exited 7)" in err


def test_demo_lab_create_failure_names_host_and_task(root, tmp_path):
    code, out, err, runner, _c = run_demo([], root, tmp_path / "home", runner=LabRunner([("failed", None)]))
    assert code == 1 and len(runner.requests) == 1
    assert "task 'Install CRI-O'" in err
    assert "kubelab demo --down" in out


def test_demo_down_destroys_and_removes_only_its_state(root, tmp_path):
    home = tmp_path / "home"
    assert run_demo([], root, home)[0] == 0
    (home / "notes.txt").write_text("mine")
    runner = FakeRunner([("converged", None)])
    code, out, err, runner, _c = run_demo(["--down"], root, home, runner=runner)
    assert code == 0, err
    (destroy,) = runner.requests
    assert destroy.playbook == root / "molecule/resources/playbooks/lab_destroy.yml"
    assert destroy.extravars == {"kubelab_lab_spec": str(home / "lab-spec.yml")}
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]
    assert "The demo lab is gone" in out


def test_demo_down_failure_keeps_state(root, tmp_path):
    home = tmp_path / "home"
    assert run_demo([], root, home)[0] == 0
    code, out, _err, _r, _c = run_demo(["--down"], root, home, runner=FakeRunner([("failed", None)]))
    assert code == 1 and (home / "lab-spec.yml").exists()
    assert "was kept" in out


def test_demo_down_without_a_lab(root, tmp_path):
    code, out, _err, runner, _c = run_demo(["--down"], root, tmp_path / "home")
    assert code == 0 and runner.requests == []
    assert "No demo lab found" in out


def test_demo_home_default():
    assert demo.demo_home({"HOME": "/home/op"}) == Path("/home/op/.kubelab/demo")
    assert demo.demo_home({"HOME": "/home/op", "KUBELAB_HOME": "/srv/k"}) == Path("/srv/k")


def test_demo_refuses_a_taken_subnet(root, tmp_path):
    code, _out, err, runner, commands = run_demo([], root, tmp_path / "home",
                                                 subnet_users=lambda subnet, own, env: ["kl3test"])
    assert code == 1 and runner.requests == [] and commands.calls == []
    assert err == ("kubelab: error: The podman network kl3test already uses 192.168.253.0/24, the demo lab's "
                   "subnet; remove it ('podman network rm NAME') before running the demo.\n")


def test_networks_on_subnet_reads_podman():
    class Proc:
        returncode = 0
        stdout = json.dumps([
            {"name": "kubelab-demo", "subnets": [{"subnet": "192.168.253.0/24"}]},
            {"name": "other", "subnets": [{"subnet": "192.168.0.0/16"}]},
            {"name": "far", "subnets": [{"subnet": "10.88.0.0/16"}]},
        ])

    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        return Proc()

    assert demo.networks_on_subnet("192.168.253.0/24", "kubelab-demo", {}, run=run) == ["other"]
    assert calls == [["podman", "network", "ls", "--format", "json"]]

    def broken(argv, **kwargs):
        raise FileNotFoundError("podman")

    assert demo.networks_on_subnet("192.168.253.0/24", "kubelab-demo", {}, run=broken) == []
