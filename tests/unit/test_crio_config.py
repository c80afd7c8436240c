"""CRI-O configuration logic: TOML reading, drop-in order, origins, shadowing,
and the crio_config_info module against a crio command faked at run_command.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib

import pytest
from ansible.module_utils import basic
from ansible.module_utils.kubelab_crio import (
    BUILTIN,
    TomlError,
    compute_origins,
    config_files,
    headline,
    parse_crio_config_output,
    parse_toml,
    shadowing,
    uncomment_defaults,
)
from ansible.module_utils.testing import patch_module_args

import crio_config_info

pytestmark = pytest.mark.unit

CRIO_CONF = """\
# main file
[crio]
log_dir = "/var/log/crio/pods"

[crio.runtime]
default_capabilities = [
\t"CHOWN",
\t"DAC_OVERRIDE",
\t"KILL",
]
cgroup_manager = "systemd"   # comment after a value
pids_limit = -1

[crio.image]
pause_image = 'registry.k8s.io/pause:3.10'
"""

WRITEUP_DROPIN = """\
[crio.runtime]
default_capabilities = [
  "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID",
  "SETPCAP", "NET_BIND_SERVICE", "KILL", "NET_RAW",
]
"""

# `crio status config`: the daemon's TOML encoder, nested tables indented.
DAEMON_OUTPUT = """\
[crio]
  root = "/var/lib/containers/storage"
  internal_wipe = true
  [crio.api]
    listen = "/var/run/crio/crio.sock"
    grpc_max_send_msg_size = 83886080
  [crio.runtime]
    default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", \
"NET_BIND_SERVICE", "KILL", "NET_RAW"]
    cgroup_manager = "systemd"
    pids_limit = -1
    default_sysctls = []
    [crio.runtime.runtimes.crun]
      runtime_path = ""
      allowed_annotations = ["io.containers.trace-syscall"]
  [crio.image]
    pause_image = "registry.k8s.io/pause:3.10"
"""

# `crio config`: options at their built-in default are commented out.
CONFIG_OUTPUT = """\
# The CRI-O configuration file specifies all of the available configuration
# options and command-line flags for the crio(8) OCI Kubernetes Container Runtime
# daemon, but in a TOML format that can be more easily modified and versioned.
#
[crio]

# root = "/var/lib/containers/storage"

[crio.runtime]

# cgroup_manager = "systemd"

default_capabilities = [
\t"CHOWN",
\t"NET_RAW",
]

# default_sysctls = [
# ]

[crio.image]

# The image used to instantiate infra containers.
# pause_image = "registry.k8s.io/pause:3.10"

# [crio.runtime.runtimes.crun]
# runtime_root = "/run/crun"
"""


# ---------------------------------------------------------------- TOML

@pytest.mark.parametrize("text", [CRIO_CONF, WRITEUP_DROPIN, DAEMON_OUTPUT, CONFIG_OUTPUT, """\
a = 1_000
b = 0x1F
c = 1.5e3
d = true
e = false
"f.g" = "q\\"uote\\t\\u00e9"
h = '''
raw \\n'''
i = \"\"\"
line1 \\
   line2\"\"\"
