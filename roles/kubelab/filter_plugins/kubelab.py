"""Filters shared by the kubelab roles (the kubelab role is a dependency of
each, so its plugins are loaded for all of them).

``kubelab_ignored_preflight_errors``: the preflight checks kubeadm is to
ignore - the user's list (control_plane_ignore_preflight_errors or
workers_ignore_preflight_errors) merged with preflight's per-node plan
(kubelab_kubeadm_ignore_preflight_errors), case-insensitive duplicates dropped,
and only ``all`` when either has it (kubeadm refuses ``all`` next to a named
check). The rule is module_utils/kubelab_sysverify.py
``ignored_preflight_errors``, the same code the preflight plan uses.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible.errors import AnsibleFilterError


def _load_sysverify():
    """module_utils/kubelab_sysverify.py of this project: a controller-side
    plugin cannot import a project's module_utils by name."""
    path = Path(__file__).resolve().parents[3] / "module_utils" / "kubelab_sysverify.py"
    spec = importlib.util.spec_from_file_location("kubelab_sysverify_shared", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SYSVERIFY = _load_sysverify()


def ignored_preflight_errors(user, *plans):
    lists = [user, *plans]
    for index, names in enumerate(lists):
        if names is not None and not isinstance(names, (list, tuple)):
            raise AnsibleFilterError(
                "kubelab_ignored_preflight_errors: argument %d is %r, not a list of preflight check names "
                "(for example [NumCPU, Mem])" % (index + 1, names))
    return _SYSVERIFY.ignored_preflight_errors(*lists)


class FilterModule:
    def filters(self):
        return {"kubelab_ignored_preflight_errors": ignored_preflight_errors}
