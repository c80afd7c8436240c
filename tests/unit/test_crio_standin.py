"""Unit tests of the CRI-O TEST DOUBLE (molecule/resources/standins/pkgs/cri-o).

They run the stand-in's own `crio` script against temporary directories,
using the path overrides real crio has (--config/-c, --config-dir/-d,
CONTAINER_CONFIG, CONTAINER_CONFIG_DIR, CONTAINER_LISTEN, `crio status
--socket`), and check the contract the roles rely on: merge order and
whole-option replacement, validation failures, `crio config` output, and a
daemon that serves the configuration it loaded at start until restarted.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "molecule" / "resources" / "standins" / "pkgs" / "cri-o"
CRIO = PKG / "root" / "usr" / "bin" / "crio"
SHIPPED_DIR = PKG / "root" / "etc" / "crio" / "crio.conf.d"

DEFAULT_CAPS = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID",
    "SETPCAP", "NET_BIND_SERVICE", "KILL",
]
LAB_CAPS = DEFAULT_CAPS + ["NET_RAW"]


def _load_module():
    loader = importlib.machinery.SourceFileLoader("kubelab_crio_standin", str(CRIO))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the package tree
    try:
        loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


crio_mod = _load_module()


def caps_toml(caps, table="[crio.runtime]"):
    return "%s\ndefault_capabilities = [%s]\n" % (table, ", ".join(json.dumps(c) for c in caps))


@pytest.fixture()
def etc(tmp_path):
    """A copy of the package's /etc/crio in a temp dir (crio.conf.d only: no crio.conf, as in CRI-O 1.35)."""
    confd = tmp_path / "crio.conf.d"
    confd.mkdir()
    for item in SHIPPED_DIR.iterdir():
        (confd / item.name).write_text(item.read_text())
    return tmp_path


def main_file(etc_dir):
    """--config for a test tree: its crio.conf when there is one, else "" (crio then reads none)."""
    conf = etc_dir / "crio.conf"
    return str(conf) if conf.exists() else ""


