"""Filters of the preflight role: the role's per-OS lookups computed by
module_utils/kubelab_interpreter.py (the code kubelab_preflight_plan runs),
not by a Jinja copy of it. Controller-side, no module run.

``preflight_os_keys``: a node's OS keys, most specific first
(``Rocky-8``, ``RedHat-8``, ``RedHat``), from the platform kubelab_validate
returned for it (``family``, ``major``, ``id``): the vars file of the first
that exists holds the node's Python candidates (kubelab_interpreter.os_keys).

``preflight_probe_paths``: every interpreter path the probe tests (one raw
round trip, before the OS is known): the candidates of every OS vars file in
the given directory, of preflight_python_by_os and the node's
preflight_python_interpreter (kubelab_interpreter.probe_paths).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml
from ansible.errors import AnsibleFilterError


def _load_interpreter():
    """module_utils/kubelab_interpreter.py of this project: a controller-side
    plugin cannot import a project's module_utils by name."""
    path = Path(__file__).resolve().parents[3] / "module_utils" / "kubelab_interpreter.py"
    spec = importlib.util.spec_from_file_location("kubelab_interpreter_preflight", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INTERPRETER = _load_interpreter()


def preflight_os_keys(platform):
    if not isinstance(platform, dict) or not platform.get("family"):
        raise AnsibleFilterError("preflight_os_keys: %r is not a platform of kubelab_validate (family, major, id)"
                                 % (platform,))
    return INTERPRETER.os_keys(platform.get("family"), platform.get("major"), platform.get("id"))


def preflight_probe_paths(vars_dir, python_by_os=None, interpreter=None):
    os_defaults = []
    for path in sorted(Path(str(vars_dir)).glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise AnsibleFilterError("preflight_probe_paths: cannot read %s: %s" % (path, exc))
        if isinstance(data, dict) and isinstance(data.get("__preflight_os_python"), dict):
            os_defaults.append(data["__preflight_os_python"])
    if python_by_os is not None and not isinstance(python_by_os, dict):
        raise AnsibleFilterError("preflight_probe_paths: preflight_python_by_os is %r, not a mapping of OS key to "
                                 "{candidates, package}" % (python_by_os,))
    return INTERPRETER.probe_paths(os_defaults, python_by_os or {}, [interpreter] if interpreter else [])


class FilterModule:
    def filters(self):
        return {"preflight_os_keys": preflight_os_keys, "preflight_probe_paths": preflight_probe_paths}
