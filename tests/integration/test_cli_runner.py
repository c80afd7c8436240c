"""The kubelab command with the real ansible-runner and ansible-playbook,
against a throw-away project tree whose playbooks only touch local-connection
hosts (no network at all). Proves: exit codes from a real event stream and a
report written by a play, extra variables never on disk, the allow-listed
environment, run rotation, and Ctrl-C cancelling a running playbook."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from kubelab import cli

pytestmark = pytest.mark.slow

SENTINEL = "sentinel-6c1d-extravar-value"
SLEEP_MARKER = "61.25"

SITE = """\
---
- name: Stage 1 - preflight
  hosts: all
  gather_facts: false
  tasks:
    - name: Environment is kubelab's allow-list
      ansible.builtin.assert:
        that:
          - lookup('ansible.builtin.env', 'KUBELAB_TEST_LEAK', default='') == ''
          - lookup('ansible.builtin.env', 'ANSIBLE_CONFIG') == '{root}/ansible.cfg'
          - kubelab_test_token == '{sentinel}'
      run_once: true

- name: Stage 2 - slow
  hosts: all
  gather_facts: false
  tasks:
    - name: Sleep
      ansible.builtin.command: sleep {sleep}
      changed_when: false
      when: kubelab_test_sleep | default(false) | bool

- name: Stage 6 - verify
  hosts: cp1
  gather_facts: false
  tasks:
    - name: Report directory
      ansible.builtin.file:
        path: "{{{{ kubelab_artifacts_dir }}}}/report"
        state: directory
        mode: "0700"
    - name: Write the report
      ansible.builtin.copy:
        dest: "{{{{ kubelab_artifacts_dir }}}}/report/verify.json"
        mode: "0600"
        content: >-
          {{{{ [{{'id': 'local', 'stage': 'local', 'source': 'cp1', 'target': 'w1',
          'expected': 'pass', 'observed': kubelab_test_verdict, 'verdict': kubelab_test_verdict,
          'run': now(utc=true).isoformat()}}] | to_json }}}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "playbooks").mkdir(parents=True)
    (root / "ansible.cfg").write_text("[defaults]\nforks = 5\n")
    (root / "site.yml").write_text(SITE.format(root=root, sentinel=SENTINEL, sleep=SLEEP_MARKER))
    python = sys.executable
    (root / "hosts.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        f"        cp1: {{ansible_connection: local, ansible_python_interpreter: {python}}}\n"
        "    workers:\n      hosts:\n"
        f"        w1: {{ansible_connection: local, ansible_python_interpreter: {python}}}\n"
    )
    return root


def kubelab(project: Path, *args: str, environ=None):
    out, err = io.StringIO(), io.StringIO()
    env = dict(os.environ if environ is None else environ)
    argv = [args[0], "-i", str(project / "hosts.yml"), "--artifacts-dir", str(project / "art"), *args[1:]]
    code = cli.main(argv, out=out, err=err, environ=env, root=project)
    return code, out.getvalue(), err.getvalue()


def all_files(path: Path):
    return [p for p in path.rglob("*") if p.is_file()]


def test_up_converges_verifies_and_keeps_extra_vars_off_disk(project, monkeypatch):
    monkeypatch.setenv("KUBELAB_TEST_LEAK", "must-not-reach-ansible")
    before = set(Path("/tmp").glob("kubelab-vars-*"))
    code, out, err = kubelab(project, "up", "-e", f"kubelab_test_token={SENTINEL}", "-e", "kubelab_test_verdict=pass")
    assert code == 0, out + err
    assert "1 checks: 1 passed" in out
    assert f"Report: {project / 'art' / 'report' / 'verify.json'}" in out
    files = all_files(project / "art")
    assert any(p.name == "command" for p in files) and any(p.parent.name == "job_events" for p in files)
    for path in files:
        text = path.read_text(errors="replace")
        assert SENTINEL not in text, path
        assert "must-not-reach-ansible" not in text, path
    assert not (project / "art" / "runner" / "env").exists()
    assert set(Path("/tmp").glob("kubelab-vars-*")) == before


def test_failed_verification_and_rotation(project):
    for _ in range(3):
        code, out, err = kubelab(project, "up", "--keep-runs", "2", "-e", f"kubelab_test_token={SENTINEL}",
                                 "-e", "kubelab_test_verdict=fail")
        assert code == 3, out + err
    assert "FAIL  local  cp1 -> w1" in out and "observed: fail" in out
    assert len(list((project / "art" / "runs").iterdir())) == 2


def test_failed_assertion_is_host_and_task(project):
    code, out, err = kubelab(project, "up", "-e", "kubelab_test_token=wrong", "-e", "kubelab_test_verdict=pass")
    assert code == 1
    assert err.startswith("kubelab: error: host cp1: task 'Environment is kubelab's allow-list' "
                          "(Stage 1 - preflight) failed:")
    assert "Traceback" not in out + err


def _sleepers() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd[:2] == [b"sleep", SLEEP_MARKER.encode()]:
                pids.append(int(proc.name))
    return pids


def test_ctrl_c_cancels_the_running_playbook(project):
    earlier = set(_sleepers())

    def interrupt():
        deadline = time.monotonic() + 60
        while not set(_sleepers()) - earlier and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt, daemon=True)
    timer.start()
    started = time.monotonic()
    code, out, err = kubelab(project, "up", "-e", f"kubelab_test_token={SENTINEL}", "-e", "kubelab_test_sleep=true",
                             "-e", "kubelab_test_verdict=pass")
    elapsed = time.monotonic() - started
    timer.join(5)
    assert code == 130, out + err
    assert elapsed < 45
    assert "Interrupted: asking ansible-playbook to stop its tasks" in out
    assert "Cancelled during Stage 2 - slow, task 'Sleep'" in out
    deadline = time.monotonic() + 10
    while set(_sleepers()) - earlier and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(_sleepers()) - earlier == set()
