"""roles/preflight task expressions evaluated with Ansible's templating
(read from the role's YAML): what check mode does in the cgroup v1 -> v2
migration, and the Debian Python bootstrap command. Nothing is run on a host."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "preflight"


def tasks(name):
    return yaml.safe_load((ROLE / "tasks" / name).read_text())


def template(expr, variables):
    return Templar(loader=DataLoader(), variables=dict(variables)).template(trust_as_template(expr))


def runs(task, variables):
    """Whether Ansible would run ``task`` (its ``when``, a string or a list) with ``variables``."""
    when = task.get("when", [])
    conditions = when if isinstance(when, list) else [when]
    return all(template("{{ %s }}" % c, variables) in (True, "True") for c in conditions)


def migrate_vars(check_mode):
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    debian = yaml.safe_load((ROLE / "vars" / "Debian.yml").read_text())
    return dict(defaults, **debian, ansible_check_mode=check_mode, inventory_hostname="node1")


def test_cgroup_migrate_in_check_mode_says_what_it_would_do_and_skips_the_v2_check():
    """Review item 11: in check mode the boot entry change and the reboot
    were skipped, then the stat/assert failed 'still runs cgroup v1'."""
    by_name = {t["name"]: t for t in tasks("cgroup_migrate.yml")}
    check = migrate_vars(True)
    skipped = [name for name, t in by_name.items() if not runs(t, check)]
    # every task that changes the node or expects the change is skipped in check mode ...
    for module in ("ansible.builtin.command", "ansible.builtin.reboot", "ansible.builtin.stat",
                   "ansible.builtin.assert"):
        (task,) = [t for t in by_name.values() if module in t]
        assert task["name"] in skipped, task["name"]
        # ... and runs for real
        assert runs(task, migrate_vars(False)), task["name"]
    # what it would do is said, naming the host, the kernel argument, the command and the reboot
    (say,) = [t for t in by_name.values() if "ansible.builtin.debug" in t]
    assert runs(say, check) and not runs(say, migrate_vars(False))
    msg = " ".join(template(say["ansible.builtin.debug"]["msg"], check).split())
    assert msg.startswith("node1: would add the kernel argument systemd.unified_cgroup_hierarchy=1 to every boot "
                          "entry (/bin/sh -c "), msg
    assert "update-grub" in msg and "and reboot (up to 900s) into cgroup v2" in msg
    assert "the check that it came back with cgroup v2 is skipped" in msg


def bootstrap_script(installer, package):
    (task,) = [t for t in tasks("main.yml") if t["name"].startswith("Install a Python for ansible-core")]
    assert task["when"] == "not __preflight_interpreter.present"  # only when a Python is to be installed
    interpreter = {"installer": installer, "install": package, "interpreter": "/usr/bin/python3", "present": False}
    script = template(task["ansible.builtin.raw"], {"__preflight_interpreter": interpreter,
                                                    "inventory_hostname": "node1"})
    return [line.strip() for line in script.splitlines() if line.strip()]


def test_the_debian_python_bootstrap_updates_the_package_lists_first_without_questions():
    """Review item 13: `apt-get -y install` on a fresh Debian image without
    `apt-get update` (no package lists: 'Unable to locate package') and with
    debconf free to ask on a terminal nobody reads."""
    lines = bootstrap_script("apt-get", "python3")
    assert lines[:4] == ["set -e", "export DEBIAN_FRONTEND=noninteractive", "apt-get -q update",
                         "apt-get -y install python3"]


def test_the_dnf_python_bootstrap_is_one_install():
    lines = bootstrap_script("dnf", "python3.11")
    assert lines[:2] == ["set -e", "dnf -y install python3.11"]
    assert not any("apt-get" in line or "DEBIAN_FRONTEND" in line for line in lines)
