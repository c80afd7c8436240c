"""`kubelab inventory check`: the preflight validation rules, run on the
inventory without touching any host.

The rules live in module_utils/kubelab_validate.py (shared with the preflight
role's module); this file only gathers the inventory data Ansible sees
(``ansible-inventory --list``, so group_vars and host_vars count) and hands it
over."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

from kubelab.errors import KubelabError
from kubelab.project import ansible_bin_dir, playbook_env

SETTING_PREFIXES = ("kubelab_", "crio_", "preflight_", "node_prep_", "kube_packages_")
HOST_KEYS = ("kubelab_node_ip",)


def load_validator(root: Path) -> ModuleType:
    path = root / "module_utils" / "kubelab_validate.py"
    if not path.is_file():
        raise KubelabError(f"The validation rules ({path}) are missing from this checkout.")
    spec = importlib.util.spec_from_file_location("kubelab_validate", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def inventory_data(root: Path, inventory: Path) -> dict:
    """`ansible-inventory --list` as JSON, from kubelab's own environment."""
    command = [str(ansible_bin_dir() / "ansible-inventory"), "-i", str(inventory), "--list"]
    proc = subprocess.run(
        command, cwd=root, env=playbook_env(root), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise KubelabError(f"Ansible cannot read the inventory {inventory}: {first_problem(proc.stderr, proc.returncode)}")
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise KubelabError(f"ansible-inventory printed no JSON for {inventory}.") from None


def first_problem(stderr: str, returncode: int) -> str:
    """The first warning or error Ansible printed, on one line."""
    for line in stderr.splitlines():
        line = line.strip()
        for prefix in ("[WARNING]:", "[ERROR]:"):
            if line.startswith(prefix):
                return line[len(prefix):].strip()
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {returncode}"


def _templated(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def flatten_groups(data: dict) -> dict[str, list[str]]:
    """Group name -> every host in it, children included (Ansible's `groups`)."""
    memo: dict[str, list[str]] = {}

    def hosts_of(group: str, seen: frozenset[str]) -> list[str]:
        if group in memo:
            return memo[group]
        body = data.get(group) or {}
        hosts = list(body.get("hosts") or [])
        for child in body.get("children") or []:
            if child in seen:
                continue
            for host in hosts_of(child, seen | {child}):
                if host not in hosts:
                    hosts.append(host)
        memo[group] = hosts
        return hosts

    return {name: hosts_of(name, frozenset({name})) for name in data if name != "_meta"}


def validator_input(data: dict) -> tuple[dict, dict, dict]:
    """(groups, hostvars, settings) for kubelab_validate.validate().

    Cluster-wide settings are taken from the first host's variables (group_vars
    apply to all); values that are still Jinja templates are left out because
    only a playbook run can render them."""
    groups = flatten_groups(data)
    all_hostvars = (data.get("_meta") or {}).get("hostvars") or {}
    hostvars = {
        host: {k: v for k, v in (hv or {}).items() if k in HOST_KEYS and not _templated(v)}
        for host, hv in all_hostvars.items()
    }
    settings: dict = {}
    for _host, hv in sorted(all_hostvars.items()):
        for key, value in (hv or {}).items():
            if key.startswith(SETTING_PREFIXES) and key not in HOST_KEYS and not _templated(value):
                settings.setdefault(key, value)
        break
    return groups, hostvars, settings


def check(root: Path, inventory: Path) -> list[str]:
    validator = load_validator(root)
    groups, hostvars, settings = validator_input(inventory_data(root, inventory))
    return list(validator.validate(groups=groups, hostvars=hostvars, settings=settings))
