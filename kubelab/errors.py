"""The one exception type the CLI turns into a one-sentence error message."""

from __future__ import annotations


class KubelabError(Exception):
    """An error the operator can act on; its message is one clear sentence."""
