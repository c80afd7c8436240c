# -*- coding: utf-8 -*-
# Copyright: kubelab developers
# MIT License
"""CRI-O configuration: how crio merges its files, and what it reports.

CRI-O reads ``/etc/crio/crio.conf`` first when it exists (CRI-O 1.35's
packages ship none: only ``crio.conf.d/10-crio.conf``), then every regular file below
``/etc/crio/crio.conf.d`` in lexical order (Go's ``filepath.Walk``: sorted by
name, recursing into directories). An option set in a later file replaces the
whole earlier value, so a capability list in a drop-in must be complete and a
later file that sets ``default_capabilities`` silently wins.

This module computes, from the files themselves, which file set each option
(the *origin*) and which later files would shadow a managed drop-in. The
effective values are what crio itself reports (``crio status config`` from the
daemon, or ``crio config`` from the files); :func:`parse_toml` reads both.

Runs on the managed nodes: Python 3.8+ only (``tomllib`` is used when present,
otherwise a small TOML reader that covers what CRI-O's files and output use).
"""

from __future__ import absolute_import, division, print_function

import os
import re

__metaclass__ = type

DEFAULT_CONFIG = "/etc/crio/crio.conf"
DEFAULT_CONFIG_DIR = "/etc/crio/crio.conf.d"

# The settings kubelab reports by name, and where they live in crio's TOML.
HEADLINE = (
    ("default_capabilities", "crio.runtime.default_capabilities"),
    ("cgroup_manager", "crio.runtime.cgroup_manager"),
    ("pause_image", "crio.image.pause_image"),
)

BUILTIN = "built-in default"

# CRI-O 1.35's built-in values of the HEADLINE options (cri-o/cri-o v1.35.0:
# internal/config/capabilities/capabilities_linux.go Default(),
# pkg/config/config_linux.go DefaultPauseImage, cgroup manager "systemd").
BUILTIN_VALUES = {
    "crio.runtime.default_capabilities": [
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL",
    ],
    "crio.runtime.cgroup_manager": "systemd",
    "crio.image.pause_image": "registry.k8s.io/pause:3.10.1",
}


class TomlError(ValueError):
    """The text is not TOML this reader understands."""


# ---------------------------------------------------------------- TOML

