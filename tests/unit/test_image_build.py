"""The offline node image builder fails with one clear line on bad input.

Only the refusal paths run here (no debootstrap, no image is touched): a
missing tool, an unknown argument, and a Debian archive that cannot be
reached (a closed port on loopback).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parents[2] / "molecule" / "resources" / "image" / "build.sh"

pytestmark = pytest.mark.unit


def run(args, env=None):
    return subprocess.run(["bash", str(BUILD), *args], capture_output=True, text=True, env=env, timeout=60)


def tools_dir(tmp_path: Path, leave_out: str) -> Path:
    """A PATH with the shell tools build.sh uses, without LEAVE_OUT."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "id", "sed", "cat", "dirname", "sha256sum", "cut", "mktemp", "rm", "printf",
                 "podman", "runc", "debootstrap", "timeout", "echo"):
        found = shutil.which(tool)
        if tool != leave_out and found:
            (bindir / tool).symlink_to(found)
    return bindir


def test_unknown_argument_is_refused():
    result = run(["el7"])
    assert result.returncode != 0
    assert "unknown argument 'el7'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="build.sh refuses non-root before checking tools")
@pytest.mark.parametrize("tool", ["podman", "runc", "debootstrap"])
def test_missing_tool_is_one_clear_line(tmp_path, tool):
    env = {"PATH": str(tools_dir(tmp_path, tool)), "HOME": str(tmp_path)}
    result = run(["debian12", "--force"], env=env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"[image] ERROR: '{tool}' is missing. Install it with: apt-get install -y podman runc debootstrap"]


@pytest.mark.skipif(os.geteuid() != 0, reason="build.sh needs root")
@pytest.mark.skipif(not all(shutil.which(t) for t in ("podman", "runc", "debootstrap")),
                    reason="podman, runc and debootstrap are needed to reach the archive check")
def test_unreachable_archive_is_one_clear_line(tmp_path):
    env = dict(os.environ, KUBELAB_DEBIAN_MIRROR="http://127.0.0.1:9/debian",
               KUBELAB_IMAGE_CACHE=str(tmp_path / "cache"))
    result = run(["debian12", "--force"], env=env)
    assert result.returncode != 0
    assert "[image] ERROR: Debian archive http://127.0.0.1:9/debian cannot be reached" in result.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
