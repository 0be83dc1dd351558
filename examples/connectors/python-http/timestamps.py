"""Instants as the connector keeps them: UTC, microseconds, fixed width
(`2026-11-01T10:00:00.000000Z`), so that text order is time order, in the lake and in the cursor.
"""

from datetime import datetime, timezone


def normalize(text: str) -> str:
    """`text` (RFC 3339 with an offset or `Z`) in the fixed form; `ValueError` if it is not one."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"`{text}` has no UTC offset")
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
