"""The kubelab command over the project's real playbooks, on paths that only
run on the controller: the reset request validation refuses before any node
is touched. The inventory's nodes point at 127.0.0.1 port 1 (refused), so
even a mistake could not reach another machine."""

from __future__ import annotations

import io
import os

import pytest

from kubelab import cli

pytestmark = pytest.mark.slow

INVENTORY = """\
all:
  vars:
    ansible_host: 127.0.0.1
    ansible_port: 1
  children:
    control_plane:
      hosts:
        cp1:
    workers:
      hosts:
        w1:
"""


def kubelab(tmp_path, *argv):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(INVENTORY)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main([argv[0], "-i", str(inventory), "--artifacts-dir", str(tmp_path / "art"), *argv[1:]],
                    out=out, err=err, environ=dict(os.environ))
    return code, out.getvalue(), err.getvalue()


def test_reset_of_a_non_worker_is_refused_on_the_controller(tmp_path):
    code, out, err = kubelab(tmp_path, "reset", "--node", "cp1")
    assert code == 1, out + err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kubelab: error: host localhost: task ")
    assert "reset_node=cp1 is not in the 'workers' group" in lines[0]
    assert "It is the control plane" in lines[0]
    assert "Traceback" not in out + err
    # No node was contacted: no host but localhost has results.
    for line in out.splitlines():
        assert not line.startswith(("cp1 ", "w1 ")) or line.split()[1:5] == ["0", "0", "0", "0"], line
