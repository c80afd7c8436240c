"""Re-record the ansible-runner event streams used by tests/unit/test_events.py.

    .venv/bin/python tests/data/runner_events/record.py [SCENARIO...]

Runs the playbooks in this directory through kubelab's own AnsibleRunner
(project ansible.cfg, allow-listed environment) against local-connection
hosts only; the one unreachable host is ssh to 127.0.0.1 port 1 (loopback,
refused). Writes <playbook>.events.json: the raw events, in order.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from kubelab.runner import AnsibleRunner, Progress, RunRequest  # noqa: E402

LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
INVENTORIES = {
    "converged": {"all": {"hosts": {"cp1": LOCAL, "w1": LOCAL}}},
    "first_converge": {"all": {"hosts": {"cp1": LOCAL, "w1": LOCAL}}},
    "verify_failed": {"all": {"hosts": {"cp1": LOCAL, "w1": LOCAL}}},
    "failed": {
        "all": {
            "hosts": {
                "cp1": LOCAL,
                "w1": LOCAL,
                "w2": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
                       "ansible_user": "nobody"},
            }
        }
    },
}


def record(name: str) -> None:
    events: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "hosts.json"
        inventory.write_text(json.dumps(INVENTORIES[name]))
        runner = AnsibleRunner(ROOT, event_sink=events.append)
        result = runner.run(
            RunRequest(playbook=HERE / f"{name}.yml", label=name, inventory=inventory,
                       artifacts_dir=Path(tmp) / "artifacts"),
            Progress(io.StringIO(), interactive=False),
        )
    (HERE / f"{name}.events.json").write_text(json.dumps(events, indent=1, sort_keys=True) + "\n")
    print(f"{name}: status={result.status} rc={result.rc} events={len(events)}")


if __name__ == "__main__":
    for scenario in sys.argv[1:] or sorted(INVENTORIES):
        record(scenario)