def run_crio(etc_dir, *args, env_extra=None, timeout=20):
    env = dict(os.environ)
    env.pop("CONTAINER_CONFIG", None)
    env.pop("CONTAINER_CONFIG_DIR", None)
    env.pop("CONTAINER_LISTEN", None)
    if env_extra:
        env.update(env_extra)
    cmd = [sys.executable, str(CRIO), "-c", main_file(etc_dir), "-d", str(etc_dir / "crio.conf.d"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def effective(etc_dir):
    """What `crio config` reports, parsed (commented-out defaults filled in)."""
    result = run_crio(etc_dir, "config")
    assert result.returncode == 0, result.stderr
    printed = tomllib.loads(result.stdout)
    return printed.get("crio", {}).get("runtime", {}), result.stdout


# ------------------------------------------------------------ merge order

def test_shipped_defaults_are_crio_defaults_without_net_raw(etc):
    config = crio_mod.load_config(str(etc / "crio.conf"), False, str(etc / "crio.conf.d"))
    assert config["crio.runtime"]["default_capabilities"] == DEFAULT_CAPS
    assert "NET_RAW" not in config["crio.runtime"]["default_capabilities"]
    assert config["crio.runtime"]["cgroup_manager"] == "systemd"
    assert config["crio.image"]["pause_image"] == "registry.k8s.io/pause:3.10.1"  # CRI-O 1.35's DefaultPauseImage


def test_later_dropin_replaces_whole_list(etc):
    (etc / "crio.conf.d" / "default_capabilities.conf").write_text(caps_toml(LAB_CAPS))
    (etc / "crio.conf.d" / "zz-override.conf").write_text(caps_toml(["CHOWN"]))
    origins = {}
    config = crio_mod.load_config(str(etc / "crio.conf"), False, str(etc / "crio.conf.d"), origins)
    assert config["crio.runtime"]["default_capabilities"] == ["CHOWN"]
    assert origins["crio.runtime.default_capabilities"].endswith("zz-override.conf")


def test_lexical_order_not_creation_order(etc):
    confd = etc / "crio.conf.d"
    (confd / "50-late.conf").write_text(caps_toml(LAB_CAPS))
    (confd / "05-early.conf").write_text(caps_toml(["KILL"]))  # created last, sorts first
    config = crio_mod.load_config(str(etc / "crio.conf"), False, str(confd))
    assert config["crio.runtime"]["default_capabilities"] == LAB_CAPS


def test_dropin_without_the_option_keeps_earlier_value(etc):
    confd = etc / "crio.conf.d"
    (confd / "default_capabilities.conf").write_text(caps_toml(LAB_CAPS))
    (confd / "zz-pause.conf").write_text('[crio.image]\npause_image = "registry.k8s.io/pause:3.9"\n')
    config = crio_mod.load_config(str(etc / "crio.conf"), False, str(confd))
    assert config["crio.runtime"]["default_capabilities"] == LAB_CAPS
    assert config["crio.image"]["pause_image"] == "registry.k8s.io/pause:3.9"
    assert config["crio.runtime"]["cgroup_manager"] == "systemd"


def test_every_file_is_read_not_only_dot_conf(etc):
    # CRI-O walks the directory (filepath.Walk): a backup file left next to a
    # drop-in is applied too, in lexical order.
    confd = etc / "crio.conf.d"
    (confd / "default_capabilities.conf").write_text(caps_toml(LAB_CAPS))
    (confd / "default_capabilities.conf.bak").write_text(caps_toml(DEFAULT_CAPS))
    config = crio_mod.load_config(str(etc / "crio.conf"), False, str(confd))
    assert config["crio.runtime"]["default_capabilities"] == DEFAULT_CAPS


def test_subdirectories_are_walked_in_place(etc):
    confd = etc / "crio.conf.d"
    (confd / "20-sub").mkdir()
    (confd / "20-sub" / "a.conf").write_text(caps_toml(["KILL"]))
    (confd / "30-last.conf").write_text(caps_toml(LAB_CAPS))
    config = crio_mod.load_config(str(etc / "crio.conf"), False, str(confd))
    assert config["crio.runtime"]["default_capabilities"] == LAB_CAPS
    (confd / "30-last.conf").unlink()
    config = crio_mod.load_config(str(etc / "crio.conf"), False, str(confd))
    assert config["crio.runtime"]["default_capabilities"] == ["KILL"]


def test_missing_main_file_is_fine_unless_explicit(tmp_path):
    confd = tmp_path / "d"
    confd.mkdir()
    config = crio_mod.load_config(str(tmp_path / "none.conf"), False, str(confd), quiet=True)
    assert config["crio.runtime"]["default_capabilities"] == DEFAULT_CAPS
    with pytest.raises(crio_mod.ConfigError, match="no such file"):
        crio_mod.load_config(str(tmp_path / "none.conf"), True, str(confd), quiet=True)


# crio 1.35's own words for a missing --config (cmd/crio/main.go app.Before,
# internal/criocli/criocli.go mergeConfigFiles, pkg/config/config.go UpdateFromFile)
MISSING_CONFIG = ("get and merge config from context: update config from file: update config from drop-in file: "
                  "open %s: no such file or directory")


@pytest.mark.parametrize("command", [["config"], ["status", "config"], ["version"], []])
def test_cli_refuses_a_missing_explicit_config_with_crio_s_error(etc, command):
    missing = etc / "crio.conf"  # CRI-O 1.35's packages ship none
    result = subprocess.run([sys.executable, str(CRIO), "--config", str(missing), "--config-dir",
                             str(etc / "crio.conf.d"), *command], capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "level=fatal msg=%s" % json.dumps(MISSING_CONFIG % missing) in result.stderr
    assert "Traceback" not in result.stderr
    # the same path from CONTAINER_CONFIG counts as given (urfave/cli's IsSet)
    env = dict(os.environ, CONTAINER_CONFIG=str(missing), CONTAINER_CONFIG_DIR=str(etc / "crio.conf.d"))
    from_env = subprocess.run([sys.executable, str(CRIO), "config"], capture_output=True, text=True, env=env)
    assert from_env.returncode == 1
    assert json.dumps(MISSING_CONFIG % missing) in from_env.stderr


def test_cli_skips_a_missing_default_config_and_an_empty_one(etc, monkeypatch):
    # the default path (not given) is skipped with crio's info line; `--config ""` reads no main file
    monkeypatch.setattr(crio_mod, "DEFAULT_CONFIG", str(etc / "crio.conf"))
    parser, args = crio_mod.parse(["-d", str(etc / "crio.conf.d"), "config"])
    assert args.config_explicit is False
    config = crio_mod.load_config(args.config, args.config_explicit, args.config_dir, quiet=True)
    assert config["crio.runtime"]["default_runtime"] == "crun"
    result = run_crio(etc, "config")  # -c ""
    assert result.returncode == 0, result.stderr
    assert "Skipping not-existing" not in result.stderr
    assert "Updating config from drop-in file: %s" % (etc / "crio.conf.d" / "10-crio.conf") in result.stderr


def test_package_has_cri_o_1_35_layout():
    root = PKG / "root"
    etc_files = sorted(str(p.relative_to(root)) for p in (root / "etc").rglob("*") if p.is_file())
    # cri-o/packaging templates/latest/cri-o/cri-o.spec: no /etc/crio/crio.conf, only the drop-in
    assert etc_files == ["etc/cni/net.d/10-crio-bridge.conflist.disabled",
                         "etc/containers/registries.conf.d/crio.conf",
                         "etc/crio/crio.conf.d/10-crio.conf"]
    dropin = tomllib.loads((SHIPPED_DIR / "10-crio.conf").read_text())
    assert dropin == {"crio": {
        "image": {"signature_policy": "/etc/crio/policy.json"},
        "runtime": {"default_runtime": "crun", "runtimes": {
            "crun": {"runtime_path": "/usr/libexec/crio/crun", "runtime_root": "/run/crun",
                     "monitor_path": "/usr/libexec/crio/conmon",
                     "allowed_annotations": ["io.containers.trace-syscall"]},
            "runc": {"runtime_path": "/usr/libexec/crio/runc", "runtime_root": "/run/runc",
                     "monitor_path": "/usr/libexec/crio/conmon"}}}}}
    registries = tomllib.loads((root / "etc" / "containers" / "registries.conf.d" / "crio.conf").read_text())
    assert registries == {"unqualified-search-registries": ["docker.io"]}
    bridge = json.loads((root / "etc" / "cni" / "net.d" / "10-crio-bridge.conflist.disabled").read_text())
    assert bridge["plugins"][0]["type"] == "bridge"  # shipped, but disabled (not *.conflist)


def test_unknown_keys_are_ignored_like_crio(etc):
    # A misspelt option is silently ignored by crio: only the effective
    # configuration shows whether a change took.
    (etc / "crio.conf.d" / "typo.conf").write_text(
        '[crio.runtime]\ndefault_capabilites = ["NET_RAW"]\n')
    runtime, _text = effective(etc)
    assert "default_capabilites" not in runtime
    assert "default_capabilities" not in runtime  # still the default: commented out


# ------------------------------------------------------------ crio config output

def test_crio_config_comments_out_defaults_and_prints_changes(etc):
    runtime, text = effective(etc)
    assert "default_capabilities" not in runtime
    assert "# default_capabilities = [" in text
    assert '# cgroup_manager = "systemd"' in text
    (etc / "crio.conf.d" / "default_capabilities.conf").write_text(caps_toml(LAB_CAPS))
    runtime, text = effective(etc)
    assert runtime["default_capabilities"] == LAB_CAPS
    assert "\ndefault_capabilities = [\n\t\"CHOWN\"," in text


def test_crio_config_default_flag_ignores_files(etc):
    (etc / "crio.conf.d" / "default_capabilities.conf").write_text(caps_toml(LAB_CAPS))
    result = run_crio(etc, "config", "--default")
    assert result.returncode == 0
    assert "default_capabilities" not in tomllib.loads(result.stdout)["crio"]["runtime"]


def test_env_vars_select_paths(etc):
    (etc / "crio.conf.d" / "default_capabilities.conf").write_text(caps_toml(LAB_CAPS))
    env = dict(os.environ, CONTAINER_CONFIG=main_file(etc), CONTAINER_CONFIG_DIR=str(etc / "crio.conf.d"))
    result = subprocess.run([sys.executable, str(CRIO), "config"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout)["crio"]["runtime"]["default_capabilities"] == LAB_CAPS


# ------------------------------------------------------------ validation

@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[crio.runtime]\ndefault_capabilities = ["CHOWN"\n', "unable to decode configuration"),
        ("[crio.runtime\n", "unable to decode configuration"),
        ('[crio.runtime]\ndefault_capabilities = ["NET_RAWW"]\n', r'\"CAP_NET_RAWW\": unknown capability'),
        ('[crio.runtime]\ndefault_capabilities = ["CAP_NET_RAW"]\n', r'\"CAP_CAP_NET_RAW\": unknown capability'),
        ('[crio.runtime]\ndefault_capabilities = "NET_RAW"\n', "incompatible types"),
        ('[crio.runtime]\ncgroup_manager = 1\n', "incompatible types"),
    ],
)
def test_invalid_dropin_fails_crio_config(etc, content, message):
    bad = etc / "crio.conf.d" / "99-bad.conf"
    bad.write_text(content)
    result = run_crio(etc, "config")
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in result.stderr
    assert "level=fatal" in result.stderr
    assert "Traceback" not in result.stderr
    if "decode" in message:
        assert str(bad) in result.stderr


def test_lowercase_capability_is_accepted_like_crio(etc):
    (etc / "crio.conf.d" / "default_capabilities.conf").write_text(caps_toml(["chown", "net_raw"]))
    runtime, _text = effective(etc)
    assert runtime["default_capabilities"] == ["chown", "net_raw"]


def test_capabilities_are_those_of_the_running_kernel(etc, tmp_path):
    (etc / "crio.conf.d" / "default_capabilities.conf").write_text(caps_toml(["CHOWN", "PERFMON"]))
    last_cap = tmp_path / "cap_last_cap"
    last_cap.write_text("37\n")  # a 4.18 kernel: AUDIT_READ is the last one
    old = run_crio(etc, "config", env_extra={"KUBELAB_CRIO_CAP_LAST_CAP": str(last_cap)})
    assert old.returncode == 1
    assert r'\"CAP_PERFMON\": unknown capability' in old.stderr
    last_cap.write_text("40\n")
    new = run_crio(etc, "config", env_extra={"KUBELAB_CRIO_CAP_LAST_CAP": str(last_cap)})
    assert new.returncode == 0, new.stderr


# ------------------------------------------------------------ daemon and status

class Daemon:
    def __init__(self, etc_dir, sock, notify=None):
        env = dict(os.environ, CONTAINER_CONFIG=main_file(etc_dir),
                   CONTAINER_CONFIG_DIR=str(etc_dir / "crio.conf.d"), CONTAINER_LISTEN=str(sock))
        env.pop("NOTIFY_SOCKET", None)
        if notify:
            env["NOTIFY_SOCKET"] = notify
        self.sock = sock
        self.proc = subprocess.Popen([sys.executable, str(CRIO)], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.sock.exists():
                return True
            time.sleep(0.02)
        raise AssertionError("crio stand-in did not create its socket")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out, err = self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture()
def daemons():
    started = []

    def start(etc_dir, sock, notify=None):
        daemon = Daemon(etc_dir, sock, notify)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def status(sock, what="config"):
    return subprocess.run([sys.executable, str(CRIO), "status", "--socket", str(sock), what],
                          capture_output=True, text=True, timeout=20)


def status_caps(sock):
    result = status(sock)
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout)["crio"]["runtime"]["default_capabilities"]


def test_status_config_shows_config_loaded_at_start_until_restart(etc, tmp_path, daemons):
    sock = tmp_path / "run" / "crio.sock"
    daemon = daemons(etc, sock)
    assert daemon.wait_ready()
    assert status_caps(sock) == DEFAULT_CAPS
    (etc / "crio.conf.d" / "default_capabilities.conf").write_text(caps_toml(LAB_CAPS))
    assert status_caps(sock) == DEFAULT_CAPS  # the file changed, the daemon did not
    rc, _err = daemon.stop()
    assert rc == 0
    assert not sock.exists()
    daemon = daemons(etc, sock)
    assert daemon.wait_ready()
    assert status_caps(sock) == LAB_CAPS


def test_sighup_reloads_only_reloadable_options(etc, tmp_path, daemons):
    sock = tmp_path / "crio.sock"
    daemon = daemons(etc, sock)
    assert daemon.wait_ready()
    (etc / "crio.conf.d" / "default_capabilities.conf").write_text(
        caps_toml(LAB_CAPS) + '[crio.image]\npause_image = "registry.k8s.io/pause:3.9"\n')
    daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        text = status(sock).stdout
        if "pause:3.9" in text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    effective_now = tomllib.loads(text)["crio"]
    assert effective_now["image"]["pause_image"] == "registry.k8s.io/pause:3.9"
    assert effective_now["runtime"]["default_capabilities"] == DEFAULT_CAPS


def test_status_info_and_unknown_endpoint(etc, tmp_path, daemons):
    sock = tmp_path / "crio.sock"
    assert daemons(etc, sock).wait_ready()
    result = status(sock, "info")
    assert result.returncode == 0
    assert "cgroup driver: systemd" in result.stdout
    raw = crio_mod.query(str(sock), "/info")
    assert json.loads(raw)["cgroup_driver"] == "systemd"
    with pytest.raises(SystemExit) as exc:
        crio_mod.query(str(sock), "/nothing")
    assert exc.value.code == 1


def test_daemon_refuses_invalid_config_and_creates_no_socket(etc, tmp_path, daemons):
    (etc / "crio.conf.d" / "default_capabilities.conf").write_text(caps_toml(["NET_RAWW"]))
    sock = tmp_path / "crio.sock"
    daemon = daemons(etc, sock)
    assert daemon.wait_ready() is False
    rc, err = daemon.stop()
    assert rc == 1
    assert r'\"CAP_NET_RAWW\": unknown capability' in err
    assert not sock.exists()


def test_daemon_rejects_unknown_cgroup_manager_at_start(etc, tmp_path, daemons):
    (etc / "crio.conf.d" / "cg.conf").write_text('[crio.runtime]\ncgroup_manager = "cgroupsd"\n')
    assert run_crio(etc, "config").returncode == 0  # `crio config` does not check execution settings
    daemon = daemons(etc, tmp_path / "crio.sock")
    assert daemon.wait_ready() is False
    rc, err = daemon.stop()
    assert rc == 1
    assert "invalid cgroup manager: cgroupsd" in err


def test_daemon_refuses_a_live_socket_and_replaces_a_stale_one(etc, tmp_path, daemons):
    sock = tmp_path / "crio.sock"
    first = daemons(etc, sock)
    assert first.wait_ready()
    second = daemons(etc, sock)
    assert second.wait_ready() is False or second.proc.wait(timeout=10) == 1
    rc, err = second.stop()
    assert rc == 1
    assert "already existing connection" in err
    first.proc.kill()  # leaves a stale socket file behind
    first.proc.wait()
    assert sock.exists()
    third = daemons(etc, sock)
    deadline = time.monotonic() + 10
    while status(sock).returncode != 0:
        assert third.proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)


def test_daemon_notifies_systemd_when_ready(etc, tmp_path, daemons):
    notify = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(10)
    try:
        daemon = daemons(etc, tmp_path / "crio.sock", notify=str(notify))
        message = listener.recv(4096).decode()
        assert "READY=1" in message
        assert daemon.sock.exists()  # READY only after the socket listens
    finally:
        listener.close()


def test_status_without_daemon_fails_clearly(tmp_path):
    result = status(tmp_path / "absent.sock")
    assert result.returncode == 1
    assert "dial unix %s" % (tmp_path / "absent.sock") in result.stderr
    assert "Traceback" not in result.stderr
    stale = tmp_path / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(stale))
    listener.close()  # a socket file nobody listens on
    result = status(stale)
    assert result.returncode == 1
    assert "connection refused" in result.stderr


def test_version_mentions_1_35():
    for args in (["--version"], ["version"]):
        result = subprocess.run([sys.executable, str(CRIO), *args], capture_output=True, text=True)
        assert result.returncode == 0
        assert "1.35.0" in result.stdout
    result = subprocess.run([sys.executable, str(CRIO), "version", "--json"], capture_output=True, text=True)
    assert json.loads(result.stdout)["version"] == "1.35.0"


def test_every_file_of_the_stand_in_says_test_double():
    for path in sorted(PKG.rglob("*")):
        if path.is_file():
            head = path.read_text()[:400]
            assert "TEST DOUBLE" in head or "TEST fixture" in head, path
