"""The display time zone: how tables, timelines and plots show times. Storage stays UTC.

Examples
--------
>>> import pandas as pd
>>> set_display_timezone("Asia/Shanghai")
'Asia/Shanghai'
>>> show_time(pd.Timestamp("2026-03-11T17:44:00Z"))
'2026-03-12 01:44:00 +08:00'
>>> set_display_timezone(None)
'UTC'
>>> show_time(pd.Timestamp("2026-03-11T17:44:00Z"))
'2026-03-11 17:44:00 UTC'
"""

from __future__ import annotations

from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from .errors import TimezoneError

_zone = "UTC"
T = TypeVar("T", pd.Series, pd.Timestamp, pd.DatetimeIndex)


def set_display_timezone(zone: str | None) -> str:
    """Show times in ``zone`` (an IANA name such as ``Asia/Shanghai``; None: UTC).

    Only what is shown changes: every frame of a case stays in UTC.
    """
    global _zone
    name = "UTC" if zone in (None, "") else str(zone)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise TimezoneError(
            f"{name!r} is not a time zone; use an IANA name such as UTC or Asia/Shanghai"
        ) from error
    _zone = name
    return _zone


def display_timezone() -> str:
    """Return the zone times are shown in."""
    return _zone


def to_display(times: T) -> T:
    """Return times (UTC) converted to the display zone."""
    if isinstance(times, pd.Series):
        return times.dt.tz_convert(_zone)
    return times.tz_convert(_zone)


def zone_label() -> str:
    """Return how axis labels and column headers name the zone (``UTC``, ``Asia/Shanghai``)."""
    return _zone


def show_time(stamp: Any, seconds: bool = True) -> str:
    """Return one time as text in the display zone, with the zone."""
    if stamp is None or (not isinstance(stamp, pd.Timestamp) and pd.isna(stamp)):
        return ""
    value = pd.Timestamp(stamp)
    value = value.tz_localize("UTC") if value.tzinfo is None else value
    local = value.tz_convert(_zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    if _zone == "UTC":
        return f"{text} UTC"
    offset = local.strftime("%z")
    return f"{text} {offset[:3]}:{offset[3:]}"


def localise(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of a frame with every UTC time column in the display zone."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            out[name] = out[name].dt.tz_convert(_zone)
    return out