j = { k = "v", l = [1, [2, 3]] }
m.n = "dotted"
[x."y z".w]
v = [ ]
"""])
def test_reader_agrees_with_tomllib(text):
    assert parse_toml(text, use_tomllib=False) == tomllib.loads(text)


@pytest.mark.parametrize("text,message", [
    ("[crio.runtime]\ndefault_capabilities = [\"CHOWN\" \"KILL\"]\n", "line 2: expected ',' or ']' in array"),
    ("[crio.runtime\n", "line 1: expected ']' after table name"),
    ("a = 1\na = 2\n", "line 2: key a defined twice"),
    ("a = \"open\n", "line 1: newline in a string"),
    ("a = 1 b = 2\n", "line 1: unexpected 'b' after value"),
    ("a = @\n", "line 1: unsupported value starting with '@'"),
    ("[[x]]\n", "line 1: arrays of tables are not used by CRI-O and not supported"),
])
def test_reader_errors_name_the_line(text, message):
    with pytest.raises(TomlError) as exc:
        parse_toml(text, use_tomllib=False)
    assert str(exc.value).startswith(message)
    if not text.startswith("[["):  # valid TOML that this reader refuses on purpose
        with pytest.raises(TomlError):
            parse_toml(text)  # tomllib refuses it too


def test_crio_config_output_includes_commented_defaults():
    parsed = parse_crio_config_output(CONFIG_OUTPUT)
    assert parsed["crio"]["runtime"]["default_capabilities"] == ["CHOWN", "NET_RAW"]  # live value
    assert parsed["crio"]["runtime"]["cgroup_manager"] == "systemd"  # commented default
    assert parsed["crio"]["image"]["pause_image"] == "registry.k8s.io/pause:3.10"
    assert parsed["crio"]["runtime"]["default_sysctls"] == []
    assert parsed["crio"]["runtime"]["runtimes"]["crun"]["runtime_root"] == "/run/crun"
    # prose comments are dropped, not turned into keys
    assert "The" not in uncomment_defaults(CONFIG_OUTPUT)


# ---------------------------------------------------------------- order and origins

def _tree(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path / "crio.conf"), str(tmp_path / "crio.conf.d")


def test_files_in_crio_order(tmp_path):
    conf, confd = _tree(tmp_path, {
        "crio.conf": "", "crio.conf.d/99-z.conf": "", "crio.conf.d/10-crio.conf": "",
        "crio.conf.d/default_capabilities.conf": "", "crio.conf.d/Z-upper.conf": "",
        "crio.conf.d/50-dir/a.conf": "", "crio.conf.d/default_capabilities.conf.123.2026-01-01@00:00~": "",
    })
    names = [os.path.relpath(p, str(tmp_path)) for p in config_files(conf, confd)]
    # byte order: digits < upper case < lower case; directories entered in place; every file counts
    assert names == ["crio.conf", "crio.conf.d/10-crio.conf", "crio.conf.d/50-dir/a.conf",
                     "crio.conf.d/99-z.conf", "crio.conf.d/Z-upper.conf",
                     "crio.conf.d/default_capabilities.conf",
                     "crio.conf.d/default_capabilities.conf.123.2026-01-01@00:00~"]


def test_missing_main_file_and_dir(tmp_path):
    assert config_files(str(tmp_path / "nope.conf"), str(tmp_path / "nope.d")) == []


def _parsed(*pairs):
    return [(path, parse_toml(text)) for path, text in pairs]


def test_origins_last_file_wins():
    files = _parsed(("/etc/crio/crio.conf", CRIO_CONF),
                    ("/etc/crio/crio.conf.d/10-crio.conf", '[crio.image]\npause_image = "mirror/pause:3.10"\n'),
                    ("/etc/crio/crio.conf.d/default_capabilities.conf", WRITEUP_DROPIN))
    origins = compute_origins(files)
    assert origins["crio.runtime.default_capabilities"] == "/etc/crio/crio.conf.d/default_capabilities.conf"
    assert origins["crio.runtime.cgroup_manager"] == "/etc/crio/crio.conf"
    assert origins["crio.image.pause_image"] == "/etc/crio/crio.conf.d/10-crio.conf"
    values, origin = headline(tomllib.loads(DAEMON_OUTPUT), origins)
    assert values["default_capabilities"][-1] == "NET_RAW"
    assert values["cgroup_manager"] == "systemd"
    assert origin == {"default_capabilities": "/etc/crio/crio.conf.d/default_capabilities.conf",
                      "cgroup_manager": "/etc/crio/crio.conf",
                      "pause_image": "/etc/crio/crio.conf.d/10-crio.conf"}


def test_origin_builtin_when_no_file_sets_it():
    values, origin = headline(None, {})
    assert values == {"default_capabilities": None, "cgroup_manager": None, "pause_image": None}
    assert origin["pause_image"] == BUILTIN


OPT = "crio.runtime.default_capabilities"


def test_later_dropin_shadows():
    files = _parsed(("/etc/crio/crio.conf", CRIO_CONF),
                    ("/etc/crio/crio.conf.d/default_capabilities.conf", WRITEUP_DROPIN),
                    ("/etc/crio/crio.conf.d/zz-local.conf", '[crio.runtime]\ndefault_capabilities = ["CHOWN"]\n'),
                    ("/etc/crio/crio.conf.d/zzz-other.conf", '[crio.runtime]\npids_limit = 10\n'))
    assert shadowing(files, "/etc/crio/crio.conf.d/default_capabilities.conf", [OPT]) == {
        OPT: ["/etc/crio/crio.conf.d/zz-local.conf"]}


def test_earlier_dropin_and_main_file_do_not_shadow():
    files = _parsed(("/etc/crio/crio.conf", CRIO_CONF),
                    ("/etc/crio/crio.conf.d/00-early.conf", '[crio.runtime]\ndefault_capabilities = ["KILL"]\n'),
                    ("/etc/crio/crio.conf.d/default_capabilities.conf", WRITEUP_DROPIN))
    assert shadowing(files, "/etc/crio/crio.conf.d/default_capabilities.conf", [OPT]) == {}


def test_shadowing_before_the_dropin_exists():
    # first run: our file is not written yet; what matters is where it will sort
    files = _parsed(("/etc/crio/crio.conf", CRIO_CONF),
                    ("/etc/crio/crio.conf.d/10-crio.conf", '[crio.runtime]\ndefault_capabilities = ["KILL"]\n'),
                    ("/etc/crio/crio.conf.d/99-site.conf", '[crio.runtime]\ndefault_capabilities = ["KILL"]\n'))
    assert shadowing(files, "/etc/crio/crio.conf.d/50-caps.conf", [OPT]) == {
        OPT: ["/etc/crio/crio.conf.d/99-site.conf"]}


def test_dotted_key_and_inline_table_count_as_setting():
    files = _parsed(("/d/a.conf", WRITEUP_DROPIN),
                    ("/d/b.conf", 'crio.runtime.default_capabilities = ["KILL"]\n'),
                    ("/d/c.conf", 'crio = { runtime = { default_capabilities = [] } }\n'))
    assert shadowing(files, "/d/a.conf", [OPT]) == {OPT: ["/d/b.conf", "/d/c.conf"]}


# ---------------------------------------------------------------- module

class FakeCrio:
    """Stands in for run_command: records argv, answers like crio."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append(list(args))
        return self.answers.pop(0)


