"""Shared pytest setup.

Makes kubelab's own Ansible code importable the way Ansible loads it:
``module_utils/foo.py`` as ``ansible.module_utils.foo`` and the modules in
``library/`` as top-level modules, so unit tests exercise the same import
paths that a playbook run uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ansible.module_utils

ROOT = Path(__file__).resolve().parent.parent
MODULE_UTILS = ROOT / "module_utils"
LIBRARY = ROOT / "library"

if str(MODULE_UTILS) not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(MODULE_UTILS))
if str(LIBRARY) not in sys.path:
    sys.path.insert(0, str(LIBRARY))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
