"""node_prep lets the pod network through firewalld (issue 13, item 3).

firewalld 0.9 (EL8) ends its forward chain with ``reject with icmpx
admin-prohibited`` and has no intra-zone forwarding, so open ports do not let
forwarded pod traffic through. The role binds the pod network and flannel's
interfaces to the ``trusted`` zone where firewalld runs. Here: the defaults,
the checks of the values, and the probe, rendered as in a play and run with
bash against a firewall-cmd that prints what firewalld 0.9.11's prints
(src/firewall/command.py print_zone_policy_info: ``  interfaces: ...``,
``  sources: ...``).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "node_prep"


def load(path):
    return yaml.safe_load(path.read_text())


def templar(**overrides):
    variables = {}
    for source in (ROOT / "roles" / "kubelab" / "defaults" / "main.yml", ROOT / "roles" / "kubelab" / "vars" / "main.yml",
                   ROLE / "defaults" / "main.yml", ROLE / "vars" / "main.yml"):
        for key, val in load(source).items():
            if key == "kubelab_node_ip":
                continue
            variables[key] = trust_as_template(val) if isinstance(val, str) else val
    variables.update({"inventory_hostname": "w1", "kubelab_node_container": True})
    variables.update(overrides)
    return Templar(loader=DataLoader(), variables=variables)


def value(t, expr):
    return t.template(trust_as_template("{{ %s }}" % expr))


def test_defaults_trust_the_inventory_pod_network_and_flannel_interfaces():
    t = templar()
    assert value(t, "node_prep_firewalld_trusted_zone") == "trusted"
    assert value(t, "node_prep_firewalld_trusted_sources") == ["10.244.0.0/16"]
    assert value(t, "node_prep_firewalld_trusted_sources") == [load(ROOT / "roles/kubelab/defaults/main.yml")[
        "kubelab_pod_network_cidr"]]
    assert value(templar(kubelab_pod_network_cidr="10.123.0.0/16"), "node_prep_firewalld_trusted_sources") == [
        "10.123.0.0/16"]
    assert value(t, "node_prep_firewalld_trusted_interfaces") == ["cni0", "flannel.1"]
    assert value(t, "__node_prep_firewalld_problems") == []
    specs = load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    for name in ("node_prep_firewalld_trusted_zone", "node_prep_firewalld_trusted_sources",
                 "node_prep_firewalld_trusted_interfaces"):
        assert name in specs and name in (ROLE / "README.md").read_text(), name


def test_the_converge_task_binds_them_to_the_zone():
    task = next(t for t in load(ROLE / "tasks" / "converge.yml") if "kubelab_firewalld" in t
                and "sources" in t["kubelab_firewalld"])
    assert task["kubelab_firewalld"] == {"zone": "{{ node_prep_firewalld_trusted_zone }}",
                                         "sources": "{{ node_prep_firewalld_trusted_sources }}",
                                         "interfaces": "{{ node_prep_firewalld_trusted_interfaces }}"}
    assert task["when"] == "__node_prep_need_firewalld_trusted | bool"


@pytest.mark.parametrize("var,val,ok", [
    ("node_prep_firewalld_trusted_sources", ["10.244.0.0/16", "192.0.2.7/32", "fd00:10:244::/48"], True),
    ("node_prep_firewalld_trusted_sources", [], True),
    ("node_prep_firewalld_trusted_sources", ["10.244.1.0/16"], False),  # host bits
    ("node_prep_firewalld_trusted_sources", ["10.244.0.0/33"], False),
    ("node_prep_firewalld_trusted_sources", ["10.256.0.0/16"], False),
    ("node_prep_firewalld_trusted_sources", ["10.244.0.0"], False),  # no prefix length
    ("node_prep_firewalld_trusted_sources", ["pods"], False),
    ("node_prep_firewalld_trusted_interfaces", ["cni0", "flannel.1", "veth+"], True),
    ("node_prep_firewalld_trusted_interfaces", ["flannel.1-too-long"], False),
    ("node_prep_firewalld_trusted_interfaces", ["cni 0"], False),
    ("node_prep_firewalld_trusted_interfaces", ["eth0:1"], False),
    ("node_prep_firewalld_trusted_interfaces", [".."], False),
    ("node_prep_firewalld_trusted_interfaces", ["ve+th"], False),
])
def test_values_are_checked_with_host_variable_value_and_what_is_allowed(var, val, ok):
    problems = value(templar(**{var: val}), "__node_prep_firewalld_problems")
    if ok:
        assert problems == []
        return
    assert len(problems) == 1
    assert problems[0].startswith('w1: %s: "%s" is not ' % (var, val[0]))
    assert "(allowed: " in problems[0]


def test_the_check_runs_before_the_probe():
    main = load(ROLE / "tasks" / "main.yml")
    assert "ansible.builtin.fail" in main[0]
    assert main[0]["when"] == "__node_prep_firewalld_problems | length > 0"
    assert "ansible.builtin.raw" in main[1]


FAKE_FIREWALL_CMD = """#!/bin/bash
# firewall-cmd --[permanent] --zone=Z --list-all, printed as firewalld 0.9.11 does
conf=runtime; zone=""
for a in "$@"; do
  case "$a" in --permanent) conf=permanent;; --zone=*) zone="${a#--zone=}";; esac
