"""The test lab's transport (molecule/resources/plugins/connection/kubelab_podman.py).

Loads the plugin through Ansible's plugin loader, as ansible-playbook does
with ANSIBLE_CONNECTION_PLUGINS, and replaces only the podman process with a
recorder: what matters is the podman command line the plugin builds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleConnectionFailure
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "molecule" / "resources" / "plugins" / "connection"


@pytest.fixture()
def conn(monkeypatch):
    connection_loader.add_directory(str(PLUGINS))
    ctx = PlayContext()
    ctx.remote_addr = "kubelab-node"
    plugin = connection_loader.get("kubelab_podman", ctx, None)
    assert plugin is not None, "kubelab_podman not found in %s" % PLUGINS
    calls = []

    def fake_podman(cmd, cmd_args=None, in_data=None, use_container_id=True):
        calls.append({"cmd": list(cmd) if not isinstance(cmd, str) else [cmd], "args": cmd_args,
                      "in": in_data, "id": use_container_id})
        return plugin._fake_rc, b"out", b"err"

    plugin._fake_rc = 0
    monkeypatch.setattr(plugin, "_podman", fake_podman)
    plugin.calls = calls
    return plugin


def test_pipelining_is_on_by_default(conn):
    assert conn.has_pipelining
    assert conn.is_pipelining_enabled() is True


def test_input_attaches_stdin(conn):
    rc, out, err = conn.exec_command("/usr/bin/python3 -", in_data=b"print(1)")
    assert (rc, out, err) == (0, b"out", b"err")
    [call] = conn.calls
    assert call["cmd"] == ["exec", "--interactive"]
    assert call["args"] == ["/usr/bin/python3", "-"]
    assert call["in"] == b"print(1)"


def test_no_input_no_stdin(conn):
    conn.exec_command("/bin/sh -c 'echo hi'")
    [call] = conn.calls
    assert call["cmd"] == ["exec"]
    assert call["args"] == ["/bin/sh", "-c", "echo hi"]


def test_connect_does_not_mount(conn):
    conn._connect()
    conn.exec_command("true")
    assert [c["cmd"][0] for c in conn.calls] == ["exec"]  # no "mount"


def test_podman_failure_makes_the_host_unreachable(conn):
    conn._fake_rc = 125
    with pytest.raises(AnsibleConnectionFailure, match="podman exec into kubelab-node failed"):
        conn.exec_command("true")


def test_a_command_failing_in_the_container_is_returned(conn):
    conn._fake_rc = 1
    rc, _out, _err = conn.exec_command("false")
    assert rc == 1
