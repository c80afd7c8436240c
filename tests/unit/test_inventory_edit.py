"""add-worker's inventory editing: round trip keeps comments and layout,
refusals leave the file byte-for-byte unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from kubelab.errors import KubelabError
from kubelab.inventory_edit import add_worker, check_address

pytestmark = pytest.mark.unit

INVENTORY = """\
---
# The lab (comment at the top).
all:
  children:
    control_plane:
      hosts:
        # The control plane's placeholder comment.
        cp1.example.test:
          ansible_host: 192.0.2.10
          kubelab_node_ip: 192.0.2.10
    workers:
      hosts:
        w1.example.test:
          ansible_host: 192.0.2.11  # trailing comment
          kubelab_node_ip: 192.0.2.11
        w2.example.test:
          ansible_host: "192.0.2.12"
          kubelab_node_ip: 192.0.2.112
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    path.chmod(0o640)
    return path


def test_adds_the_worker_and_keeps_everything_else(inventory):
    add_worker(inventory, "w3.example.test", "192.0.2.13")
    text = inventory.read_text()
    assert text == INVENTORY + (
        "        w3.example.test:\n"
        "          ansible_host: 192.0.2.13\n"
        "          kubelab_node_ip: 192.0.2.13\n"
    )
    assert os.stat(inventory).st_mode & 0o777 == 0o640
    data = YAML(typ="safe").load(text)
    assert data["all"]["children"]["workers"]["hosts"]["w3.example.test"] == {
        "ansible_host": "192.0.2.13", "kubelab_node_ip": "192.0.2.13",
    }


def test_ansible_reads_the_edited_inventory(inventory):
    add_worker(inventory, "w3.example.test", "192.0.2.13")
    ansible_inventory = Path(sys.executable).parent / "ansible-inventory"
    out = subprocess.run(
        [str(ansible_inventory), "-i", str(inventory), "--graph", "workers"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "w3.example.test" in out and "w1.example.test" in out


@pytest.mark.parametrize(
    ("name", "address", "message"),
    [
        ("w1.example.test", "192.0.2.50", "already has a host named w1.example.test"),
        ("cp1.example.test", "192.0.2.50", "already has a host named cp1.example.test"),
        ("w9", "192.0.2.11", "already used by host w1.example.test (ansible_host)"),
        ("w9", "192.0.2.12", "already used by host w2.example.test (ansible_host)"),
        ("w9", "192.0.2.112", "already used by host w2.example.test (kubelab_node_ip)"),
        ("w9", "192.0.2.300", "'192.0.2.300' is not an IP address"),
        ("w9", "w9.example.test", "is not an IP address"),
        ("w9", "127.0.0.1", "cannot be a node address"),
        ("w9", "0.0.0.0", "cannot be a node address"),
        ("bad_name!", "192.0.2.50", "is not a valid host name"),
        ("-w9", "192.0.2.50", "is not a valid host name"),
    ],
)
def test_refusals_change_nothing(inventory, name, address, message):
    before = inventory.read_bytes()
    stat_before = inventory.stat()
    with pytest.raises(KubelabError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        add_worker(inventory, name, address)
    assert str(info.value).count(". ") == 0 or str(info.value).endswith("changed.")
    assert inventory.read_bytes() == before
    assert inventory.stat().st_mtime_ns == stat_before.st_mtime_ns
    assert sorted(p.name for p in inventory.parent.iterdir()) == ["hosts.yml"]


def test_ipv6_duplicates_are_compared_as_addresses(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  children:\n    workers:\n      hosts:\n        w1:\n          ansible_host: 2001:db8::1\n")
    with pytest.raises(KubelabError, match="already used by host w1"):
        add_worker(path, "w2", "2001:db8:0:0::1")
    assert check_address("2001:db8::0002") == "2001:db8::2"


def test_empty_workers_group_and_directory_inventory(tmp_path):
    (tmp_path / "hosts.yml").write_text("all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n    workers:\n")
    written = add_worker(tmp_path, "w1", "198.51.100.7")
    assert written == tmp_path / "hosts.yml"
    data = YAML(typ="safe").load(written.read_text())
    assert data["all"]["children"]["workers"]["hosts"]["w1"]["kubelab_node_ip"] == "198.51.100.7"


def test_missing_group_or_file_is_refused(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  hosts:\n    cp1:\n")
    with pytest.raises(KubelabError, match="no 'workers' group"):
        add_worker(path, "w1", "198.51.100.7")
    with pytest.raises(KubelabError, match="does not exist"):
        add_worker(tmp_path / "nope.yml", "w1", "198.51.100.7")
    ini = tmp_path / "hosts.ini"
    ini.write_text("[workers]\n")
    with pytest.raises(KubelabError, match="not a YAML file"):
        add_worker(ini, "w1", "198.51.100.7")


def test_a_check_sees_the_edited_copy_and_a_refusal_changes_nothing(inventory):
    """add_worker(check=...) validates the edit on a copy (with group_vars beside it) before writing."""
    (inventory.parent / "group_vars").mkdir()
    (inventory.parent / "group_vars" / "all.yml").write_text("kubelab_pod_network_cidr: 10.244.0.0/16\n")
    before = inventory.read_bytes()
    seen = []

    def check(copy):
        seen.append((copy, copy.read_text(), (copy.parent / "group_vars" / "all.yml").read_text()))
        return [f"host w3.example.test: refused in {copy}"]

    with pytest.raises(KubelabError) as info:
        add_worker(inventory, "w3.example.test", "192.0.2.13", check=check)
    assert inventory.read_bytes() == before
    copy, text, group_vars = seen[0]
    assert copy != inventory and not copy.exists()  # a temporary copy, removed afterwards
    assert "w3.example.test:\n          ansible_host: 192.0.2.13" in text
    assert group_vars == "kubelab_pod_network_cidr: 10.244.0.0/16\n"
    assert str(info.value) == (f"Adding w3.example.test (192.0.2.13) would leave the inventory with 1 problem; "
                               f"nothing was changed in {inventory}:\n  - host w3.example.test: refused in {inventory}")


def test_a_passing_check_writes_the_edit(tmp_path):
    (tmp_path / "hosts.yml").write_text(INVENTORY)
    checked = []
    written = add_worker(tmp_path, "w3", "198.51.100.7", check=lambda copy: checked.append(copy) or [])
    assert written == tmp_path / "hosts.yml" and "w3:" in written.read_text()
    assert checked[0].is_absolute() and checked[0] != tmp_path  # the copied inventory directory