done
if [ "${*: -1}" = --list-ports ]; then cat "$FAKE_FW/$conf.ports" 2>/dev/null; echo; exit 0; fi
[ "${*: -1}" = --list-all ] || exit 2
[ -n "$zone" ] || exit 2
echo "$zone"
echo "  target: ACCEPT"
echo "  icmp-block-inversion: no"
echo "  interfaces: $(cat "$FAKE_FW/$conf.$zone.interfaces" 2>/dev/null)"
echo "  sources: $(cat "$FAKE_FW/$conf.$zone.sources" 2>/dev/null)"
echo "  services: "
echo "  ports: "
echo "  protocols: "
echo "  masquerade: no"
echo "  forward-ports: "
echo "  source-ports: 10.1.1.1/32"
echo "  icmp-blocks: "
echo "  rich rules: "
"""


def _exe(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def probe_state(tmp_path, files):
    """Run the role's probe (rendered as in a play) with firewalld 'active' and FILES as its state."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _exe(bin_dir / "firewall-cmd", FAKE_FIREWALL_CMD)
    _exe(bin_dir / "systemctl", "#!/bin/sh\necho active\n")
    _exe(bin_dir / "getenforce", "#!/bin/sh\necho Disabled\n")
    fw = tmp_path / "fw"
    fw.mkdir()
    for name, text in files.items():
        (fw / name).write_text(text)
    raw = load(ROLE / "tasks" / "main.yml")[1]["ansible.builtin.raw"]
    script = templar(node_prep_modules_file=str(tmp_path / "m.conf"),
                     node_prep_sysctl_file=str(tmp_path / "s.conf")).template(trust_as_template(raw))
    env = {"PATH": "%s:%s" % (bin_dir, os.environ["PATH"]), "FAKE_FW": str(fw)}
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30, check=True).stdout
    lines = [line for line in out.splitlines() if "=" in line]
    state = dict(line.split("=", 1) for line in lines)
    need = value(templar(__node_prep_state=state), "__node_prep_need_firewalld_trusted")
    return state, need in (True, "True")


def test_probe_reads_the_trusted_zone_and_a_converged_node_needs_nothing(tmp_path):
    state, need = probe_state(tmp_path, {
        "permanent.trusted.sources": "10.244.0.0/16", "runtime.trusted.sources": "10.244.0.0/16",
        "permanent.trusted.interfaces": "cni0 flannel.1", "runtime.trusted.interfaces": "flannel.1 cni0"})
    assert state["fwt_permanent_sources"] == "10.244.0.0/16"
    assert state["fwt_runtime_interfaces"] == "flannel.1 cni0"
    assert need is False


@pytest.mark.parametrize("missing", ["permanent.trusted.sources", "runtime.trusted.sources",
                                     "permanent.trusted.interfaces", "runtime.trusted.interfaces"])
def test_probe_sees_what_is_missing_in_either_configuration(tmp_path, missing):
    files = {"permanent.trusted.sources": "10.244.0.0/16", "runtime.trusted.sources": "10.244.0.0/16",
             "permanent.trusted.interfaces": "cni0 flannel.1", "runtime.trusted.interfaces": "cni0 flannel.1"}
    del files[missing]
    _state, need = probe_state(tmp_path, files)
    assert need is True
