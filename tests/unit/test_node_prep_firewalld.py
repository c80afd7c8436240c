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
    ("node_prep_firewalld_trusted_sources", ["10.244.0.0"], True),  # one address: firewalld and the module take it
    ("node_prep_firewalld_trusted_sources", ["10.244.1.0/16"], False),  # host bits
    ("node_prep_firewalld_trusted_sources", ["10.244.0.0/33"], False),
    ("node_prep_firewalld_trusted_sources", ["10.256.0.0/16"], False),
    ("node_prep_firewalld_trusted_sources", ["fd00:10:244::1/48"], False),  # IPv6 host bits
    ("node_prep_firewalld_trusted_sources", ["pods"], False),
    ("node_prep_firewalld_trusted_interfaces", ["cni0", "flannel.1", "veth+"], True),
    ("node_prep_firewalld_trusted_interfaces", ["flannel.1-too-long"], False),
    ("node_prep_firewalld_trusted_interfaces", ["cni 0"], False),
    ("node_prep_firewalld_trusted_interfaces", ["eth0:1"], False),
    ("node_prep_firewalld_trusted_interfaces", [".."], False),
    ("node_prep_firewalld_trusted_interfaces", ["ve+th"], False),
])
def test_the_validator_and_the_module_check_them_alike(var, val, ok):
    """One function (module_utils/kubelab_validate.py) for preflight's validator and kubelab_firewalld."""
    import kubelab_firewalld
    from ansible.module_utils.kubelab_validate import RULES

    tails = RULES[var](val, {})
    module = kubelab_firewalld.problems(*((val, []) if var.endswith("sources") else ([], val)))
    if ok:
        assert tails == [] and module == []
        return
    assert len(tails) == 1
    assert tails[0].startswith("%r is not " % val[0])
    assert "allowed: " in tails[0]
    assert module == ["%s: %s" % ("sources" if var.endswith("sources") else "interfaces", tails[0])]


def test_node_prep_keeps_no_jinja_copy_of_the_check():
    assert "__node_prep_firewalld_problems" not in (ROLE / "vars" / "main.yml").read_text()
    assert "__node_prep_firewalld_problems" not in (ROLE / "tasks" / "main.yml").read_text()
    assert "ansible.builtin.raw" in load(ROLE / "tasks" / "main.yml")[0]


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
    raw = load(ROLE / "tasks" / "main.yml")[0]["ansible.builtin.raw"]
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
