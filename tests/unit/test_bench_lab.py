"""bench/lab_bench.py: the pure parts - lab spec, inventory editing, medians
and ratios, and reading per-host task counts from the ansible.posix.json
callback's output (recorded from real ansible-playbook runs, trimmed)."""

from __future__ import annotations

import ipaddress
import importlib.util
import json
import statistics
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

_PATH = Path(__file__).resolve().parents[2] / "bench" / "lab_bench.py"
_spec = importlib.util.spec_from_file_location("lab_bench", _PATH)
lb = importlib.util.module_from_spec(_spec)
sys.modules["lab_bench"] = lb
_spec.loader.exec_module(lb)

# Recorded with ANSIBLE_CONFIG=ansible.cfg (profile_tasks enabled, its lines
# around the document) and ANSIBLE_STDOUT_CALLBACK=ansible.posix.json from a
# two-host playbook: "Unchanged command" (both), "Changed on h1 only",
# "Skipped on h2" (debug, when: != h2), "Loop" (2 items, both hosts), then a
# second play on h2 with an ignored failure. Results trimmed to a few keys.
RECORDED_OK = """Thursday 26 November 2026  23:42:59 +0000 (0:00:00.057)       0:00:00.057 ***** 
Thursday 26 November 2026  23:43:03 +0000 (0:00:03.817)       0:00:03.875 ***** 
{
 "custom_stats": {},
 "global_custom_stats": {},
 "plays": [
  {
   "play": {
    "name": "Play one"
   },
   "tasks": [
    {
     "hosts": {
      "h1": {
       "action": "ansible.builtin.command",
       "changed": false,
       "msg": "",
       "rc": 0
      },
      "h2": {
       "action": "ansible.builtin.command",
       "changed": false,
       "msg": "",
       "rc": 0
      }
     },
     "task": {
      "name": "Unchanged command"
     }
    },
    {
     "hosts": {
      "h1": {
       "action": "ansible.builtin.command",
       "changed": true,
       "msg": "",
       "rc": 0
      },
      "h2": {
       "action": "ansible.builtin.command",
       "changed": false,
       "msg": "",
       "rc": 0
      }
     },
     "task": {
      "name": "Changed on h1 only"
     }
    },
    {
     "hosts": {
      "h1": {
       "action": "ansible.builtin.debug",
       "changed": false,
       "msg": "hi"
      },
      "h2": {
       "action": "ansible.builtin.debug",
       "changed": false,
       "skip_reason": "Conditional result was False",
       "skipped": true
      }
     },
     "task": {
      "name": "Skipped on h2"
     }
    },
    {
     "hosts": {
      "h1": {
       "action": "ansible.builtin.command",
       "changed": false,
       "msg": "All items completed",
       "results": [
        {
         "changed": false,
         "failed": false,
         "item": "a",
         "rc": 0
        },
        {
         "changed": false,
         "failed": false,
         "item": "b",
         "rc": 0
        }
       ]
      },
      "h2": {
       "action": "ansible.builtin.command",
       "changed": false,
       "msg": "All items completed",
       "results": [
        {
         "changed": false,
         "failed": false,
         "item": "a",
         "rc": 0
        },
        {
         "changed": false,
         "failed": false,
         "item": "b",
         "rc": 0
        }
       ]
      }
     },
     "task": {
      "name": "Loop"
     }
    }
   ]
  },
  {
   "play": {
    "name": "Play two"
   },
   "tasks": [
    {
     "hosts": {
      "h2": {
       "action": "ansible.builtin.command",
       "changed": false,
       "failed": true,
       "msg": "non-zero return code",
       "rc": 1
      }
     },
     "task": {
      "name": "Ignored failure"
     }
    }
   ]
  }
 ],
 "stats": {
  "h1": {
   "changed": 1,
   "failures": 0,
   "ignored": 0,
   "ok": 4,
   "rescued": 0,
   "skipped": 0,
   "unreachable": 0
  },
  "h2": {
   "changed": 0,
   "failures": 0,
   "ignored": 1,
   "ok": 4,
   "rescued": 0,
   "skipped": 1,
   "unreachable": 0
  }
 }
}

TASKS RECAP ****
Skipped on h2 ----------------------------------------------------------- 0.10s
"""

# Recorded the same way: an ignored failure on both hosts, then a fatal
# failure on h1 only; h2 carries on.
RECORDED_FAIL = """{"custom_stats": {}, "global_custom_stats": {}, "plays": [{"play": {"name": "Failing play"}, "tasks": [{"hosts": {"h1": {"action": "ansible.builtin.command", "changed": false, "failed": true, "msg": "non-zero return code", "rc": 1}, "h2": {"action": "ansible.builtin.command", "changed": false, "failed": true, "msg": "non-zero return code", "rc": 1}}, "task": {"name": "Ignored failure"}}, {"hosts": {"h1": {"action": "ansible.builtin.fail", "changed": false, "failed": true, "msg": "h1 is broken"}, "h2": {"action": "ansible.builtin.fail", "changed": false, "skipped": true}}, "task": {"name": "Fatal on h1"}}, {"hosts": {"h2": {"action": "ansible.builtin.command", "changed": false, "msg": "", "rc": 0}}, "task": {"name": "After"}}]}], "stats": {"h1": {"changed": 0, "failures": 1, "ignored": 1, "ok": 1, "rescued": 0, "skipped": 0, "unreachable": 0}, "h2": {"changed": 0, "failures": 0, "ignored": 1, "ok": 2, "rescued": 0, "skipped": 1, "unreachable": 0}}}"""


