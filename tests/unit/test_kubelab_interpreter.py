"""The per-node Python choice of the preflight role: the OS vars files
(roles/preflight/vars/<OS>.yml), the probe's candidate paths, the decision
(module_utils/kubelab_interpreter.py) and the module that applies it
(library/kubelab_preflight_plan.py), for the probe outputs of CentOS Linux 8.5,
Rocky 8.10, Rocky 9 and Debian 12.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible.module_utils.kubelab_interpreter import choose, found_paths, os_keys, probe_paths

pytestmark = pytest.mark.unit

ROLE = Path(__file__).resolve().parents[2] / "roles" / "preflight"

OS_RELEASE = {
    "centos85": 'NAME="CentOS Linux"\nVERSION="8"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="8"\n'
                'PLATFORM_ID="platform:el8"\nPRETTY_NAME="CentOS Linux 8"\n',
    "rocky810": 'NAME="Rocky Linux"\nVERSION="8.10 (Green Obsidian)"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
                'VERSION_ID="8.10"\nPLATFORM_ID="platform:el8"\n',
    "alma810": 'NAME="AlmaLinux"\nVERSION="8.10 (Cerulean Leopard)"\nID="almalinux"\nID_LIKE="rhel centos fedora"\n'
               'VERSION_ID="8.10"\n',
    "rocky95": 'NAME="Rocky Linux"\nVERSION="9.5 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
               'VERSION_ID="9.5"\nPLATFORM_ID="platform:el9"\n',
    "debian12": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                'VERSION="12 (bookworm)"\nID=debian\n',
}
PLATFORM = {  # what kubelab_validate returns for each (family, major, id)
    "centos85": ("RedHat", "8", "centos"),
    "rocky810": ("RedHat", "8", "rocky"),
    "alma810": ("RedHat", "8", "almalinux"),
    "rocky95": ("RedHat", "9", "rocky"),
    "debian12": ("Debian", "12", "debian"),
}
KERNEL = {"centos85": "4.18.0-348.7.1.el8_5.x86_64", "rocky810": "4.18.0-553.el8_10.x86_64",
          "alma810": "4.18.0-553.el8_10.x86_64", "rocky95": "5.14.0-503.14.1.el9_5.x86_64",
          "debian12": "6.1.0-28-amd64"}


def probe(os_name, found=(), cgroup=1, vault=False):
    """The probe's stdout as the role's raw task prints it on such a node."""
    lines = [OS_RELEASE[os_name].rstrip("\n"), "kubelab_kernel=" + KERNEL[os_name]]
    lines += ["kubelab_python_found=" + p for p in found]
    if vault:
        lines.append("kubelab_centos_vault=needed")
    lines += ["kubelab_container=no", "kubelab_cgroup=%d" % cgroup, "kubelab_nodename=n1", "kubelab_route_src=192.0.2.5"]
    return "\r\n".join(lines) + "\r\n"  # raw output comes with CRLF


def os_vars(os_name):
    """The vars file the role's first_found picks for the node."""
    family, major, ident = PLATFORM[os_name]
    for key in os_keys(family, major, ident):
        path = ROLE / "vars" / (key + ".yml")
        if path.exists():
            return key, yaml.safe_load(path.read_text())["__preflight_os_python"]
    raise AssertionError("no vars file for %s" % os_name)


def decide(os_name, found, overrides=None, interpreter=None):
    family, major, ident = PLATFORM[os_name]
    _, defaults = os_vars(os_name)
    return choose(defaults, found_paths(probe(os_name, found)), os_keys(family, major, ident), overrides, interpreter)


# -------------------------------------------------------------- per OS, as shipped

@pytest.mark.parametrize("os_name,vars_file", [("centos85", "CentOS-8"), ("rocky810", "RedHat-8"),
                                               ("alma810", "RedHat-8"), ("rocky95", "RedHat-9"),
                                               ("debian12", "Debian")])
def test_vars_file_per_os(os_name, vars_file):
    assert os_vars(os_name)[0] == vars_file


