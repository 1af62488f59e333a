"""Text the activity rows repeat from ActionTrail is held once (issue 12 §3), values unchanged.

The loader points equal text columns at one copy (``values.share_text``); these tests
check that only exactly equal columns are shared, so a blank that the activity frame
turns into a missing value stays blank in ``case.actiontrail``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
from conftest import at_event, load_case, oss_array

from kmsforensics.normalize.values import share_text

#: Enough events in one batch for mostly distinct columns to stay text (not categories).
EVENTS = 12_000


def _distinct_events() -> list[dict[str, object]]:
    events = []
    for n in range(EVENTS):
        event = at_event(n, sourceIpAddress="" if n % 7 == 0 else f"198.51.{n // 250}.{n % 250}")
        event["requestParameters"] = {"KeyId": f"key-{n:08d}", "RegionId": "cn-hangzhou"}
        events.append(event)
    return events


def test_activity_text_equals_actiontrail_text_but_blanks(tmp_path: Path) -> None:
    case = load_case(oss_array(tmp_path / "at.json.gz", _distinct_events()), on_warning="error")
    at = case.actiontrail.set_index("eventId")
    activity = case.activity.set_index("event_id")
    assert len(activity) == len(at) == EVENTS
    assert str(at["sourceIpAddress"].dtype) == str(activity["client_ip"].dtype) == "str"
    rows = activity.loc[at.index]
    blank = at["sourceIpAddress"] == ""
    assert blank.sum() == len(range(0, EVENTS, 7))
    assert rows.loc[blank.to_numpy(), "client_ip"].isna().all()
    assert (rows.loc[~blank.to_numpy(), "client_ip"] == at.loc[~blank, "sourceIpAddress"]).all()
    assert (rows["request_id"] == at["requestId"]).all()
    assert (at["keyId"] == at["requestParameters.KeyId"]).all()
    assert (rows["key_id"] == at["keyId"]).all()


def test_share_text_replaces_only_exactly_equal_text() -> None:
    ids = pa.array(["e-1", "e-2", None], pa.large_string())
    held = pa.table({"eventId": ids, "ip": pa.array(["1.2.3.4", "", None], pa.large_string())})
    rows = pa.table(
        {
            "event_id": pa.array(["e-1", "e-2", None], pa.large_string()),
            "client_ip": pa.array(["1.2.3.4", None, None], pa.large_string()),  # blank -> null
            "copy": pa.array(["e-1", "e-2", None], pa.large_string()),
            "small": pa.array(["e-1", "e-2", None]).dictionary_encode(),
        }
    )
    shared = share_text(rows, held)
    assert shared.equals(rows)
    assert shared.schema == rows.schema

    def data(table: pa.Table, name: str) -> int:
        return int(table.column(name).chunk(0).buffers()[2].address)

    assert data(shared, "event_id") == data(held, "eventId") == data(shared, "copy")
    assert data(shared, "client_ip") == data(rows, "client_ip")  # not the blank column
    assert pd.isna(shared.column("client_ip")[1].as_py())
