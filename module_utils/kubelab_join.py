# -*- coding: utf-8 -*-
"""Join planning for kubelab's workers stage.

Pure functions, no I/O: the module ``kubelab_join_plan`` feeds them the
output of one ``kubectl get nodes -o json`` on the control plane and, for
every worker, whether the kubelet's kubeconfig (``/etc/kubernetes/kubelet.conf``)
exists on that worker, and which of the files an unfinished ``kubeadm join``
leaves behind (``/etc/kubernetes/pki/ca.crt``, ``/var/lib/kubelet/config.yaml``)
it has. The decision table (see ``plan_worker``):

=================  ======================  ==============================
kubelet.conf       Node in the API         action
=================  ======================  ==============================
absent             absent                  join
absent             present, not Ready      join (stale Node from an earlier
                                           life of the host; kubeadm join
                                           accepts a NotReady Node)
absent, but join   absent or not Ready     reset_and_join (a join whose
leftovers                                  kubelet never finished its TLS
                                           bootstrap: kubeadm join refuses
                                           ``[ERROR FileAvailable--etc-
                                           kubernetes-pki-ca.crt]``)
absent             present, Ready          error (another kubelet owns the
                                           name)
present            present, Ready          none
present            present, not Ready      wait (joined; wait for Ready,
                                           never join twice)
present            absent                  reset_and_join (half-joined)
(API unreachable)                          error (JoinPlanError)
=================  ======================  ==============================

Also here: the CA public key pin that ``kubeadm join
--discovery-token-ca-cert-hash`` expects (sha256 over the DER
SubjectPublicKeyInfo of the cluster CA), computed with a tiny DER reader so
that it runs on the nodes' Python without extra packages.

Runs on the node's Python: keep it 3.8 compatible (no match statements, no
3.10-only syntax).
"""

from __future__ import absolute_import, division, print_function

import base64
import hashlib
import re

__metaclass__ = type

ACTION_NONE = "none"
ACTION_JOIN = "join"
ACTION_RESET_AND_JOIN = "reset_and_join"
ACTION_WAIT = "wait"

#: files an unfinished ``kubeadm join`` leaves on a worker without kubelet.conf
#: (kubeadm's kubelet-start phase writes them before the kubelet's TLS bootstrap
#: writes kubelet.conf; join preflight refuses an existing ca.crt)
JOIN_LEFTOVERS = ("/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/config.yaml")

#: actions that run ``kubeadm join`` (and so need a bootstrap token)
JOIN_ACTIONS = (ACTION_JOIN, ACTION_RESET_AND_JOIN)


class JoinPlanError(Exception):
    """The plan cannot be made; the message says what is wrong."""


def node_status(node):
    """Return ``Ready``, ``NotReady`` or ``Unknown`` for one Node object."""
    conditions = (node.get("status") or {}).get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "Ready":
            value = cond.get("status")
            if value == "True":
                return "Ready"
            if value == "False":
                return "NotReady"
            return "Unknown"
    return "Unknown"


def index_nodes(node_list):
    """Map node name -> status from a ``kubectl get nodes -o json`` document.

    Raises JoinPlanError when the document is not a NodeList-like object.
    """
    if not isinstance(node_list, dict) or not isinstance(node_list.get("items"), list):
        raise JoinPlanError(
            "expected a NodeList with an 'items' list from 'kubectl get nodes -o json', got %s"
            % (type(node_list).__name__ if not isinstance(node_list, dict) else "keys %s" % sorted(node_list))
        )
    nodes = {}
    for item in node_list["items"]:
        name = ((item or {}).get("metadata") or {}).get("name")
        if not name:
            continue
        nodes[name] = node_status(item)
    return nodes


def plan_worker(node_name, kubelet_conf, nodes, leftovers=()):
    """Decide what one worker needs. Returns ``(action, reason)``.

    ``nodes`` maps Node names to ``Ready`` / ``NotReady`` / ``Unknown``.
    ``leftovers``: which of ``JOIN_LEFTOVERS`` exist on the worker.
    Raises JoinPlanError when the situation needs a human.
    """
    status = nodes.get(node_name)
    if not kubelet_conf:
        if status == "Ready":
            raise JoinPlanError(
                "Node %s is Ready in the API but this host has no /etc/kubernetes/kubelet.conf: "
                "another machine is registered under this name. Rename the host, or remove the "
                "other one first (playbooks/reset.yml -e reset_node=...)." % node_name
            )
        found = [path for path in JOIN_LEFTOVERS if path in (leftovers or ())]
        if found:
            return ACTION_RESET_AND_JOIN, (
                "no kubelet.conf but %s present: a kubeadm join that did not finish (its kubelet never "
                "completed the TLS bootstrap; kubeadm join refuses an existing ca.crt), reset then join"
                % " and ".join(found)
            )
        if status is None:
            return ACTION_JOIN, "no kubelet.conf and no Node %s: new worker" % node_name
        return ACTION_JOIN, "no kubelet.conf; Node %s is %s (stale): join again" % (node_name, status)
    if status is None:
        return ACTION_RESET_AND_JOIN, (
            "kubelet.conf present but no Node %s in the API: half-joined, reset then join" % node_name
        )
    if status == "Ready":
        return ACTION_NONE, "joined and Ready"
    return ACTION_WAIT, "joined, Node %s is %s: wait for Ready" % (node_name, status)