class _Reader:
    _BARE = re.compile(r"[A-Za-z0-9_-]+")
    _NUMBER = re.compile(r"[+-]?(0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+|[0-9_]+(\.[0-9_]+)?([eE][+-]?[0-9_]+)?|inf|nan)")
    _ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}

    def __init__(self, text):
        self.text = text
        self.pos = 0

    def error(self, what):
        line = self.text.count("\n", 0, self.pos) + 1
        return TomlError("line %d: %s" % (line, what))

    def peek(self, n=1):
        return self.text[self.pos:self.pos + n]

    def skip_ws(self, newlines=False):
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self.pos += 1
            elif char == "#" and newlines:
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.pos += 1
            else:
                break

    def end_of_line(self):
        self.skip_ws()
        if self.peek() == "#":
            while self.pos < len(self.text) and self.text[self.pos] != "\n":
                self.pos += 1
        if self.peek() == "\r":
            self.pos += 1
        if self.pos < len(self.text) and self.peek() != "\n":
            raise self.error("unexpected %r after value" % self.peek())
        self.pos += 1

    def key(self):
        parts = []
        while True:
            self.skip_ws()
            char = self.peek()
            if char == '"':
                parts.append(self.basic_string())
            elif char == "'":
                parts.append(self.literal_string())
            else:
                match = self._BARE.match(self.text, self.pos)
                if not match:
                    raise self.error("expected a key, found %r" % char)
                parts.append(match.group(0))
                self.pos = match.end()
            self.skip_ws()
            if self.peek() != ".":
                return parts
            self.pos += 1

    def basic_string(self):
        multi = self.peek(3) == '"""'
        self.pos += 3 if multi else 1
        if multi and self.peek() == "\n":
            self.pos += 1
        out = []
        while True:
            if self.pos >= len(self.text):
                raise self.error("unterminated string")
            char = self.text[self.pos]
            if multi and self.peek(3) == '"""':
                self.pos += 3
                return "".join(out)
            if not multi and char == '"':
                self.pos += 1
                return "".join(out)
            if not multi and char == "\n":
                raise self.error("newline in a string")
            if char == "\\":
                nxt = self.text[self.pos + 1:self.pos + 2]
                if nxt in self._ESCAPES:
                    out.append(self._ESCAPES[nxt])
                    self.pos += 2
                elif nxt in ("u", "U"):
                    size = 4 if nxt == "u" else 8
                    out.append(chr(int(self.text[self.pos + 2:self.pos + 2 + size], 16)))
                    self.pos += 2 + size
                elif multi and nxt in ("\n", " ", "\t", "\r"):
                    self.pos += 1
                    self.skip_ws(newlines=True)
                else:
                    raise self.error("invalid escape \\%s" % nxt)
                continue
            out.append(char)
            self.pos += 1

    def literal_string(self):
        multi = self.peek(3) == "'''"
        delim = "'''" if multi else "'"
        self.pos += len(delim)
        if multi and self.peek() == "\n":
            self.pos += 1
        end = self.text.find(delim, self.pos)
        if end < 0 or (not multi and "\n" in self.text[self.pos:end]):
            raise self.error("unterminated literal string")
        value = self.text[self.pos:end]
        self.pos = end + len(delim)
        return value

    def value(self):
        self.skip_ws()
        char = self.peek()
        if char == '"':
            return self.basic_string()
        if char == "'":
            return self.literal_string()
        if char == "[":
            self.pos += 1
            items = []
            while True:
                self.skip_ws(newlines=True)
                if self.peek() == "]":
                    self.pos += 1
                    return items
                items.append(self.value())
                self.skip_ws(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
                elif self.peek() != "]":
                    raise self.error("expected ',' or ']' in array, found %r" % self.peek())
        if char == "{":
            self.pos += 1
            table = {}
            self.skip_ws()
            if self.peek() == "}":
                self.pos += 1
                return table
            while True:
                parts = self.key()
                if self.peek() != "=":
                    raise self.error("expected '=' after key")
                self.pos += 1
                _assign(table, parts, self.value(), self)
                self.skip_ws()
                if self.peek() == ",":
                    self.pos += 1
                elif self.peek() == "}":
                    self.pos += 1
                    return table
                else:
                    raise self.error("expected ',' or '}' in inline table")
        for word, result in (("true", True), ("false", False)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return result
        match = self._NUMBER.match(self.text, self.pos)
        if match and match.group(0) not in ("+", "-"):
            self.pos = match.end()
            raw = match.group(0).replace("_", "")
            if raw.lstrip("+-")[:2] in ("0x", "0o", "0b"):
                return int(raw, 0)
            if any(c in raw for c in ".eEn") or raw.lstrip("+-") == "inf":
                return float(raw)
            return int(raw)
        raise self.error("unsupported value starting with %r" % char)

    def document(self):
        root = {}
        current = root
        while True:
            self.skip_ws(newlines=True)
            if self.pos >= len(self.text):
                return root
            if self.peek(2) == "[[":
                raise self.error("arrays of tables are not used by CRI-O and not supported")
            if self.peek() == "[":
                self.pos += 1
                parts = self.key()
                if self.peek() != "]":
                    raise self.error("expected ']' after table name")
                self.pos += 1
                current = root
                for part in parts:
                    current = current.setdefault(part, {})
                    if not isinstance(current, dict):
                        raise self.error("%s is not a table" % ".".join(parts))
                self.end_of_line()
                continue
            parts = self.key()
            if self.peek() != "=":
                raise self.error("expected '=' after key %s" % ".".join(parts))
            self.pos += 1
            _assign(current, parts, self.value(), self)
            self.end_of_line()


def _assign(table, parts, value, reader):
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise reader.error("%s is not a table" % ".".join(parts))
    if parts[-1] in table:
        raise reader.error("key %s defined twice" % ".".join(parts))
    table[parts[-1]] = value


def parse_toml(text, use_tomllib=True):
    """Parse TOML text into dicts and lists. Raises TomlError."""
    if use_tomllib:
        try:
            import tomllib  # Python 3.11+
        except ImportError:
            tomllib = None
        if tomllib is not None:
            try:
                return tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise TomlError(str(exc))
    return _Reader(text).document()


_COMMENTED = re.compile(r"^#\s?(\s*(\[[^\]]+\]|[A-Za-z0-9_\"'.-]+\s*=.*|[\"'].*,?|\]))\s*$")


def uncomment_defaults(text):
    """Make the options that ``crio config`` prints commented out (defaults) real.

    ``crio config`` writes options that are at CRI-O's built-in default as
    ``# key = value`` lines (arrays over several ``#`` lines). Those are the
    effective values too, so they are made live before parsing. Prose comment
    lines are dropped.
    """
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if not stripped.startswith("#"):
            out.append(line)
            continue
        match = _COMMENTED.match(stripped)
        if match:
            candidate = match.group(1)
            out.append(candidate)
    return "\n".join(out) + "\n"


def parse_crio_config_output(text):
    """Parse the output of ``crio config`` (commented defaults included).

    A live option wins over a commented default of the same name.
    """
    live = parse_toml(text)
    try:
        defaults = parse_toml(uncomment_defaults(text))
    except TomlError:
        return live
    return deep_merge(defaults, live)


def deep_merge(base, over):
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = value
    return result


# ---------------------------------------------------------------- files

def config_files(config_path=DEFAULT_CONFIG, config_dir=DEFAULT_CONFIG_DIR, listdir=os.listdir,
                 isdir=os.path.isdir, exists=os.path.exists):
    """The files crio reads, in the order it reads them.

    The main file first (when it exists), then every file below config_dir in
    Go filepath.Walk order: names sorted byte-wise, directories entered where
    they sort.
    """
    files = []
    if config_path and exists(config_path):
        files.append(config_path)

    def walk(path):
        try:
            names = sorted(listdir(path), key=lambda n: n.encode("utf-8", "surrogateescape"))
        except OSError:
            return
        for name in names:
            full = os.path.join(path, name)
            if isdir(full):
                walk(full)
            else:
                files.append(full)

    if config_dir and exists(config_dir):
        walk(config_dir)
    return files


def flatten_options(data, prefix=""):
    """Map every leaf option of a parsed crio TOML to its dotted name."""
    out = {}
    for key, value in data.items():
        name = "%s.%s" % (prefix, key) if prefix else key
        if isinstance(value, dict) and value:
            out.update(flatten_options(value, name))
        else:
            out[name] = value
    return out


def compute_origins(parsed_files):
    """Given [(path, parsed dict)] in crio's reading order, map option -> last file that sets it."""
    origins = {}
    for path, data in parsed_files:
        for option in flatten_options(data or {}):
            origins[option] = path
    return origins


def _sets(data, option):
    node = data
    for part in option.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def shadowing(parsed_files, dropin_path, options):
    """Files read after ``dropin_path`` that set any of ``options``.

    :returns: dict option -> list of later files setting it (only options
        that are shadowed appear). When dropin_path is not among the files
        (not written yet), "after" means sorting after it in crio's order.
    """
    paths = [path for path, _data in parsed_files]
    if dropin_path in paths:
        later = parsed_files[paths.index(dropin_path) + 1:]
    else:
        directory = os.path.dirname(dropin_path)
        key = dropin_path.encode("utf-8", "surrogateescape")
        later = [(p, d) for p, d in parsed_files
                 if p.startswith(directory + os.sep) and p.encode("utf-8", "surrogateescape") > key]
    result = {}
    for option in options:
        hits = [path for path, data in later if _sets(data or {}, option)]
        if hits:
            result[option] = hits
    return result


def get_option(data, option, default=None):
    node = data
    for part in option.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def headline(effective, origins):
    """The settings kubelab reports, each with the file that set it."""
    values = {}
    origin = {}
    for name, option in HEADLINE:
        values[name] = get_option(effective, option) if effective is not None else None
        origin[name] = origins.get(option, BUILTIN)
    return values, origin


# ---------------------------------------------------------------- daemon vs files

def file_values(parsed_files):
    """The HEADLINE values the files on disk give now (last file setting each, else the built-in value)."""
    values = {}
    for name, option in HEADLINE:
        value = BUILTIN_VALUES.get(option)
        for _path, data in parsed_files:
            if _sets(data or {}, option):
                value = get_option(data, option)
        values[name] = value
    return values


def _same(name, left, right):
    if name == "default_capabilities" and isinstance(left, list) and isinstance(right, list):
        return sorted(c.upper() for c in left if isinstance(c, str)) == sorted(
            c.upper() for c in right if isinstance(c, str))
    return left == right


def stale_options(daemon_values, files_now):
    """HEADLINE names whose value in the running daemon differs from what its files give now."""
    if daemon_values is None:
        return []
    return [name for name, _option in HEADLINE
            if daemon_values.get(name) is not None and not _same(name, daemon_values.get(name), files_now.get(name))]


_LOADED = re.compile(r'msg="Updating config from drop-in file: ([^"]*)"')
_SKIPPED = re.compile(r'msg="Skipping not-existing config file \\"([^"\\]*)\\""')


def files_from_daemon_log(text):
    """The files the daemon read at its start, from crio's own info lines.

    crio logs ``Updating config from drop-in file: PATH`` for the main file and
    for every drop-in (pkg/config/config.go, UpdateFromDropInFile) and
    ``Skipping not-existing config file "PATH"`` when the main file is absent
    (internal/criocli/criocli.go). Returns the paths in reading order, the
    skipped main file left out.
    """
    loaded = []
    for line in text.splitlines():
        skipped = _SKIPPED.search(line)
        if skipped and skipped.group(1) in loaded:
            loaded.remove(skipped.group(1))
            continue
        match = _LOADED.search(line)
        if match and match.group(1) not in loaded:
            loaded.append(match.group(1))
    return loaded


def _show(value):
    if isinstance(value, list):
        return "[%s]" % ", ".join(str(v) for v in value)
    return str(value)


def explain(name, daemon_value, daemon_info, files_value, files_origin):
    """One sentence on where a value the daemon uses comes from.

    When the daemon and its files agree: ``set by FILE``. When they differ,
    which holds what: the running daemon's value with what the daemon
    reports of its start (when it started, the files it read then), the
    files' value with the file that sets it now, and that crio reads its
    files only at start, so it needs a restart.
    """
    if _same(name, daemon_value, files_value):
        return "set by %s" % files_origin
    started = (daemon_info or {}).get("started") or "an unknown time"
    read = (daemon_info or {}).get("files")
    if read is None:
        loaded = "it did not say which files it read"
    elif read:
        loaded = "reading %s" % ", ".join(read)
    else:
        loaded = "reading no configuration file"
    return ("the running crio uses %s = %s, loaded when it started (%s, %s); the files now give %s (set by %s); "
            "crio reads its files only when it starts: it needs a restart (systemctl restart crio) to use them"
            % (name, _show(daemon_value), started, loaded, _show(files_value), files_origin))
