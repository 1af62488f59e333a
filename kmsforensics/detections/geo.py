"""Optional offline geo/ASN lookup from a MaxMind-format database the analyst provides.

Nothing is fetched: the analyst passes the path of an ``.mmdb`` file (GeoLite2 City,
Country or ASN, or any database in that format). Each distinct address is looked up once.

Examples
--------
>>> lookup = GeoLookup.__new__(GeoLookup)  # a real one takes a database path
>>> GeoLookup.fields_of({"country": {"iso_code": "NL"}, "autonomous_system_number": 64500})
{'country': 'NL', 'asn': 64500, 'latitude': None, 'longitude': None}
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import EvidenceNotFoundError


class GeoLookup:
    """Country, ASN and coordinates of addresses, from a MaxMind-format database.

    Parameters
    ----------
    path : str or Path
        The ``.mmdb`` file.

    Raises
    ------
    EvidenceNotFoundError
        If the file does not exist.
    ImportError
        If the ``maxminddb`` package is missing (``pip install 'kmsforensics[geo]'``).
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise EvidenceNotFoundError(str(path))
        try:
            import maxminddb
        except ImportError as error:  # pragma: no cover - the extra is installed in CI
            raise ImportError(
                "geo lookups need the maxminddb package: pip install 'kmsforensics[geo]'"
            ) from error
        self.path = path
        self._reader = maxminddb.open_database(str(path))

    @staticmethod
    def fields_of(record: Any) -> dict[str, Any]:
        """Pick country, ASN and coordinates out of a City, Country or ASN record."""
        record = record if isinstance(record, dict) else {}
        country = record.get("country") or record.get("registered_country") or {}
        location = record.get("location") or {}
        return {
            "country": country.get("iso_code") if isinstance(country, dict) else None,
            "asn": record.get("autonomous_system_number"),
            "latitude": location.get("latitude") if isinstance(location, dict) else None,
            "longitude": location.get("longitude") if isinstance(location, dict) else None,
        }

    def lookup(self, addresses: pd.Series) -> pd.DataFrame:
        """Country, ASN, latitude and longitude for each address (NaN where unknown)."""
        codes, uniques = pd.factorize(addresses.astype(object))
        rows = []
        for value in uniques:
            try:
                ipaddress.ip_address(str(value))
                record = self._reader.get(str(value))
            except ValueError:
                record = None
            rows.append(self.fields_of(record))
        table = pd.DataFrame(rows, columns=["country", "asn", "latitude", "longitude"])
        empty = pd.DataFrame([{}], columns=table.columns)
        table = pd.concat([table, empty], ignore_index=True)
        out = table.iloc[codes].reset_index(drop=True)  # code -1 takes the empty row
        out.index = addresses.index
        return out
