# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""Parsers for what the verification checks read back.

Pure functions over text: busybox ``nslookup`` (both the 1.28 format and the
1.3x format), busybox ``ping``, busybox ``telnet`` wrapped in ``timeout``,
the capability masks of ``/proc/PID/status`` and nginx access-log lines.
Every parser is exercised against real captured outputs in
``tests/data/captures/``. Python 3.8 compatible (no 3.10+ syntax).
"""

from __future__ import absolute_import, division, print_function

import re

__metaclass__ = type

CAP_NET_RAW = 13
# linux/capability.h, in bit order
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)

# Outcome classes shared by the evaluators. ``transient`` outcomes are the
# only ones a check retries (transport errors and timeouts); everything else
# is a definite answer.
OK = "ok"
TIMEOUT = "timeout"
TRANSPORT = "transport_error"

_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
_IP = r"[0-9A-Fa-f:.]*[0-9A-Fa-f]"

# ---------------------------------------------------------------------------
# nslookup
# ---------------------------------------------------------------------------
_NS_SERVER = re.compile(r"^Server:\s+(\S+)\s*$")
_NS_ADDRESS_NEW = re.compile(r"^Address:\s+(\S+)\s*$")
_NS_ADDRESS_OLD = re.compile(r"^Address\s+\d+:\s+(\S+)(?:\s+(\S+))?\s*$")
_NS_NAME = re.compile(r"^Name:\s+(\S+)\s*$")
_NS_CANT_FIND = re.compile(r"^\*\* server can't find (\S+?):\s*(\S+)\s*$")
_NS_OLD_CANT_RESOLVE = re.compile(r"can't resolve '([^']+)'")
_NS_TIMEOUT = re.compile(r"connection timed out|no servers could be reached|timed out", re.I)


def _strip_port(server):
    """``10.96.0.10:53`` -> ``10.96.0.10``; ``[fd00::a]:53`` -> ``fd00::a``."""
    if server.startswith("["):
        return server[1:].split("]", 1)[0]
    if server.count(":") == 1:
        return server.split(":", 1)[0]
    return server


def parse_nslookup(stdout, stderr=""):
    """Parse busybox nslookup output (1.28 and 1.3x formats).

    Returns a dict with ``format`` (``new``/``old``/``unknown``), ``server``
    (address of the server that answered, port removed), ``answers`` (list of
    ``{"name", "address"}``: the canonical name and one address each),
    ``errors`` (``{queried name: code}``, e.g. ``NXDOMAIN``; the old format's
    ``can't resolve`` is reported as ``NXDOMAIN``) and ``timed_out``.
    """
    text = (stdout or "") + "\n" + (stderr or "")
    result = {"format": "unknown", "server": None, "answers": [], "errors": {}, "timed_out": False}
    lines = [line.rstrip() for line in text.splitlines()]
    seen_server_address = False
    current_name = None
    for line in lines:
        if not line.strip():
            continue
        m = _NS_SERVER.match(line)
        if m:
            # 1.3x prints the server's address on the next ``Address:`` line;
            # 1.28 on ``Address 1: IP NAME``. Keep the Server: value as a
            # fallback (it is the address in both formats).
            result["server"] = _strip_port(m.group(1))
            seen_server_address = False
            continue
        m = _NS_CANT_FIND.match(line)
        if m:
            result["errors"][m.group(1)] = m.group(2)
            continue
        m = _NS_OLD_CANT_RESOLVE.search(line)
        if m:
            result["errors"][m.group(1)] = "NXDOMAIN"
            result["format"] = "old"
            continue
        if _NS_TIMEOUT.search(line):
            result["timed_out"] = True
            continue
        m = _NS_NAME.match(line)
        if m:
            current_name = m.group(1)
            continue
        m = _NS_ADDRESS_OLD.match(line)
        if m:
            result["format"] = "old"
            if current_name is None:
                result["server"] = _strip_port(m.group(1))
            else:
                # old format: "Address 1: IP CANONICAL-NAME"; the Name: line
                # holds the name as queried
                result["answers"].append({"name": m.group(2) or current_name, "address": m.group(1)})
            continue
        m = _NS_ADDRESS_NEW.match(line)
        if m:
            if result["format"] == "unknown":
                result["format"] = "new"
            if current_name is None and not seen_server_address:
                result["server"] = _strip_port(m.group(1))
                seen_server_address = True
            elif current_name is not None:
                result["answers"].append({"name": current_name, "address": m.group(1)})
            continue
    return result


def evaluate_nslookup(parsed, expected_server, expected_name, expected_address):
    """Judge a parsed nslookup: ``(outcome, observed text)``.

    Outcomes: ``ok``; ``timeout`` (retried); ``nxdomain`` (hard failure: the
    name does not exist); ``wrong_server``; ``wrong_answer``; ``no_answer``.
    NXDOMAIN for other search-domain variants next to a correct answer is
    normal for busybox 1.3x and does not fail the check.
    """
    answers = parsed["answers"]
    match = [a for a in answers if a["name"].rstrip(".") == expected_name.rstrip(".")]
    seen = ", ".join("%s -> %s" % (a["name"], a["address"]) for a in answers) or "no answer"
    observed = "server %s; %s" % (parsed["server"], seen)
    if parsed["errors"]:
        observed += "; errors: " + ", ".join("%s %s" % (k, v) for k, v in sorted(parsed["errors"].items()))
    if match:
        if parsed["server"] != expected_server:
            return "wrong_server", observed
        if any(a["address"] == expected_address for a in match):
            return OK, observed
        return "wrong_answer", observed
    if parsed["timed_out"]:
        return TIMEOUT, observed
    if answers:
        return "wrong_answer", observed
    if any(code == "NXDOMAIN" for code in parsed["errors"].values()):
        return "nxdomain", observed
    if parsed["errors"]:
        # SERVFAIL, REFUSED...: the server answered, but not with the name
        return "dns_error", observed
    return "no_answer", observed


# ---------------------------------------------------------------------------
# ping
# ---------------------------------------------------------------------------
_PING_STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_PING_RTT = re.compile(r"min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+)")


def parse_ping(stdout, stderr, rc):
    """Parse busybox ping: returns ``outcome`` and counters.

    Outcomes: ``ok`` (at least one reply), ``permission_denied`` (no raw
    socket: CAP_NET_RAW missing - busybox only opens raw sockets),
    ``timeout`` (packets sent, no reply: a network problem), ``bad_address``,
    ``error`` (anything else).
    """
    text = (stdout or "") + "\n" + (stderr or "")
    res = {"transmitted": None, "received": None, "rtt_avg_ms": None}
    m = _PING_STATS.search(text)
    if m:
        res["transmitted"], res["received"] = int(m.group(1)), int(m.group(2))
    m = _PING_RTT.search(text)
    if m:
        res["rtt_avg_ms"] = float(m.group(2))
    low = text.lower()
    if "permission denied" in low or "operation not permitted" in low:
        res["outcome"] = "permission_denied"
    elif res["received"]:
        res["outcome"] = OK
    elif res["transmitted"] is not None and res["received"] == 0:
        res["outcome"] = TIMEOUT
    elif "bad address" in low or "unknown host" in low:
        res["outcome"] = "bad_address"
    elif "network is unreachable" in low or "no route to host" in low:
        res["outcome"] = "unreachable"
    else:
        res["outcome"] = "error"
    if res["outcome"] == OK and rc not in (0, None):
        # some replies but not all: busybox exits 1; still reachable
        res["partial_loss"] = True
    return res


# ---------------------------------------------------------------------------
# capabilities
# ---------------------------------------------------------------------------
_CAP_LINE = re.compile(r"^(Cap(?:Inh|Prm|Eff|Bnd|Amb)):\s*([0-9a-fA-F]+)\s*$", re.M)


def parse_cap_masks(status_text):
    """``{"CapEff": int, ...}`` from the text of ``/proc/PID/status``."""
    return dict((m.group(1), int(m.group(2), 16)) for m in _CAP_LINE.finditer(status_text or ""))


def capability_names(mask):
    """Names (without ``CAP_``) of the bits set in ``mask``."""
    return [name for bit, name in enumerate(CAPABILITIES) if (mask >> bit) & 1]


def has_capability(mask, bit):
    """Whether capability ``bit`` is set in ``mask`` (test the bit, not the mask)."""
    return bool((mask >> bit) & 1)


# ---------------------------------------------------------------------------
# telnet (TCP connect), wrapped in ``timeout``
# ---------------------------------------------------------------------------
# busybox ``timeout`` kills with SIGTERM: a shell/CRI reports 128+15, a
# Python subprocess -15; GNU timeout exits 124.
_TIMEOUT_CODES = (124, 143, -15, 137, -9)


def parse_tcp_connect(stdout, stderr, rc):
    """Classify ``timeout N telnet HOST PORT </dev/null``.

    Outcomes: ``ok`` (``Connected to HOST``), ``refused`` (the port is closed
    or the Service has no endpoints: definite), ``bad_address`` (name did not
    resolve: definite), ``unreachable`` (no route: definite), ``timeout``
    (the SYN was never answered: retried), ``error``.
    """
    text = (stdout or "") + "\n" + (stderr or "")
    low = text.lower()
    if "connected to" in low:
        return OK
    if "connection refused" in low:
        return "refused"
    if "bad address" in low:
        return "bad_address"
    if "network is unreachable" in low or "no route to host" in low:
        return "unreachable"
    if rc in _TIMEOUT_CODES or "timed out" in low:
        return TIMEOUT
    return "error"


# ---------------------------------------------------------------------------
# nginx access log
# ---------------------------------------------------------------------------
# The official image's "main" format:
# $remote_addr - $remote_user [$time_local] "$request" $status
# $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"
_NGINX_LINE = re.compile(
    r'^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)")?(?: "(?P<forwarded_for>[^"]*)")?')


def parse_nginx_line(line):
    """One access-log line -> dict (``None`` when it is not an access line).

    Works for the ``main`` and ``combined`` formats (the latter lacks the
    trailing X-Forwarded-For field). Keys: remote_addr, time, method, path,
    protocol, status (int), bytes, referer, user_agent, forwarded_for.
    """
    m = _NGINX_LINE.match(line.strip())
    if not m:
        return None
    d = m.groupdict()
    parts = d["request"].split(" ")
    d["method"] = parts[0] if parts else ""
    d["path"] = parts[1] if len(parts) > 1 else ""
    d["protocol"] = parts[2] if len(parts) > 2 else ""
    d["status"] = int(d["status"])
    return d


def marker_prefix(run_id, namespace, service):
    """The marker prefix of one Service in one run: ``RUN.NAMESPACE.SERVICE``.

    Fields are joined with ``.``, a character that none of them can hold (the
    run id is hexadecimal; namespace and Service names are DNS labels), so
    the prefix of one Service is never a prefix of another's marker
    (``nginx-svc`` vs ``nginx-svc-lb``)."""
    for field in (run_id, namespace, service):
        if not field or "." in field:
            raise ValueError("a marker field must be non-empty and hold no '.': %r" % (field,))
    return "%s.%s.%s" % (run_id, namespace, service)


def spread_marker(prefix, seq):
    """The marker of request ``seq`` of a Service: ``PREFIX.SEQ`` (4+ digits)."""
    return "%s.%04d" % (prefix, seq)


def count_markers(log_text, marker_key, prefix):
    """Count one Service's markers of one run in an nginx access log.

    A probe request carries ``?<marker_key>=<prefix>.<seq>`` (see
    :func:`marker_prefix`, :func:`spread_marker`). Only a query value that is
    exactly ``prefix`` + ``.`` + digits counts: another Service's markers
    (even one whose name starts with this one's), earlier runs, health checks
    and other clients are ignored. Returns ``{marker: count}``; a count above
    1 means the same request was logged more than once.
    """
    pattern = re.compile(r"[?&]%s=(%s\.\d+)(?=[&#]|$)" % (re.escape(marker_key), re.escape(prefix)))
    counts = {}
    for line in (log_text or "").splitlines():
        entry = parse_nginx_line(line)
        if entry is None:
            continue
        m = pattern.search(entry["path"])  # one request per line: counted once
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts
