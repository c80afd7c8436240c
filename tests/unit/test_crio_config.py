"""CRI-O configuration logic: TOML reading, drop-in order, origins, shadowing,
and the crio_config_info module against a crio command faked at run_command.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import jinja2

import pytest
from ansible.module_utils import basic
from ansible.module_utils.kubelab_crio import (
    BUILTIN,
    BUILTIN_VALUES,
    TomlError,
    compute_origins,
    config_files,
    explain,
    file_values,
    files_from_daemon_log,
    headline,
    parse_crio_config_output,
    parse_toml,
    shadowing,
    stale_options,
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

DAEMON_LOG = """\
time="2026-12-02T06:00:00Z" level=info msg="Updating config from single file: %s"
time="2026-12-02T06:00:00Z" level=info msg="Updating config from drop-in file: %s
time="2026-12-02T06:00:00Z" level=info msg="Updating config from drop-in file: %s"
time="2026-12-02T06:00:00Z" level=info msg="Starting CRI-O, version: 1.35.0"
"""


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
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
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
    }, [(1, "", "connect: no such file or directory"), (0, DAEMON_OUTPUT, ""),
        (0, "InvocationID=abc123\nActiveEnterTimestamp=Wed 2026-12-02 06:00:00 UTC\n", ""),
        (0, DAEMON_LOG % (conf, conf + "\" ", confd + "/default_capabilities.conf"), "")])
    assert code == 0
    assert out["changed"] is False
    assert fake.calls[:2] == [["/usr/bin/crio", "status", "--socket", "/var/run/crio/crio.sock", "config"]] * 2
    assert fake.calls[3][-1] == "_SYSTEMD_INVOCATION_ID=abc123"
    # zz.conf (written after crio started) says KILL, the daemon still uses its list: stale
    assert out["stale"] == ["default_capabilities"]
    assert out["file_values"]["default_capabilities"] == ["KILL"]
    assert out["daemon"] == {"started": "Wed 2026-12-02 06:00:00 UTC",
                             "files": [conf, confd + "/default_capabilities.conf"]}
    assert out["explain"]["default_capabilities"] == (
        "the running crio uses default_capabilities = [CHOWN, DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID, SETPCAP, "
        "NET_BIND_SERVICE, KILL, NET_RAW], loaded when it started (Wed 2026-12-02 06:00:00 UTC, reading %s, %s); "
        "the files now give [KILL] (set by %s); crio reads its files only when it starts: it needs a restart "
        "(systemctl restart crio) to use them" % (conf, confd + "/default_capabilities.conf", confd + "/zz.conf"))
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


# ---------------------------------------------------------------- CRI-O 1.35: no crio.conf

ROOT = Path(__file__).resolve().parents[2]
STANDIN_CRIO = ROOT / "molecule" / "resources" / "standins" / "pkgs" / "cri-o" / "root" / "usr" / "bin" / "crio"
STANDIN_DROPIN = STANDIN_CRIO.parents[2] / "etc" / "crio" / "crio.conf.d" / "10-crio.conf"


def test_module_files_source_without_crio_conf_passes_no_missing_config(monkeypatch, capsys, tmp_path):
    conf, confd = _tree(tmp_path, {"crio.conf.d/10-crio.conf": STANDIN_DROPIN.read_text()})
    code, out, fake = _run(monkeypatch, capsys, {
        "config_path": conf, "config_dir": confd, "crio_bin": "/usr/bin/crio", "source": "files",
    }, [(0, CONFIG_OUTPUT, "")])
    assert code == 0
    assert fake.calls == [["/usr/bin/crio", "--config", "", "--config-dir", confd, "config"]]
    assert out["files"] == [confd + "/10-crio.conf"]  # the missing crio.conf is not read either


def test_module_files_source_against_the_standin_with_cri_o_1_35_layout(capsys, tmp_path):
    """No fake: the stand-in crio (which refuses a missing explicit --config as crio 1.35 does)."""
    conf, confd = _tree(tmp_path, {"crio.conf.d/10-crio.conf": STANDIN_DROPIN.read_text(),
                                   "crio.conf.d/default_capabilities.conf": WRITEUP_DROPIN})
    with patch_module_args({"config_path": conf, "config_dir": confd, "crio_bin": str(STANDIN_CRIO),
                            "source": "files"}):
        with pytest.raises(SystemExit) as exc:
            crio_config_info.main()
    out = json.loads(capsys.readouterr().out)
    assert exc.value.code == 0, out.get("msg")
    assert out["default_capabilities"][-1] == "NET_RAW"
    assert out["origin"]["default_capabilities"] == confd + "/default_capabilities.conf"
    assert out["pause_image"] == BUILTIN_VALUES["crio.image.pause_image"]
    assert out["stale"] == []  # files source: no daemon to compare


# ---------------------------------------------------------------- daemon vs files

LAB = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL",
       "NET_RAW"]


def test_file_values_last_file_or_builtin():
    files = _parsed(("/etc/crio/crio.conf.d/10-crio.conf", '[crio.runtime]\ndefault_runtime = "crun"\n'))
    assert file_values(files) == {"default_capabilities": BUILTIN_VALUES["crio.runtime.default_capabilities"],
                                  "cgroup_manager": "systemd", "pause_image": "registry.k8s.io/pause:3.10.1"}
    files += _parsed(("/etc/crio/crio.conf.d/default_capabilities.conf", WRITEUP_DROPIN))
    assert file_values(files)["default_capabilities"][-1] == "NET_RAW"


@pytest.mark.parametrize(("daemon", "files", "stale"), [
    (LAB, LAB, []),
    (list(reversed(LAB)), [c.lower() for c in LAB], []),  # order and case do not matter to crio
    (LAB[:-1], LAB, ["default_capabilities"]),  # drop-in written, crio not restarted
    (LAB, LAB[:-1], ["default_capabilities"]),  # overriding drop-in removed, crio not restarted
])
def test_stale_decision(daemon, files, stale):
    base = {"cgroup_manager": "systemd", "pause_image": "p"}
    assert stale_options(dict(base, default_capabilities=daemon), dict(base, default_capabilities=files)) == stale


def test_stale_decision_without_daemon_values():
    assert stale_options(None, {"default_capabilities": LAB}) == []
    # source=none / files: nothing the daemon said
    assert stale_options({"default_capabilities": None}, {"default_capabilities": LAB}) == []


def test_explain_agreeing_and_mismatch():
    assert explain("default_capabilities", LAB, None, LAB, "/d/default_capabilities.conf") == (
        "set by /d/default_capabilities.conf")
    # the issue's case: an overriding drop-in (without NET_RAW) was removed, crio still runs with it
    message = explain("default_capabilities", LAB[:-1],
                      {"started": "Wed 2026-12-02 06:00:00 UTC",
                       "files": ["/d/10-crio.conf", "/d/default_capabilities.conf", "/d/zz-override.conf"]},
                      LAB, "/d/default_capabilities.conf")
    assert message == (
        "the running crio uses default_capabilities = [CHOWN, DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID, SETPCAP, "
        "NET_BIND_SERVICE, KILL], loaded when it started (Wed 2026-12-02 06:00:00 UTC, reading /d/10-crio.conf, "
        "/d/default_capabilities.conf, /d/zz-override.conf); the files now give [CHOWN, DAC_OVERRIDE, FSETID, FOWNER, "
        "SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, KILL, NET_RAW] (set by /d/default_capabilities.conf); crio reads "
        "its files only when it starts: it needs a restart (systemctl restart crio) to use them")
    unknown = explain("default_capabilities", LAB[:-1], {"started": None, "files": None}, LAB, "/d/x.conf")
    assert "an unknown time, it did not say which files it read" in unknown
    assert "needs a restart" in unknown


def test_daemon_log_parsed_from_what_crio_logs(tmp_path):
    """The files list comes from crio's own load lines (the stand-in logs them as crio 1.35 does)."""
    confd = tmp_path / "crio.conf.d"
    confd.mkdir()
    (confd / "10-crio.conf").write_text(STANDIN_DROPIN.read_text())
    (confd / "default_capabilities.conf").write_text(WRITEUP_DROPIN)
    env = dict(os.environ)
    env.pop("CONTAINER_CONFIG", None)
    missing = tmp_path / "crio.conf"
    # the default main file, absent: crio logs it, then skips it
    script = ("import runpy, sys; sys.argv = ['crio', '-d', %r, 'config']; "
              "from importlib.machinery import SourceFileLoader; "
              "m = SourceFileLoader('c', %r).load_module(); m.DEFAULT_CONFIG = %r; sys.exit(m.main())"
              % (str(confd), str(STANDIN_CRIO), str(missing)))
    result = subprocess.run([sys.executable, "-B", "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "Skipping not-existing config file" in result.stderr
    assert files_from_daemon_log(result.stderr) == [str(confd / "10-crio.conf"),
                                                     str(confd / "default_capabilities.conf")]


# ---------------------------------------------------------------- the drop-in, escaped for TOML

_FILTERS_SPEC = importlib.util.spec_from_file_location("crio_filters", ROOT / "roles" / "crio" / "filter_plugins"
                                                       / "crio.py")
crio_filters = importlib.util.module_from_spec(_FILTERS_SPEC)
_FILTERS_SPEC.loader.exec_module(crio_filters)
TEMPLATE = ROOT / "roles" / "crio" / "templates" / "default_capabilities.conf.j2"


def render_dropin(caps):
    # as Ansible's template module: trim_blocks on
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True)
    env.filters.update(crio_filters.FilterModule().filters())
    return env.from_string(TEMPLATE.read_text()).render(crio_default_capabilities=caps)


def test_dropin_value_with_quotes_stays_one_string():
    # issue 14's host_var: pasted, it formed valid TOML with SYS_ADMIN as a third entry
    odd = 'NET_RAW", "SYS_ADMIN'
    text = render_dropin(["CHOWN", odd])
    assert tomllib.loads(text)["crio"]["runtime"]["default_capabilities"] == ["CHOWN", odd]
    assert "SYS_ADMIN" not in tomllib.loads(text)["crio"]["runtime"]["default_capabilities"]


def test_dropin_with_the_odd_value_is_refused_by_crio(tmp_path):
    confd = tmp_path / "crio.conf.d"
    confd.mkdir()
    (confd / "10-crio.conf").write_text(STANDIN_DROPIN.read_text())
    (confd / "default_capabilities.conf").write_text(render_dropin(["CHOWN", 'NET_RAW", "SYS_ADMIN']))
    result = subprocess.run([sys.executable, "-B", str(STANDIN_CRIO), "-c", "", "-d", str(confd), "config"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "unknown capability" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("value", ['a"b', "back\\slash", "tab\there", "new\nline", "del\x7f", "nul\x00",
                                   "ünïcode", "emoji \U0001F600", "\u2028sep", "'single'"])
def test_toml_string_round_trips(value):
    rendered = crio_filters.crio_toml_string(value)
    assert tomllib.loads("v = %s\n" % rendered)["v"] == value
    assert "\n" not in rendered and "\x7f" not in rendered


def test_toml_string_refuses_what_toml_cannot_hold():
    with pytest.raises(crio_filters.AnsibleFilterError, match="lone surrogate"):
        crio_filters.crio_toml_string("\ud800")
    with pytest.raises(crio_filters.AnsibleFilterError, match="expects a string"):
        crio_filters.crio_toml_string(["NET_RAW"])


def test_dropin_of_the_writeup_list_is_unchanged_in_shape():
    text = render_dropin(LAB)
    assert tomllib.loads(text)["crio"]["runtime"]["default_capabilities"] == LAB
    assert '\n  "NET_RAW",\n]' in text


# ---------------------------------------------------------------- the role's decisions (its vars, Ansible templating)

def role_templar(os_file, probe_lines, **extra):
    import yaml
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    variables = {}
    for rel in ("defaults/main.yml", "vars/main.yml", "vars/" + os_file):
        for key, value in yaml.safe_load((ROOT / "roles" / "crio" / rel).read_text()).items():
            variables[key] = trust_as_template(value) if isinstance(value, str) else value
    variables.update({"kubelab_kubernetes_version": "1.35", "__crio_probe": {"stdout_lines": probe_lines}})
    variables.update(extra)
    templar = Templar(loader=DataLoader(), variables=variables)
    return lambda expr: templar.template(trust_as_template("{{ (%s) | bool }}" % expr)) is True


RUNNING = ["pkg=1.35.0-1", "enabled=enabled", "active=active"]


@pytest.mark.parametrize(("files", "stale"), [
    ({"source": "daemon", "stale": []}, False),  # converged: no restart (changed=0)
    ({"source": "daemon", "stale": ["default_capabilities"]}, True),  # files right, daemon older: restart
    ({"source": "daemon", "stale": ["pause_image"]}, False),  # not what this role manages
    ({"source": "none", "stale": []}, False),  # crio not running: it is started, not restarted
])
def test_role_restarts_crio_only_when_the_daemon_is_older_than_its_files(files, stale):
    truth = role_templar("Debian-12.yml", RUNNING, __crio_files=files)
    assert truth("__crio_daemon_stale") is stale
    assert truth("__crio_restart_pending") is stale  # nothing else changed in this run


def test_role_restart_pending_after_a_dropin_change():
    truth = role_templar("Debian-12.yml", RUNNING, __crio_files={"source": "daemon", "stale": []},
                         __crio_dropin={"changed": True})
    assert truth("__crio_dropin_changed")
    assert truth("__crio_restart_pending")


def test_role_installs_container_selinux_on_el_only():
    el = role_templar("RedHat.yml", RUNNING)
    assert el("crio_selinux_package == 'container-selinux'")
    assert not el("__crio_selinux_ok")  # the probe found no container-selinux: install it
    assert role_templar("RedHat.yml", RUNNING + ["selinux_pkg=2.229.0-1"])("__crio_selinux_ok")
    assert role_templar("RedHat.yml", RUNNING, crio_selinux_package="")("__crio_selinux_ok")
    debian = role_templar("Debian-12.yml", RUNNING)
    assert debian("crio_selinux_package == ''")
    assert debian("__crio_selinux_ok")


def test_repository_wording_follows_cri_o_packaging_readme():
    # cri-o/packaging README: "We switched from https://pkgs.k8s.io/addons:/cri-o to a new subproject
    # https://download.opensuse.org/repositories/isv:/cri-o"
    defaults = (ROOT / "roles" / "crio" / "defaults" / "main.yml").read_text()
    internals = (ROOT / "docs" / "internals.md").read_text()
    assert "crio_repo_base_url: https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v" in defaults
    for text in (defaults, internals):
        assert "newer mirror" not in text
        assert "older\n" in text or "older " in text


# ---------------------------------------------------------------- restart.yml and apply.yml, evaluated

def _tasks(name):
    import yaml
    return yaml.safe_load((ROOT / "roles" / "crio" / "tasks" / name).read_text())


def _render(text, **variables):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(text))


def test_restart_reports_crio_s_own_error_without_a_crio_conf(tmp_path):
    """The handler's "Read crio's error" script, run with the stand-in crio on a CRI-O 1.35 layout."""
    (task,) = [t for t in _tasks("restart.yml")[1]["block"] if t["name"] == "Read crio's error"]
    confd = tmp_path / "crio.conf.d"
    confd.mkdir()
    (confd / "10-crio.conf").write_text(STANDIN_DROPIN.read_text())
    (confd / "default_capabilities.conf").write_text(render_dropin(["CHOWN", 'NET_RAW", "SYS_ADMIN']))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "crio").write_text("#!/bin/sh\nexec %s -B %s \"$@\"\n" % (sys.executable, STANDIN_CRIO))
    (bindir / "crio").chmod(0o755)
    (bindir / "journalctl").write_text("#!/bin/sh\nexit 1\n")  # no journal here: crio config's stderr is the error
    (bindir / "journalctl").chmod(0o755)
    script = _render(task["ansible.builtin.shell"]["cmd"], crio_config_file=str(tmp_path / "crio.conf"),
                     crio_config_dir=str(confd))
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]))
    result = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True, env=env)
    assert 'unknown capability' in result.stdout, result.stdout + result.stderr
    assert "no such file or directory" not in result.stdout  # not the missing crio.conf
    assert "level=info" not in result.stdout


def _rollback_block():
    (block,) = [t for t in _tasks("apply.yml") if t["name"].startswith("Restore the previous drop-in")]
    return block


@pytest.mark.parametrize(("changed", "reported", "rollback"), [
    (True, LAB + ["SYS_ADMIN"], True),  # new drop-in, crio started, but with a capability nobody asked for
    (True, LAB[:-1], True),  # new drop-in, NET_RAW missing
    (True, list(reversed(LAB)), False),  # the same set
    (False, LAB + ["SYS_ADMIN"], False),  # no new drop-in: nothing to restore (the final check fails)
])
def test_failed_effective_check_restores_the_previous_dropin(changed, reported, rollback):
    block = _rollback_block()
    variables = {"crio_default_capabilities": LAB, "__crio_dropin": {"changed": changed},
                 "__crio_effective_now": {"default_capabilities": reported, "changed": False},
                 "__crio_dropin_changed": changed}
    variables.update({k: _render(v, **variables) for k, v in block["vars"].items()})
    assert all(_render("{{ (%s) | bool }}" % cond, **variables) is True for cond in block["when"]) is rollback
    steps = [t.get("ansible.builtin.include_tasks") or next(iter(k for k in t if k.startswith("ansible.")))
             for t in block["block"]]
    assert steps == ["restore.yml", "ansible.builtin.fail"]  # restore (and restart crio), then fail


def test_restore_puts_the_previous_dropin_back_then_restarts_crio():
    names = [(t["name"], next(k for k in t if k.startswith("ansible."))) for t in _tasks("restore.yml")]
    assert names[-1] == ("Start crio with the previous configuration", "ansible.builtin.systemd_service")
    assert _tasks("restore.yml")[-1]["ansible.builtin.systemd_service"]["state"] == "restarted"
    assert [n for n, _m in names[:-1]] == ["Check for the previous drop-in", "Restore the previous drop-in",
                                          "Remove the new drop-in (there was none before)"]
