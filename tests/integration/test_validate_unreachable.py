"""Bad input is refused before any host is contacted (issue 14).

The inventories here point every host at 127.0.0.1 on a port nobody listens
on, through a fake ssh executable (``ansible_ssh_executable``) that records
each call in a file and fails like an unreachable host. A run that refuses its
input must leave that file absent: zero connection attempts, and never an
UNREACHABLE host in the output. The same fake records the probe's connection
when the input is valid, which shows that the recorder works.

Runs the real ansible-playbook (plain, as README's "A real lab" does) and the
kubelab command on the project's site.yml; nothing leaves this machine."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kubelab import cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = [str(Path(sys.executable).parent / "ansible-playbook")]

FAKE_SSH = """#!/bin/sh
# records the attempt, then fails the way ssh does for an unreachable host
echo "attempt: $(echo "$*" | tr '\\n' ' ')" >> {record}
echo "ssh: connect to host 127.0.0.1 port {port}: Connection refused" >&2
exit 255
"""


def closed_port() -> int:
    """A loopback TCP port with no listener (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """An inventory of unreachable hosts with an attempt recorder."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.record = tmp_path / "ssh-attempts"
        port = closed_port()
        fake = tmp_path / "fake-ssh"
        fake.write_text(FAKE_SSH.format(record=self.record, port=port))
        fake.chmod(0o755)
        self.inventory = tmp_path / "inventory"
        (self.inventory / "group_vars").mkdir(parents=True)
        (self.inventory / "host_vars").mkdir()
        (self.inventory / "hosts.yml").write_text(
            "all:\n  children:\n    control_plane:\n      hosts:\n"
            "        cp1: {kubelab_node_ip: 192.0.2.10}\n"
            "    workers:\n      hosts:\n"
            "        w1: {kubelab_node_ip: 192.0.2.11}\n"
            "        w2: {kubelab_node_ip: 192.0.2.12}\n"
        )
        (self.inventory / "group_vars" / "all.yml").write_text(
            f"ansible_connection: ssh\nansible_host: 127.0.0.1\nansible_port: {port}\n"
            f"ansible_ssh_executable: {fake}\nansible_user: nobody\n"
        )
        self.env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
            "HOME": str(tmp_path / "home"),
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "LANG": "C.UTF-8",
        }

    def vars(self, where: str, text: str) -> None:
        (self.inventory / where).write_text(text)

    def playbook(self, *args: str, inventory: Path | None = None, env: dict | None = None):
        return subprocess.run(
            [*PLAYBOOK, "-i", str(inventory or self.inventory), *args, str(ROOT / "site.yml")],
            cwd=ROOT, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=300, check=False,
        )

    @property
    def attempts(self) -> list[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)


# A host variable on a host that is not the first, a group variable typo and a
# workloads setting: issue 14's examples, each refused before any contact.
BAD_VARS = {
    "host_vars/w2.yml": 'crio_default_capabilities: ["CHOWN", "NET_RAW\\", \\"SYS_ADMIN"]\n',
    "group_vars/workers.yml": "crio_default_capabilites: [CHOWN, NET_RAW]\n",
}
EXPECTED = [
    "variable workloads_nginx_replicas: 1: the verify stage's spread check needs at least 2 nginx pods "
    "(or verify_data_plane: false)",
    "host w1, w2: variable crio_default_capabilites (value ['CHOWN', 'NET_RAW']): no kubelab role has this "
    "variable, likely a typo; did you mean crio_default_capabilities?",
    "host w2: variable crio_default_capabilities: 'NET_RAW\", \"SYS_ADMIN' is not a capability name: only "
    "upper-case letters and '_' ([A-Z_]+), one Linux capability per list entry",
    "host w2: variable crio_default_capabilities: ['CHOWN', 'NET_RAW\", \"SYS_ADMIN'] lacks NET_RAW, which the "
    "verify stage needs (ping from the pods; verify_required_capability)",
]


def make_bad(lab: Lab) -> None:
    lab.vars("host_vars/w2.yml", BAD_VARS["host_vars/w2.yml"])
    lab.vars("group_vars/workers.yml", BAD_VARS["group_vars/workers.yml"])
    with (lab.inventory / "group_vars" / "all.yml").open("a") as handle:
        handle.write("workloads_nginx_replicas: 1\n")


def test_bad_input_is_refused_with_no_connection_attempt(lab):
    make_bad(lab)
    proc = lab.playbook()
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert lab.attempts == [], output
    assert "UNREACHABLE" not in output
    assert "kubelab found 4 problem(s) in the inventory and variables, no host was contacted" in output
    for line in EXPECTED:
        assert f"- {line}" in output, line
    # the run stopped in the validation play: no later play started
    assert "PLAY [Stage preflight]" not in output


def test_kubelab_inventory_check_gives_the_playbook_s_messages(lab):
    make_bad(lab)
    proc = lab.playbook(env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"})
    # the JSON document, then profile_tasks' recap (ansible.cfg's callbacks_enabled)
    report, _end = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])
    (task,) = [t for play in report["plays"] for t in play["tasks"]
               if t["task"]["name"].startswith("Validate the inventory")]
    from_playbook = task["hosts"]["localhost"]["problems"]
    assert from_playbook == EXPECTED
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["inventory", "check", "-i", str(lab.inventory)], out=out, err=err, environ=lab.env)
    assert code == 1, err.getvalue()
    assert [line[4:] for line in out.getvalue().splitlines() if line.startswith("  - ")] == from_playbook
    assert lab.attempts == []


def test_kubelab_up_refuses_bad_input_with_every_message(lab):
    make_bad(lab)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["up", "-i", str(lab.inventory), "--artifacts-dir", str(lab.tmp / "artifacts")],
                    out=out, err=err, environ=lab.env)
    assert code == 1, out.getvalue() + err.getvalue()
    text = err.getvalue()
    assert "kubelab: the input was refused before any host was changed (4 problems):" in text
    for line in EXPECTED:
        assert f"  - {line}" in text
    assert "unreachable=1" not in out.getvalue()
    assert lab.attempts == []


def test_a_limited_run_is_refused_with_no_connection_attempt(lab):
    proc = lab.playbook("--limit", "w2")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "site.yml does not take --limit (given: w2)" in output
    assert "kubelab add-worker NAME --address IP" in output
    assert "UNREACHABLE" not in output
    assert lab.attempts == []


def add_localhost_over_ssh(lab: Lab) -> None:
    # localhost in the inventory, reached like the other hosts (group_vars: ssh)
    with (lab.inventory / "hosts.yml").open("a") as handle:
        handle.write("    controller:\n      hosts:\n        localhost: {}\n")


def test_limit_localhost_is_refused_too(lab):
    add_localhost_over_ssh(lab)
    proc = lab.playbook("--limit", "localhost")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "site.yml does not take --limit (given: localhost)" in output
    assert lab.attempts == []


def test_the_validation_never_connects_even_to_an_inventory_localhost(lab):
    add_localhost_over_ssh(lab)
    proc = lab.playbook()
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert lab.attempts == [], output
    assert "UNREACHABLE" not in output
    assert ("- host localhost: in neither group 'control_plane' nor 'workers'; site.yml prepares every inventory "
            "host as a node (hosts: all): put it in one of them or remove it") in output


def test_valid_input_reaches_the_probe_and_the_recorder_sees_it(lab):
    # the control experiment: same inventory without the bad variables
    proc = lab.playbook()
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "UNREACHABLE" in output
    assert len(lab.attempts) >= 3, output  # one probe per host
    assert all("127.0.0.1" in attempt for attempt in lab.attempts)


@pytest.mark.parametrize("text,reason", [
    ("all:\n  children:\n    control_plane:\n      hosts:\n\tcp1:\n",
     "YAML parsing failed: Tabs are usually invalid in YAML."),
    ("all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
     "    workers:\n      hosts:\n        \"\":\n        w1:\n",
     "Invalid empty host name provided"),
], ids=["tab", "empty-host-name"])
def test_plain_ansible_playbook_fails_on_an_unparsable_inventory(lab, text, reason):
    # ansible.cfg: [inventory] unparsed_is_failed / any_unparsed_is_failed, and
    # the yaml plugin's reason comes first (enable_plugins)
    (lab.inventory / "hosts.yml").write_text(text)
    for inventory in (lab.inventory / "hosts.yml", lab.inventory):
        proc = lab.playbook(inventory=inventory)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert "Completely failed to parse inventory source" in output
        assert "no hosts matched" not in output
        first = next(line for line in output.splitlines() if line.startswith("[WARNING]"))
        assert first.startswith("[WARNING]: Failed to parse inventory with 'yaml' plugin: " + reason), first
    assert lab.attempts == []
