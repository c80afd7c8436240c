# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""What kubeadm's SystemVerification preflight check will say on a node, and
so what kubeadm must be told to ignore there.

Pure functions (no Ansible import), used by the kubelab_preflight_plan module
and unit-tested in tests/unit/test_kubelab_sysverify.py.

kubeadm's SystemVerificationCheck (kubernetes/kubernetes,
cmd/kubeadm/app/preflight/checks.go; run by ``kubeadm init`` and ``kubeadm
join``) runs the kernel, OS and cgroups validators of k8s.io/system-validators
and fails only on their *errors*; warnings are printed. What is an error
depends on the system-validators version each kubeadm minor vendors:

============  ======================  ==========================  ===================
kubeadm       system-validators       kernel release not listed    cgroup v1
============  ======================  ==========================  ===================
<= 1.31       v1.8.0                  error (needs 3.10+)          no check
1.32, 1.33    v1.9.x                  error (needs 4.19+ or 5+)    warning
1.34          v1.10.x                 warning (5.4/5.10/5.15/6+)   warning
>= 1.35       v1.12.x                 warning (5.4/5.10/5.15/6+)   error if kubelet >= 1.35
============  ======================  ==========================  ===================

Sources: kubernetes/system-validators tags v1.8.0, v1.9.2, v1.10.2, v1.12.1
(validators/types_unix.go DefaultSysSpec.KernelSpec.Versions,
validators/kernel_validator.go, validators/cgroup_validator_linux.go);
kubernetes/kubernetes#128149 (v1.9.0 for 1.32), #131919 (v1.10.1 for 1.34:
kernel release a warning, fixing #131898), #134087 (release-1.34: v1.10.2),
#134086 (release-1.33: v1.9.2), #134744 (v1.12.1 for 1.35: cgroup v1 an error
with kubelet 1.35 or newer). kubelab installs the kubelet of the same minor as
kubeadm, so the kubelet version is the pinned Kubernetes minor.
"""

from __future__ import absolute_import, division, print_function

import re

__metaclass__ = type

CHECK = "SystemVerification"

# (first kubeadm minor, kernel patterns, kernel mismatch is an error,
#  cgroup v1 is an error with a kubelet of that minor, system-validators version)
_RULES = (
    (0, (r"^3\.[1-9][0-9].*$", r"^([4-9]|[1-9][0-9]+)\.([0-9]+)\.([0-9]+).*$"), True, False, "v1.8.0"),
    (32, (r"^4\.19.*$", r"^4\.[2-9][0-9].*$", r"^([5-9]|[1-9][0-9]+)\.([0-9]+)\.([0-9]+).*$"), True, False, "v1.9.x"),
    (34, (r"^5\.4.*$", r"^5\.10.*$", r"^5\.15.*$", r"^([6-9]|[1-9][0-9]+)\.([0-9]+)\.([0-9]+).*$"), False, False,
     "v1.10.x"),
    (35, (r"^5\.4.*$", r"^5\.10.*$", r"^5\.15.*$", r"^([6-9]|[1-9][0-9]+)\.([0-9]+)\.([0-9]+).*$"), False, True,
     "v1.12.x"),
)

_MINOR_RE = re.compile(r"^v?1\.(\d+)(?:\.\d+)?$")


def kubeadm_minor(kubernetes_version):
    """``"1.35"`` (or ``"v1.35.2"``) -> 35; ValueError for anything else."""
    match = _MINOR_RE.match(str(kubernetes_version).strip())
    if not match:
        raise ValueError("kubernetes version %r is not of the form 1.NN" % (kubernetes_version,))
    return int(match.group(1))


def rules_for(kubernetes_version):
    """The system-validators rules kubeadm of that minor applies (a dict)."""
    minor = kubeadm_minor(kubernetes_version)
    chosen = _RULES[0]
    for rule in _RULES:
        if minor >= rule[0]:
            chosen = rule
    return {"patterns": chosen[1], "kernel_error": chosen[2], "cgroup_v1_error": chosen[3],
            "system_validators": chosen[4]}


def kernel_supported(kernel_release, kubernetes_version):
    """True when the kernel release matches one of that kubeadm's patterns."""
    release = str(kernel_release).strip()
    return any(re.match(pattern, release) for pattern in rules_for(kubernetes_version)["patterns"])