def test_centos_85_installs_python39():
    fresh = decide("centos85", [])
    assert fresh == {"interpreter": "/usr/bin/python3.9", "present": False, "install": "python39", "installer": "dnf",
                     "source": "OS default", "candidates": ["/usr/bin/python3.9", "/usr/bin/python3.8"]}
    # python3.11 never existed on CentOS Linux 8: even when something left it there, 3.9 is not preferred to
    # it only by accident - the candidates of CentOS 8 do not name it
    assert "/usr/bin/python3.11" not in fresh["candidates"]
    assert decide("centos85", ["/usr/bin/python3.9"])["present"] is True
    assert decide("centos85", ["/usr/bin/python3.8"])["interpreter"] == "/usr/bin/python3.8"


@pytest.mark.parametrize("os_name", ["rocky810", "alma810"])
def test_el8_10_installs_python311(os_name):
    fresh = decide(os_name, [])
    assert (fresh["interpreter"], fresh["present"], fresh["install"]) == ("/usr/bin/python3.11", False, "python3.11")
    assert decide(os_name, ["/usr/bin/python3.11"])["install"] is None
    # an existing python3.9 (module python39) is used as it is: nothing installed
    assert decide(os_name, ["/usr/bin/python3.9"]) ["interpreter"] == "/usr/bin/python3.9"


def test_rocky9_uses_the_platform_python():
    chosen = decide("rocky95", ["/usr/bin/python3"])
    assert (chosen["interpreter"], chosen["present"], chosen["install"]) == ("/usr/bin/python3", True, None)
    # Rocky 9 has no python3.11 by default; it is not a candidate, so an installed one is not needed
    assert decide("rocky95", ["/usr/bin/python3", "/usr/bin/python3.11"])["interpreter"] == "/usr/bin/python3"


def test_debian12_uses_python3():
    assert decide("debian12", ["/usr/bin/python3"])["interpreter"] == "/usr/bin/python3"
    assert decide("debian12", [])["install"] == "python3"
    assert decide("debian12", [])["installer"] == "apt-get"


# -------------------------------------------------------------- overrides (molecule uses them)

def test_override_by_os_wins_for_that_os_only():
    overrides = {"RedHat-8": {"candidates": ["/opt/kubelab-el8-python/bin/python3"], "package": "kubelab-test-python"}}
    el8 = decide("rocky810", [], overrides)
    assert el8 == {"interpreter": "/opt/kubelab-el8-python/bin/python3", "present": False,
                   "install": "kubelab-test-python", "installer": "dnf", "source": "preflight_python_by_os[RedHat-8]",
                   "candidates": ["/opt/kubelab-el8-python/bin/python3"]}
    assert decide("rocky810", ["/opt/kubelab-el8-python/bin/python3"], overrides)["present"] is True
    assert decide("debian12", ["/usr/bin/python3"], overrides)["source"] == "OS default"
    assert decide("rocky95", ["/usr/bin/python3"], overrides)["interpreter"] == "/usr/bin/python3"
    # the most specific key wins
    both = dict(overrides, **{"Rocky-8": {"candidates": ["/usr/local/bin/python3.12"]}})
    assert decide("rocky810", [], both)["interpreter"] == "/usr/local/bin/python3.12"
    assert decide("rocky810", [], both)["install"] == "python3.11"  # package not overridden: the OS default


def test_interpreter_override_wins_and_installs_nothing():
    chosen = decide("centos85", [], interpreter="/opt/py/bin/python3")
    assert chosen["interpreter"] == "/opt/py/bin/python3" and chosen["install"] is None


def test_no_candidates_is_an_error():
    with pytest.raises(ValueError, match="no Python interpreter candidates"):
        choose({}, [], ["RedHat-7", "RedHat"])
    with pytest.raises(ValueError, match="no package is named"):
        choose({"candidates": ["/x"]}, [], [])


