"""Filters of the crio role.

``crio_toml_string``: a value as a TOML basic string (``"..."``), escaped as
the TOML 1.0 specification requires: quotation mark and backslash escaped,
every control character (U+0000-U+001F, U+007F) written as an escape, every
other character as itself (no JSON-style surrogate pairs, which TOML does not
allow). The drop-in is rendered with it, so a value never changes the shape
of the file: ``NET_RAW", "SYS_ADMIN`` stays one (odd) string that crio then
refuses as an unknown capability, instead of becoming two list entries.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def crio_toml_string(value):
    """Render a string as a TOML basic string."""
    if not isinstance(value, str):
        raise AnsibleFilterError("crio_toml_string expects a string, got %s %r" % (type(value).__name__, value))
    out = []
    for char in value:
        if char in _SHORT:
            out.append(_SHORT[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append("\\u%04X" % ord(char))
        elif 0xD800 <= ord(char) <= 0xDFFF:
            raise AnsibleFilterError("crio_toml_string: %r holds a lone surrogate, which TOML cannot encode" % value)
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


class FilterModule:
    """The crio role's filters."""

    def filters(self):
        return {"crio_toml_string": crio_toml_string}