def system_verification(kernel_release, cgroup_version, kubernetes_version):
    """What SystemVerification reports on a node, and what to ignore.

    :param kernel_release: ``uname -r`` of the node.
    :param cgroup_version: 1 or 2 (the hierarchy the node runs when kubeadm runs).
    :param kubernetes_version: the pinned minor, ``"1.NN"`` (kubeadm and kubelet).
    :returns: dict ``errors`` and ``warnings`` (short reasons), ``ignore``
        (``["SystemVerification"]`` when an error is expected, else ``[]``)
        and ``reason`` (one sentence for the run's output).
    :raises ValueError: for a malformed version, an empty kernel release or a
        cgroup version other than 1 or 2.
    """
    release = str(kernel_release or "").strip()
    if not release:
        raise ValueError("no kernel release (uname -r printed nothing)")
    try:
        cgroup = int(cgroup_version)
    except (TypeError, ValueError):
        cgroup = None
    if cgroup not in (1, 2):
        raise ValueError("cgroup version %r is neither 1 nor 2" % (cgroup_version,))
    minor = kubeadm_minor(kubernetes_version)
    rules = rules_for(kubernetes_version)
    errors, warnings = [], []
    if not kernel_supported(release, kubernetes_version):
        text = "kernel %s matches none of kubeadm 1.%d's supported releases (system-validators %s)" % (
            release, minor, rules["system_validators"])
        (errors if rules["kernel_error"] else warnings).append(text)
    if cgroup == 1 and minor >= 32:
        text = "cgroup v1 with kubelet 1.%d" % minor
        (errors if rules["cgroup_v1_error"] else warnings).append(text)
    ignore = [CHECK] if errors else []
    if errors:
        reason = "kubeadm 1.%d's %s check fails here: %s; ignored (kubelab sets what it needs%s)" % (
            minor, CHECK, "; ".join(errors),
            ": failCgroupV1: false" if cgroup == 1 and rules["cgroup_v1_error"] else "")
    elif warnings:
        reason = "nothing ignored: kubeadm 1.%d's %s check only warns here (%s)" % (minor, CHECK, "; ".join(warnings))
    else:
        reason = "nothing ignored: kernel %s and cgroup v%d pass kubeadm 1.%d's %s check" % (
            release, cgroup, minor, CHECK)
    return {"errors": errors, "warnings": warnings, "ignore": ignore, "reason": reason}


def merge_ignored(*lists):
    """Join preflight check names, first spelling kept, case-insensitive duplicates dropped (kubeadm
    lower-cases them)."""
    out, seen = [], set()
    for names in lists:
        for name in names or []:
            key = str(name).strip().lower()
            if key and key not in seen:
                seen.add(key)
                out.append(str(name).strip())
    return out


def ignored_preflight_errors(*lists):
    """What kubeadm is to ignore: the lists merged (merge_ignored), and only
    C(all) when one of them has it, as kubeadm refuses C(all) next to a named
    check (kubernetes/kubernetes cmd/kubeadm/app/apis/kubeadm/validation
    ValidateIgnorePreflightErrors: "don't specify individual checks if 'all' is
    used"). The one rule for the control plane's InitConfiguration, its early
    NumCPU/Mem check and the workers' --ignore-preflight-errors (the
    kubelab_ignored_preflight_errors filter, roles/kubelab/filter_plugins)."""
    merged = merge_ignored(*lists)
    if any(name.lower() == "all" for name in merged):
        return ["all"]
    return merged