def _run(monkeypatch, capsys, args, answers):
    fake = FakeCrio(answers)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake)
    monkeypatch.setattr(crio_config_info.time, "sleep", lambda s: None)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            crio_config_info.main()
    return exc.value.code, json.loads(capsys.readouterr().out), fake


def test_module_daemon_source(monkeypatch, capsys, tmp_path):
    conf, confd = _tree(tmp_path, {"crio.conf": CRIO_CONF, "crio.conf.d/default_capabilities.conf": WRITEUP_DROPIN,
                                   "crio.conf.d/zz.conf": '[crio.runtime]\ndefault_capabilities = ["KILL"]\n'})
    code, out, fake = _run(monkeypatch, capsys, {
        "config_path": conf, "config_dir": confd, "crio_bin": "/usr/bin/crio",
        "dropin": "default_capabilities.conf", "options": [OPT], "_ansible_check_mode": True,
    }, [(1, "", "connect: no such file or directory"), (0, DAEMON_OUTPUT, "")])
    assert code == 0
    assert out["changed"] is False
    assert fake.calls == [["/usr/bin/crio", "status", "--socket", "/var/run/crio/crio.sock", "config"]] * 2
    assert out["source"] == "daemon"
    assert "NET_RAW" in out["default_capabilities"]
    assert out["pause_image"] == "registry.k8s.io/pause:3.10"
    assert out["origin"]["default_capabilities"] == confd + "/zz.conf"
    assert out["origin"]["pause_image"] == conf
    assert out["shadowed"] == {OPT: [confd + "/zz.conf"]}
    assert out["files"] == [conf, confd + "/default_capabilities.conf", confd + "/zz.conf"]
    assert out["checksums"][confd + "/default_capabilities.conf"] == hashlib.sha1(WRITEUP_DROPIN.encode()).hexdigest()
    assert out["config"]["crio"]["runtime"]["runtimes"]["crun"]["allowed_annotations"] == [
        "io.containers.trace-syscall"]


def test_module_daemon_down_fails_with_crio_error(monkeypatch, capsys, tmp_path):
    conf, confd = _tree(tmp_path, {"crio.conf": CRIO_CONF})
    err = 'Get "http://%2Fvar%2Frun%2Fcrio%2Fcrio.sock/config": dial unix /var/run/crio/crio.sock: connect: refused'
    code, out, _fake = _run(monkeypatch, capsys, {
        "config_path": conf, "config_dir": confd, "crio_bin": "/usr/bin/crio", "timeout": 0,
    }, [(1, "", err)])
    assert code == 1
    assert out["msg"] == ("crio did not report its effective configuration: `/usr/bin/crio status --socket "
                          "/var/run/crio/crio.sock config` exited 1 within 0s: " + err)


def test_module_files_source_and_bad_file(monkeypatch, capsys, tmp_path):
    conf, confd = _tree(tmp_path, {"crio.conf": CRIO_CONF, "crio.conf.d/bad.conf": "[crio.runtime\n"})
    code, out, fake = _run(monkeypatch, capsys, {
        "config_path": conf, "config_dir": confd, "crio_bin": "/usr/bin/crio", "source": "files",
    }, [(0, CONFIG_OUTPUT, "")])
    assert code == 0
    assert fake.calls == [["/usr/bin/crio", "--config", conf, "--config-dir", confd, "config"]]
    assert out["default_capabilities"] == ["CHOWN", "NET_RAW"]
    assert out["cgroup_manager"] == "systemd"
    assert [e["path"] for e in out["file_errors"]] == [confd + "/bad.conf"]


def test_module_files_source_refused(monkeypatch, capsys, tmp_path):
    conf, confd = _tree(tmp_path, {"crio.conf": CRIO_CONF})
    code, out, _fake = _run(monkeypatch, capsys, {
        "config_path": conf, "config_dir": confd, "crio_bin": "/usr/bin/crio", "source": "files",
    }, [(1, "", "validating runtime config: invalid capabilities: CAP_NET_PING")])
    assert code == 1
    assert out["msg"].endswith("crio refuses its configuration files: "
                               "validating runtime config: invalid capabilities: CAP_NET_PING")


def test_module_source_none_runs_nothing(monkeypatch, capsys, tmp_path):
    conf, confd = _tree(tmp_path, {"crio.conf": CRIO_CONF})
    code, out, fake = _run(monkeypatch, capsys, {
        "config_path": conf, "config_dir": confd, "source": "none",
        "dropin": "default_capabilities.conf", "options": [OPT]}, [])
    assert code == 0
    assert fake.calls == []
    assert out["default_capabilities"] is None
    assert out["origin"]["default_capabilities"] == conf
    assert out["shadowed"] == {}