def test_os_keys_and_found_paths():
    assert os_keys("RedHat", "8", "rocky") == ["Rocky-8", "RedHat-8", "RedHat"]
    assert os_keys("RedHat", "8", "rhel") == ["RedHat-8", "RedHat"]
    assert os_keys("Debian", "12", "debian") == ["Debian-12", "Debian"]
    assert found_paths(probe("rocky810", ["/usr/bin/python3.11", "/usr/bin/python3.11"])) == ["/usr/bin/python3.11"]


# -------------------------------------------------------------- the role's own expressions

_PLUGINS = []


def _templar(variables):
    if not _PLUGINS:
        from ansible.plugins.loader import filter_loader, init_plugin_loader

        init_plugin_loader()  # the ansible.builtin plugins, as ansible-playbook sets them up
        filter_loader.add_directory(str(ROLE / "filter_plugins"))  # the role's own filters, as in a play with it
        _PLUGINS.append(True)
    return Templar(loader=DataLoader(), variables=variables)


def _role_vars():
    return yaml.safe_load((ROLE / "vars" / "main.yml").read_text())


def test_probe_tests_every_candidate_of_every_os():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    variables = dict(defaults, role_path=str(ROLE),
                     preflight_python_by_os={"RedHat-8": {"candidates": ["/opt/kubelab-el8-python/bin/python3"]}},
                     preflight_python_interpreter="/opt/host/python3")
    paths = _templar(variables).template(trust_as_template(_role_vars()["__preflight_python_probe_paths"]))
    every = []
    for f in sorted((ROLE / "vars").glob("*.yml")):
        every += (yaml.safe_load(f.read_text()) or {}).get("__preflight_os_python", {}).get("candidates", [])
    assert set(every) <= set(paths)
    assert "/opt/kubelab-el8-python/bin/python3" in paths and "/opt/host/python3" in paths
    assert len(paths) == len(set(paths))
    assert set(paths) == set(probe_paths([{"candidates": every}], variables["preflight_python_by_os"],
                                         ["/opt/host/python3"]))


def test_the_role_has_no_copy_of_the_os_tables():
    """Review item 14: roles/preflight/vars/main.yml carried Jinja copies of
    kubelab_interpreter's DISTRIBUTIONS / os_keys / probe_paths (which only
    the tests used). The role's expressions now call that code (filters)."""
    role_vars = _role_vars()
    assert "__preflight_distribution_names" not in role_vars
    text = (ROLE / "vars" / "main.yml").read_text()
    for distribution in ("CentOS", "Rocky", "AlmaLinux", "OracleLinux"):
        assert distribution + "\n" not in text and ": " + distribution not in text
    assert "| preflight_os_keys" in role_vars["__preflight_os_keys"]
    assert "preflight_probe_paths(" in role_vars["__preflight_python_probe_paths"]


@pytest.mark.parametrize("family, major, ident", sorted(set(PLATFORM.values())) + [("RedHat", "8", "ol"),
                                                                                   ("RedHat", "9", "rhel")])
def test_the_role_loads_the_vars_file_of_kubelab_interpreters_os_keys(family, major, ident):
    variables = {"inventory_hostname": "n1",
                 "__preflight_validation": {"platforms": {"n1": {"family": family, "major": major, "id": ident}}}}
    keys = _templar(variables).template(trust_as_template(_role_vars()["__preflight_os_keys"]))
    assert list(keys) == os_keys(family, major, ident)


