"""Where kubelab's playbooks live and which environment ansible-playbook gets."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from kubelab.errors import KubelabError

# The package lives at the top of the project tree, beside site.yml.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Variables passed through from the caller's environment when they are set:
# what ssh, podman and locale handling need. Everything else is dropped.
PASSTHROUGH_ENV = (
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "XDG_RUNTIME_DIR",
    "CONTAINERS_CONF",
)


def project_root() -> Path:
    """Return the project directory (the one holding site.yml and ansible.cfg)."""
    root = PROJECT_ROOT
    if not (root / "site.yml").is_file() or not (root / "ansible.cfg").is_file():
        raise KubelabError(
            f"kubelab's playbooks are not next to the package in {root}; "
            "install kubelab from its source tree with 'pip install -e'."
        )
    return root


def ansible_bin_dir() -> Path:
    """The bin directory of the Python environment kubelab runs in."""
    return Path(sys.executable).parent


def ansible_playbook() -> Path:
    """ansible-playbook from kubelab's own environment, never from PATH."""
    path = ansible_bin_dir() / "ansible-playbook"
    if not path.exists():
        raise KubelabError(
            f"ansible-playbook is not installed in kubelab's environment ({path.parent}); "
            "install kubelab with its dependencies."
        )
    return path


def playbook_env(root: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for ansible-playbook: the project's ansible.cfg, the
    environment's bin directory first on PATH, unparsable inventories as
    errors, and a short allow-list of the caller's variables."""
    environ = os.environ if environ is None else environ
    env = {key: environ[key] for key in PASSTHROUGH_ENV if key in environ}
    path = environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["PATH"] = os.pathsep.join([str(ansible_bin_dir()), path])
    env["ANSIBLE_CONFIG"] = str(root / "ansible.cfg")
    # An inventory Ansible cannot parse is an error, not an empty inventory.
    env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "True"
    return env
