# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""Which Python ansible-core's modules use on a node, and what to install
when none is there yet.

Pure functions (no Ansible import), used by the kubelab_preflight_plan module
and by the preflight role through its filters (roles/preflight/filter_plugins/
preflight.py: which OS vars file to load, which paths the probe tests), and
unit-tested in tests/unit/test_kubelab_interpreter.py.

Each OS has an ordered list of interpreter candidates and the package that
provides the first one (roles/preflight/vars/<OS>.yml); preflight's raw probe
reports which candidate paths exist on the node. ansible-core 2.19 needs
Python 3.8 or later on the node, so EL8's platform Python (3.6) is never a
candidate.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# os-release ID -> the distribution name Ansible's facts (and the vars files) use
DISTRIBUTIONS = {"centos": "CentOS", "rocky": "Rocky", "almalinux": "AlmaLinux", "rhel": "RedHat",
                 "ol": "OracleLinux", "debian": "Debian"}


def os_keys(family, major, ident):
    """Most specific first: ``["Rocky-8", "RedHat-8", "RedHat"]``."""
    keys = []
    distribution = DISTRIBUTIONS.get(str(ident or "").lower())
    if distribution and major:
        keys.append("%s-%s" % (distribution, major))
    if family and major:
        keys.append("%s-%s" % (family, major))
    if family:
        keys.append(str(family))
    out = []
    for key in keys:
        if key not in out:
            out.append(key)
    return out


def found_paths(probe_stdout):
    """The candidate paths the probe found executable (``kubelab_python_found=PATH`` lines)."""
    out = []
    for line in str(probe_stdout or "").replace("\r", "").splitlines():
        line = line.strip()
        if line.startswith("kubelab_python_found="):
            path = line.split("=", 1)[1].strip()
            if path and path not in out:
                out.append(path)
    return out


def choose(os_default, found, keys=(), overrides=None, interpreter=None):
    """Pick the interpreter for one node.

    :param os_default: ``{"candidates": [path, ...], "package": name, "installer": "dnf"|"apt-get"}``
        from the node's OS vars file.
    :param found: candidate paths that exist on the node (:func:`found_paths`).
    :param keys: the node's OS keys (:func:`os_keys`), most specific first.
    :param overrides: the user's ``preflight_python_by_os`` (OS key -> dict with
        ``candidates`` and/or ``package``); the most specific key wins over the
        OS default.
    :param interpreter: the user's ``preflight_python_interpreter`` for this
        node: when set it wins over everything and nothing is installed.
    :returns: dict ``interpreter`` (path), ``present`` (bool), ``install``
        (package name or None), ``installer``, ``source`` (where the choice
        came from) and ``candidates`` (the list that was used).
    :raises ValueError: when no candidate list can be made.
    """
    found = list(found or [])
    if interpreter:
        return {"interpreter": str(interpreter), "present": str(interpreter) in found, "install": None,
                "installer": None, "source": "preflight_python_interpreter", "candidates": [str(interpreter)]}
    settings = dict(os_default or {})
    source = "OS default"
    for key in keys:
        override = (overrides or {}).get(key)
        if override:
            settings.update(dict((k, v) for k, v in override.items() if v not in (None, "", [])))
            source = "preflight_python_by_os[%s]" % key
            break
    candidates = [str(c) for c in settings.get("candidates") or [] if c]
    if not candidates:
        raise ValueError("no Python interpreter candidates for this OS (%s)" % ", ".join(keys or ["unknown"]))
    for candidate in candidates:
        if candidate in found:
            return {"interpreter": candidate, "present": True, "install": None,
                    "installer": settings.get("installer"), "source": source, "candidates": candidates}
    package = settings.get("package")
    if not package:
        raise ValueError("none of %s exists and no package is named to install" % ", ".join(candidates))
    # the package provides the first candidate
    return {"interpreter": candidates[0], "present": False, "install": str(package),
            "installer": settings.get("installer") or "dnf", "source": source, "candidates": candidates}


def probe_paths(os_defaults, overrides=None, interpreters=()):
    """Every path the probe must test: all OS defaults' and overrides' candidates
    and the per-host interpreters, in a stable order, without duplicates."""
    out = []
    groups = [d.get("candidates") or [] for d in (os_defaults or [])]
    groups += [o.get("candidates") or [] for o in (overrides or {}).values() if isinstance(o, dict)]
    groups.append([i for i in interpreters if i])
    for group in groups:
        for path in group:
            if path and str(path) not in out:
                out.append(str(path))
    return out
