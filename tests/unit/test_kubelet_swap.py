"""The kubelet stand-in refuses to start with swap on, as the real kubelet does.

kubernetes/kubernetes (1.35): pkg/kubelet/cm/container_manager_linux.go
``NewContainerManager`` asks pkg/kubelet/util/swap/swap_util.go ``IsSwapOn``
(/proc/swaps has more lines than its header; a missing file means off) and,
with ``failSwapOn`` true (the default; the ``--fail-swap-on`` flag wins over
the configuration file), fails: ``running with swap on is not supported,
please disable swap or set --fail-swap-on flag to false``, wrapped by
cmd/kubelet as ``failed to run Kubelet: ...``. With ``failSwapOn: false``
the kubelet runs. pkg/kubelet/apis/config/validation/validation.go:
``memorySwap.swapBehavior`` must be "", NoSwap or LimitedSwap.

The stand-in reads every absolute path under KUBELAB_STANDIN_ROOT (here the
test's tmp_path), /proc/swaps included.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
KUBELET = ROOT / "molecule" / "resources" / "standins" / "pkgs" / "kubelet" / "root" / "usr" / "bin" / "kubelet"

HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
SWAP_ON = HEADER + "/dev/dm-1                               partition\t16760828\t0\t\t-2\n"
MESSAGE = ("failed to run Kubelet: running with swap on is not supported, please disable swap "
           "or set --fail-swap-on flag to false")
CRI_ERROR = "validate CRI v1 runtime API"


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A node under tmp_path that passes every check before the swap check
    (config, cgroup v2, kubeconfig) and has no CRI socket, so a kubelet that
    gets past the swap check stops at the CRI check instead."""
    loader = importlib.machinery.SourceFileLoader("kubelet_standin_swap", str(KUBELET))
    spec = importlib.util.spec_from_loader("kubelet_standin_swap", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", str(tmp_path))
    logs = []
    monkeypatch.setattr(module, "log", lambda level, msg, **kv: logs.append((level, msg, kv)))
    module.logs = logs
    (tmp_path / "var" / "lib" / "kubelet").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "cgroup").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "cgroup" / "cgroup.controllers").write_text("cpu memory\n")
    (tmp_path / "etc" / "kubernetes").mkdir(parents=True)
    (tmp_path / "etc" / "kubernetes" / "kubelet.conf").write_text("{}\n")
    (tmp_path / "proc").mkdir()

    def setup(swaps=None, config="kind: KubeletConfiguration\n"):
        (tmp_path / "var" / "lib" / "kubelet" / "config.yaml").write_text(config)
        if swaps is not None:
            (tmp_path / "proc" / "swaps").write_text(swaps)

    def run(*flags):
        with pytest.raises(module.KubeletError) as info:
            module.run(["--config=/var/lib/kubelet/config.yaml", *flags])
        return str(info.value)

    module.setup, module.start = setup, run
    return module


def test_swap_on_stops_the_kubelet_with_upstreams_message(node):
    node.setup(SWAP_ON)
    assert node.start() == MESSAGE
    # IsSwapOn logs what /proc/swaps holds
    assert any(msg == "Swap is on" and "/dev/dm-1" in kv["/proc/swaps contents"] for _, msg, kv in node.logs)


def test_main_exits_1_and_logs_command_failed(node):
    node.setup(SWAP_ON)
    assert node.main(["--config=/var/lib/kubelet/config.yaml"]) == 1
    assert [str(kv["err"]) for level, msg, kv in node.logs if msg == "command failed"] == [MESSAGE]


@pytest.mark.parametrize("swaps", [None, "", HEADER], ids=["no /proc/swaps", "empty", "header only"])
def test_no_swap_passes_the_check(node, swaps):
    node.setup(swaps)
    assert CRI_ERROR in node.start()


@pytest.mark.parametrize("config, flags", [
    ("kind: KubeletConfiguration\nfailSwapOn: false\n", ()),
    ("kind: KubeletConfiguration\nfailSwapOn: false\nmemorySwap:\n  swapBehavior: LimitedSwap\n", ()),
    ("kind: KubeletConfiguration\n", ("--fail-swap-on=false",)),
    ("kind: KubeletConfiguration\nfailSwapOn: true\n", ("--fail-swap-on=false",)),  # the flag wins
], ids=["config", "config+LimitedSwap", "flag", "flag over config"])
def test_fail_swap_on_false_lets_the_kubelet_run_with_swap(node, config, flags):
    node.setup(SWAP_ON, config)
    assert CRI_ERROR in node.start(*flags)


@pytest.mark.parametrize("config, flags", [
    ("kind: KubeletConfiguration\nfailSwapOn: true\n", ()),
    ("kind: KubeletConfiguration\nfailSwapOn: false\n", ("--fail-swap-on",)),  # a bare bool flag is true
    ("kind: KubeletConfiguration\nfailSwapOn: false\n", ("--fail-swap-on=true",)),
], ids=["config true", "bare flag", "flag true over config false"])
def test_fail_swap_on_true_refuses(node, config, flags):
    node.setup(SWAP_ON, config)
    assert node.start(*flags) == MESSAGE


def test_a_bare_bool_flag_does_not_swallow_the_next_argument(node):
    flags = node.parse_args(["--fail-swap-on", "positional", "--node-ip", "192.0.2.1"])
    assert flags["fail-swap-on"] == "true" and flags["node-ip"] == "192.0.2.1"


def test_an_unparsable_fail_swap_on_flag_is_refused(node):
    node.setup(None)
    assert 'invalid argument "maybe" for "--fail-swap-on" flag' in node.start("--fail-swap-on=maybe")


def test_an_unknown_swap_behavior_is_refused_before_anything_else(node):
    node.setup(None, "kind: KubeletConfiguration\nmemorySwap:\n  swapBehavior: UnlimitedSwap\n")
    assert node.start() == ('failed to validate kubelet configuration, error: invalid configuration: '
                            'memorySwap.swapBehavior "UnlimitedSwap" must be one of: "", "LimitedSwap" or "NoSwap"')
