r"""Log text made inert for the places it is shown: plots and terminals.

Log text is attacker-controlled. In a matplotlib label, ``$...$`` is mathtext
(``$x^{$`` makes drawing raise); in a terminal, ESC starts a control sequence (clear
the screen, move the cursor, a hyperlink that says one thing and points to
another). Every label drawn from log text goes through :func:`plot_text`, and
everything the command line prints through :func:`terminal_text`.

Examples
--------
>>> plot_text(r"$\alert$ ops")
'\\$\\alert\\$ ops'
>>> terminal_text("a.zip::\x1b]8;;http://evil/\x1b\\\\x\x1b]8;;\x1b\\\\ ok")
'a.zip::\\x1b]8;;http://evil/\\x1b\\\\x\\x1b]8;;\\x1b\\\\ ok'
>>> terminal_text("中文 name\tend")
'中文 name\\x09end'
"""

from __future__ import annotations

import re
from typing import Any

#: C0 and C1 control characters, DEL, and the Unicode controls that reorder text
#: (bidirectional overrides and isolates) or hide it (zero-width, BOM).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def terminal_text(value: Any) -> str:
    r"""Return ``value`` as text a terminal shows as is: control characters as ``\xNN``.

    Newlines are escaped too, so one value is one line; callers that print several
    lines join the escaped values themselves.
    """
    return _UNSAFE.sub(_escape, str(value))


def plot_text(value: Any, most: int | None = None) -> str:
    """Return ``value`` as a matplotlib label drawn literally (no mathtext).

    Control characters become ``?``, a label longer than ``most`` characters keeps
    its start and ends with ``…``, and ``$`` is escaped so mathtext never starts.
    """
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    if most is not None and len(text) > most:
        text = text[: most - 1] + "…"
    return text.replace("$", r"\$")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