def test_spec_one_control_plane_workers_and_extra_worker():
    spec = lb.make_spec(3, "192.168.254.0/24", "/repo", "/tmp/inv.yml")
    assert spec["name"] == "kubelab-bench"
    assert spec["network"] == "kubelab-bench"
    assert spec["subnet"] == "192.168.254.0/24"
    assert spec["repo_dir"] == "/repo"
    assert spec["inventory_out"] == "/tmp/inv.yml"
    nodes = spec["nodes"]
    assert [n["name"] for n in nodes] == ["kubelab-b-cp1", "kubelab-b-w1", "kubelab-b-w2", "kubelab-b-w3"]
    assert [n["group"] for n in nodes] == ["control_plane", "workers", "workers", "workers"]
    assert [n["flavour"] for n in nodes] == ["el8", "debian12", "el8", "debian12"]
    assert [n["ip"] for n in nodes] == ["192.168.254.10", "192.168.254.11", "192.168.254.12", "192.168.254.13"]
    assert lb.extra_node(spec) == "kubelab-b-w3"


@pytest.mark.parametrize("n", [2, 3, 10, 20])
def test_spec_sizes(n):
    spec = lb.make_spec(n, "10.99.0.0/24", "/r", "/i")
    nodes = spec["nodes"]
    assert len(nodes) == n + 1
    assert sum(1 for x in nodes if x["group"] == "control_plane") == 1
    assert len({x["name"] for x in nodes}) == n + 1
    ips = [ipaddress.ip_address(x["ip"]) for x in nodes]
    assert len(set(ips)) == n + 1
    assert all(ip in ipaddress.ip_network("10.99.0.0/24") for ip in ips)
    assert {x["flavour"] for x in nodes} == {"el8", "debian12"}
    assert all(a["flavour"] != b["flavour"] for a, b in zip(nodes, nodes[1:]))


def test_spec_refuses_too_small_subnet_and_lab():
    with pytest.raises(ValueError, match="too small"):
        lb.make_spec(20, "192.168.254.0/28", "/r", "/i")
    with pytest.raises(ValueError):
        lb.make_spec(1, "192.168.254.0/24", "/r", "/i")


def test_parse_nodes():
    assert lb.parse_nodes("3,10,20") == [3, 10, 20]
    assert lb.parse_nodes(" 3 ") == [3]
    for bad in ("", "1", "3,x", "-3"):
        with pytest.raises(ValueError):
            lb.parse_nodes(bad)


def test_inventory_without_extra_worker():
    inv = {"all": {"vars": {"a": 1}, "children": {
        "control_plane": {"hosts": {"kubelab-b-cp1": {"kubelab_node_ip": "192.168.254.10"}}},
        "workers": {"hosts": {"kubelab-b-w1": {"kubelab_node_ip": "192.168.254.11"},
                              "kubelab-b-w2": {"kubelab_node_ip": "192.168.254.12"}}}}}}
    out = lb.inventory_without(inv, "kubelab-b-w2")
    assert out["all"]["children"]["workers"]["hosts"] == {"kubelab-b-w1": {"kubelab_node_ip": "192.168.254.11"}}
    assert out["all"]["vars"] == {"a": 1}
    assert "kubelab-b-w2" in inv["all"]["children"]["workers"]["hosts"]  # the input is untouched
    with pytest.raises(ValueError):
        lb.inventory_without(inv, "nope")


def test_median_ratio_growth():
    assert lb.median([3.0, 1.0, 2.0]) == 2.0
    assert lb.median([4.0, 1.0]) == statistics.median([1.0, 4.0]) == 2.5
    assert lb.median([]) is None
    assert lb.ratio(3.0, 2.0) == 1.5
    assert lb.ratio(None, 2.0) is None and lb.ratio(1.0, 0) is None
    g = lb.growth([3, 10, 20], [10.0, 15.0, 25.0])
    assert g["from"] == 3 and g["to"] == 20
    assert g["value_ratio"] == pytest.approx(2.5)
    assert g["n_ratio"] == pytest.approx(20 / 3)
    assert g["sublinear"] is True
    assert lb.growth([3, 20], [10.0, 80.0])["sublinear"] is False
    assert lb.growth([3], [10.0]) is None
    assert lb.growth([3, 10], [10.0, None]) is None