def test_the_role_filters_use_the_interpreter_module_itself(monkeypatch):
    """One table: a distribution added to kubelab_interpreter.DISTRIBUTIONS
    is what the role's filter returns (no second table to forget)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("preflight_filters", ROLE / "filter_plugins" / "preflight.py")
    filters = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    monkeypatch.setitem(filters.INTERPRETER.DISTRIBUTIONS, "kubelabos", "KubelabOS")
    assert filters.preflight_os_keys({"family": "RedHat", "major": "9", "id": "kubelabos"}) == [
        "KubelabOS-9", "RedHat-9", "RedHat"]
    with pytest.raises(Exception, match="not a platform of kubelab_validate"):
        filters.preflight_os_keys({"major": "9"})
    paths = filters.preflight_probe_paths(ROLE / "vars", {"Debian": {"candidates": ["/x/python3"]}}, "/y/python3")
    assert paths[-2:] == ["/x/python3", "/y/python3"] and "/usr/bin/python3" in paths


@pytest.mark.parametrize("os_name,vault,expected", [("centos85", True, True), ("centos85", False, False),
                                                    ("rocky810", True, False)])
def test_vault_switch_by_default_on_centos8_only(os_name, vault, expected):
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["preflight_centos8_use_vault"] is True
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    keep = next(t for t in tasks if t["name"].startswith("Keep what the probe"))
    family, major, ident = PLATFORM[os_name]
    variables = dict(defaults, __preflight_probe={"stdout": probe(os_name, vault=vault)},
                     __preflight_platform={"family": family, "major": major, "id": ident})
    value = _templar(variables).template(trust_as_template(keep["ansible.builtin.set_fact"]["__preflight_vault_needed"]))
    assert value is expected


# -------------------------------------------------------------- the module

class Exit(Exception):
    pass


@pytest.fixture
def run_plan(monkeypatch):
    import kubelab_preflight_plan
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    def exit_json(self, **kw):
        raise Exit(dict(kw, failed=False))

    def fail_json(self, **kw):
        raise Exit(dict(kw, failed=True))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(args):
        with patch_module_args(args), pytest.raises(Exit) as res:
            kubelab_preflight_plan.main()
        return res.value.args[0]

    return run


def node(os_name, found, cgroup):
    family, major, ident = PLATFORM[os_name]
    return {"probe": probe(os_name, found, cgroup), "family": family, "major": major, "id": ident,
            "cgroup_version": cgroup, "os_python": os_vars(os_name)[1], "interpreter": ""}


def test_module_plans_python_and_kubeadm_for_a_mixed_lab(run_plan):
    result = run_plan({"kubernetes_version": "1.35", "nodes": {
        "centos": node("centos85", [], 1),
        "rocky8": node("rocky810", ["/usr/bin/python3.11"], 1),
        "rocky9": node("rocky95", ["/usr/bin/python3"], 2),
        "debian": node("debian12", ["/usr/bin/python3"], 2),
    }})
    assert result["failed"] is False and result["changed"] is False
    plan = result["plan"]
    assert plan["centos"]["python"]["install"] == "python39"
    assert plan["rocky8"]["python"]["interpreter"] == "/usr/bin/python3.11" and plan["rocky8"]["python"]["present"]
    assert plan["rocky9"]["python"]["interpreter"] == "/usr/bin/python3"
    assert plan["rocky8"]["kernel"] == KERNEL["rocky810"]
    assert {h: p["kubeadm"]["ignore_preflight_errors"] for h, p in plan.items()} == {
        "centos": ["SystemVerification"], "rocky8": ["SystemVerification"], "rocky9": [], "debian": []}


def test_module_names_host_and_variable_when_it_cannot_decide(run_plan):
    bad = node("rocky810", [], 1)
    bad["os_python"] = {}
    nokernel = node("debian12", ["/usr/bin/python3"], 2)
    nokernel["probe"] = nokernel["probe"].replace("kubelab_kernel=", "kubelab_kernelx=")
    result = run_plan({"kubernetes_version": "1.35", "nodes": {"r8": bad, "d12": nokernel}})
    assert result["failed"] is True
    assert any(p.startswith("host r8: variable preflight_python_by_os") and "Rocky-8, RedHat-8, RedHat" in p
               for p in result["problems"])
    assert any(p.startswith("host d12:") and "kernel release" in p for p in result["problems"])


def test_module_refuses_a_missing_interpreter_override(run_plan):
    pinned = node("debian12", ["/usr/bin/python3"], 2)
    pinned["interpreter"] = "/opt/absent/python3"
    result = run_plan({"kubernetes_version": "1.35", "nodes": {"d12": pinned}})
    assert result["failed"] is True
    assert result["problems"] == ["host d12: variable preflight_python_interpreter is /opt/absent/python3, which does "
                                  "not exist there; install it, or unset the variable so the OS's candidates are used"]