def plan_join(workers, node_list=None, api_error=None, control_plane=None):
    """Plan the join of all workers.

    ``workers``: list of dicts with ``host`` (inventory name), ``node_name``,
    ``kubelet_conf`` (bool) and optionally ``leftovers`` (paths of
    ``JOIN_LEFTOVERS`` found on the worker). ``node_list``: parsed ``kubectl get nodes -o json``.
    ``api_error``: set when the API could not be asked; planning then fails
    with a message naming the control plane.

    Returns ``{"plan": {host: {"action", "node", "reason"}}, "needs_token": bool,
    "nodes": {name: status}}``.
    """
    where = control_plane or "the control plane"
    if api_error is not None:
        raise JoinPlanError(
            "cannot plan the join: the Kubernetes API on %s did not answer 'kubectl get nodes' (%s). "
            "The workers stage needs a working control plane (run the control_plane stage first)."
            % (where, api_error.strip() or "no error text")
        )
    if node_list is None:
        raise JoinPlanError("cannot plan the join: no Node list from %s" % where)
    nodes = index_nodes(node_list)
    seen = {}
    plan = {}
    errors = []
    for worker in workers:
        host = worker["host"]
        name = worker["node_name"]
        if name in seen:
            errors.append("hosts %s and %s would both register Node %s" % (seen[name], host, name))
            continue
        seen[name] = host
        try:
            action, reason = plan_worker(name, bool(worker["kubelet_conf"]), nodes, worker.get("leftovers") or ())
        except JoinPlanError as exc:
            errors.append("%s: %s" % (host, exc))
            continue
        plan[host] = {"action": action, "node": name, "reason": reason}
    if errors:
        raise JoinPlanError("; ".join(errors))
    needs_token = any(p["action"] in JOIN_ACTIONS for p in plan.values())
    return {"plan": plan, "needs_token": needs_token, "nodes": nodes}


def not_ready(names, nodes):
    """Names (of ``names``) whose Node is missing or not Ready, with their status."""
    return dict((n, nodes.get(n, "absent")) for n in names if nodes.get(n) != "Ready")


# --- CA pin ---------------------------------------------------------------

_PEM_RE = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL
)


def _der_read(data, pos):
    """Read one DER TLV at ``pos``: returns (tag, start_of_value, end_of_value)."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER at offset %d" % pos)
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length at offset %d" % pos)
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("DER value runs past the end of the data")
    return tag, pos, pos + length


def subject_public_key_info(der):
    """Return the DER bytes of the SubjectPublicKeyInfo of an X.509 certificate."""
    tag, start, end = _der_read(der, 0)  # Certificate ::= SEQUENCE
    if tag != 0x30:
        raise ValueError("not a DER certificate (outer tag 0x%02x)" % tag)
    tag, pos, tbs_end = _der_read(der, start)  # tbsCertificate ::= SEQUENCE
    if tag != 0x30:
        raise ValueError("not a DER certificate (tbsCertificate tag 0x%02x)" % tag)
    # version [0] EXPLICIT (optional), serial, signature, issuer, validity,
    # subject, subjectPublicKeyInfo
    tag, _, vend = _der_read(der, pos)
    if tag == 0xA0:
        pos = vend
    for _ in range(5):  # serial, signature, issuer, validity, subject
        _, _, pos = _der_read(der, pos)
    tag, vstart, vend = _der_read(der, pos)
    if tag != 0x30 or vend > tbs_end:
        raise ValueError("SubjectPublicKeyInfo not found where X.509 puts it")
    hdr = pos
    return der[hdr:vend]


def ca_cert_hash(pem_text):
    """``sha256:<hex>`` pin of the first certificate in ``pem_text``.

    The same value as ``kubeadm token create --print-join-command`` prints for
    ``--discovery-token-ca-cert-hash``.
    """
    match = _PEM_RE.search(pem_text or "")
    if not match:
        raise ValueError("no PEM certificate found")
    der = base64.b64decode("".join(match.group(1).split()))
    return "sha256:" + hashlib.sha256(subject_public_key_info(der)).hexdigest()