def test_summarise_and_table():
    row = {"n": 3, "findings": [], "floor_runs": [2.0, 4.0], "empty_runs": [3.5, 3.1, 3.3], "converge_runs": [100.0],
           "noop_runs": [6.0, 5.0, 7.0], "add_worker_runs": [9.0],
           "noop_tasks_per_host": {"a": 40, "b": 52, "localhost": 7}}
    lb.summarise(row)
    assert (row["floor"], row["empty"], row["converge"], row["noop"], row["add_worker"]) == (3.0, 3.3, 100.0, 6.0, 9.0)
    text = lb.table([row])
    header, line = text.splitlines()
    assert header.split()[0] == "N"
    cells = line.split()
    # tasks per node: min-max over the nodes, the controller left out
    assert cells == ["3", "3.0", "3.3", "100.0", "6.0", "9.0", "2.00x", "1.50x", "40-52"]


def test_targets_name_each_target_its_figures_and_verdict():
    rows = [{"n": 3, "floor": 3.0, "noop": 6.0, "add_worker": 9.0},
            {"n": 10, "floor": 5.0, "noop": 20.0, "add_worker": 25.0},
            {"n": 20, "floor": 10.0, "noop": 21.0, "add_worker": None}]
    got = {name: (figures, met) for name, figures, met in lb.targets(rows)}
    assert list(got) == ["no-op <= 2x floor at N=3", "no-op <= 2x floor at N=20",
                         "add-worker <= 1.3x no-op at N=3", "add-worker <= 1.3x no-op at N=10",
                         "add-worker <= 1.3x no-op at N=20", "no-op grows sub-linearly in N"]
    assert got["no-op <= 2x floor at N=3"] == ("no-op 6.0 s / floor 3.0 s = 2.00x", True)
    assert got["no-op <= 2x floor at N=20"][1] is False  # 2.10x
    assert got["add-worker <= 1.3x no-op at N=3"][1] is False  # 1.50x
    assert got["add-worker <= 1.3x no-op at N=10"] == ("add-worker 25.0 s / no-op 20.0 s = 1.25x", True)
    assert got["add-worker <= 1.3x no-op at N=20"][1] is None  # not measured
    assert got["no-op grows sub-linearly in N"] == ("x3.50 for x6.67 nodes", True)


def test_targets_without_the_sizes_are_not_measured():
    got = {name: met for name, _, met in lb.targets([{"n": 10, "floor": 5.0, "noop": 8.0, "add_worker": 9.0}])}
    assert got["no-op <= 2x floor at N=3"] is None and got["no-op <= 2x floor at N=20"] is None
    assert got["no-op grows sub-linearly in N"] is None
    assert got["add-worker <= 1.3x no-op at N=10"] is True


def test_per_host_counts_from_recorded_json_output():
    doc = lb.extract_json(RECORDED_OK)
    counts = lb.per_host_counts(doc)
    assert set(counts) == {"h1", "h2"}
    # h1: unchanged, changed, debug, loop (once, not per item)
    assert counts["h1"]["tasks"] == 4 and counts["h1"]["skipped"] == 0
    assert counts["h1"]["changed"] == 1
    assert counts["h1"]["changed_tasks"] == ["Changed on h1 only"]
    # h2: unchanged, changed_when false, loop, ignored failure; debug skipped
    assert counts["h2"]["tasks"] == 4 and counts["h2"]["skipped"] == 1
    assert counts["h2"]["changed"] == 0
    assert counts["h2"]["failed"] == 1
    # agrees with Ansible's own recap
    assert counts["h1"]["stats"]["changed"] == 1 and counts["h2"]["stats"]["skipped"] == 1
    assert lb.failures(doc) == []


def test_extract_json_rejects_output_without_document():
    with pytest.raises(ValueError):
        lb.extract_json("PLAY RECAP ****\n{not json\n")
    with pytest.raises(ValueError):
        lb.extract_json('{"no": "plays"}\n')


def test_failures_name_the_fatal_task_not_ignored_ones():
    doc = lb.extract_json("PLAY [x] ***\n" + RECORDED_FAIL + "\n")
    assert lb.failures(doc) == [("Fatal on h1", "h1", "h1 is broken")]
    counts = lb.per_host_counts(doc)
    assert counts["h2"]["tasks"] == 2 and counts["h2"]["skipped"] == 1


def test_parse_verify_matrix_output():
    out = ("data plane: setup 0.412 s, teardown 0.080 s\n"
           "22 checks per run, 5 runs (http workers 16, pod workers 8)\n"
           "http    median 0.210 s  min 0.200 s  max 0.300 s\n"
           "total   median 1.234 s  min 1.100 s  max 1.500 s\n")
    assert lb.parse_verify_matrix(out) == pytest.approx(1.234)
    assert lb.parse_verify_matrix("FAILED checks") is None


def test_inotify_quota_raised_for_a_big_lab_and_restored(tmp_path):
    quota = tmp_path / "max_user_instances"
    quota.write_text("128\n")
    old = lb.raise_inotify_quota(21, path=quota)
    assert old == 128
    assert int(quota.read_text()) == lb.inotify_quota_needed(21) >= 10 * 21
    lb.restore_inotify_quota(old, path=quota)
    assert quota.read_text() == "128\n"


def test_inotify_quota_left_alone_when_large_enough(tmp_path):
    quota = tmp_path / "max_user_instances"
    quota.write_text("8192\n")
    assert lb.raise_inotify_quota(21, path=quota) is None
    lb.restore_inotify_quota(None, path=quota)
    assert quota.read_text() == "8192\n"
