"""`kubelab inventory check`: the preflight validation, run on the inventory
without touching any host.

The rules live in module_utils/kubelab_validate.py (the same code the first
play of playbooks/preflight.yml runs through the kubelab_validate module);
this file only gathers the data Ansible sees (``ansible-inventory --list`` for
every host's variables, ``--host localhost`` for the controller's, so
group_vars and host_vars count) and hands it over with the roles' argument
specs. Values that are still Jinja templates are left out: only a playbook run
can render them (preflight checks them there).

When Ansible cannot parse the inventory at all, the YAML files are read here
to say where and why (a TAB, an empty host name, a YAML error), because
Ansible's own report lists every inventory plugin's failure."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType

import yaml

from kubelab.errors import KubelabError
from kubelab.project import ansible_bin_dir, playbook_env


def load_validator(root: Path) -> ModuleType:
    path = root / "module_utils" / "kubelab_validate.py"
    if not path.is_file():
        raise KubelabError(f"The validation rules ({path}) are missing from this checkout.")
    spec = importlib.util.spec_from_file_location("kubelab_validate", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _ansible_inventory(root: Path, inventory: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(ansible_bin_dir() / "ansible-inventory"), "-i", str(inventory), *args]
    return subprocess.run(command, cwd=root, env=playbook_env(root), capture_output=True, text=True, check=False)


def inventory_data(root: Path, inventory: Path) -> tuple[dict, dict]:
    """(`ansible-inventory --list`, `ansible-inventory --host localhost`) as
    JSON, from kubelab's own environment."""
    proc = _ansible_inventory(root, inventory, "--list")
    if proc.returncode != 0:
        raise KubelabError(f"Ansible cannot read the inventory {inventory}: {unparsable_reason(inventory, proc.stderr, proc.returncode)}")
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise KubelabError(f"ansible-inventory printed no JSON for {inventory}.") from None
    local = _ansible_inventory(root, inventory, "--host", "localhost")
    try:
        controller = json.loads(local.stdout) if local.returncode == 0 else {}
    except ValueError:
        controller = {}
    return data, controller


def first_problem(stderr: str, returncode: int) -> str:
    """The most telling line Ansible printed, on one line: the yaml plugin's
    reason when there is one (kubelab inventories are YAML), else the first
    warning or error."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        match = re.match(r"^\[WARNING\]: Failed to parse inventory with 'yaml' plugin: (.*)$", line)
        if match:
            return f"Failed to parse inventory with 'yaml' plugin: {match.group(1).strip()}"
    for line in lines:
        for prefix in ("[WARNING]:", "[ERROR]:"):
            if line.startswith(prefix):
                return line[len(prefix):].strip()
    return lines[-1] if lines else f"exit code {returncode}"


def _yaml_files(inventory: Path) -> list[Path]:
    if inventory.is_file():
        return [inventory] if inventory.suffix in (".yml", ".yaml") else []
    return sorted(p for p in inventory.glob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))


def yaml_file_problems(path: Path) -> list[str]:
    """What makes a YAML inventory file unusable, with line numbers: TABs in
    the indentation, YAML errors, hosts with an empty name."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot be read ({exc})"]
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            problems.append(f"{path} line {number}: a TAB in the indentation; YAML indents with spaces only")
    if problems:
        return problems
    try:
        document = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        return [f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})"]
    if isinstance(document, yaml.MappingNode):
        for group, body in document.value:
            _group_problems(path, str(group.value), body, problems)
    return problems


def _group_problems(path: Path, group: str, body: yaml.Node, problems: list[str]) -> None:
    if not isinstance(body, yaml.MappingNode):
        return
    for key, value in body.value:
        if key.value == "hosts" and isinstance(value, yaml.MappingNode):
            for host, _vars in value.value:
                if not str(host.value).strip():
                    problems.append(f"{path} line {host.start_mark.line + 1}: group '{group}' has a host with an "
                                    "empty name; give every host a name")
        elif key.value == "children" and isinstance(value, yaml.MappingNode):
            for child, child_body in value.value:
                _group_problems(path, str(child.value), child_body, problems)


def unparsable_reason(inventory: Path, stderr: str, returncode: int) -> str:
    """Why Ansible could not parse the inventory, in one line."""
    found = [problem for path in _yaml_files(inventory) for problem in yaml_file_problems(path)]
    if found:
        return "; ".join(found)
    return first_problem(stderr, returncode)


def _templated(value: object) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    if isinstance(value, dict):
        return any(_templated(k) or _templated(v) for k, v in value.items())
    return False


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


def _role_variables(variables: dict, pattern: re.Pattern) -> dict:
    return {k: v for k, v in (variables or {}).items() if pattern.match(k) and not _templated(v)}


def validator_input(data: dict, controller: dict | None = None,
                    pattern: str = r"^(kubelab|preflight|node_prep|crio|kube_packages|control_plane|workers|"
                                   r"workloads|verify|reset)_") -> tuple[dict, dict, dict]:
    """(groups, hostvars, settings) for kubelab_validate.validate(): every
    host's role-prefixed variables and the controller's (localhost's), as the
    playbook hands them over; templated values are left out."""
    regex = re.compile(pattern)
    groups = flatten_groups(data)
    all_hostvars = (data.get("_meta") or {}).get("hostvars") or {}
    hosts = list(groups.get("all") or [])
    hosts += [h for h in all_hostvars if h not in hosts]
    hostvars = {host: _role_variables(all_hostvars.get(host) or {}, regex) for host in hosts}
    settings = _role_variables(controller or {}, regex)
    return groups, hostvars, settings


def check(root: Path, inventory: Path) -> list[str]:
    validator = load_validator(root)
    data, controller = inventory_data(root, inventory)
    groups, hostvars, settings = validator_input(data, controller, validator.VARIABLE_PATTERN)
    try:
        roles = validator.load_roles(str(root / "roles"))
    except ValueError as exc:
        raise KubelabError(f"The roles' argument specs cannot be read: {exc}") from None
    return list(validator.validate(groups=groups, hostvars=hostvars, settings=settings, roles=roles))
