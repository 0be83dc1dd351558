"""Orders as rows: each API item checked and reduced to the stream's columns, with stable JSON
types (the host infers the Arrow schema from the NDJSON, so a column must not switch from
integer to text between pages). A bad item is a `data` error naming the order and the field.

Columns: `id` (integer, the primary key), `status`, `customer_email`, `currency` (text),
`total` (decimal as text, exact), `item_count` (integer), `created_at`, `updated_at` (the cursor;
fixed-width UTC text, see `timestamps`).
"""

import json
from decimal import Decimal, InvalidOperation

import errors
import timestamps

STREAM = "orders"
PRIMARY_KEY = ["id"]
CURSOR = "updated_at"


def to_row(position: int, item: object) -> dict:
    """The row of the `position`-th item of a page (counted from 1)."""
    where = f"stream `{STREAM}`, item {position} of the page"
    if not isinstance(item, dict):
        raise errors.data(f"{where}: not a JSON object")
    order_id = item.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        raise errors.data(f"{where}: field `id` must be an integer, got `{json.dumps(order_id)}`")
    where = f"stream `{STREAM}`, order {order_id}"

    def text(field: str) -> str:
        value = item.get(field)
        if not isinstance(value, str):
            raise errors.data(f"{where}: field `{field}` must be text, got `{json.dumps(value)}`")
        return value

    def instant(field: str) -> str:
        value = text(field)
        try:
            return timestamps.normalize(value)
        except ValueError:
            raise errors.data(
                f"{where}: field `{field}` is `{value}`, not an RFC 3339 instant such as `2026-11-01T10:00:00Z`"
            ) from None

    total = item.get("total")
    try:
        if isinstance(total, bool) or not isinstance(total, (str, int, float)):
            raise InvalidOperation
        total = str(Decimal(str(total)))
    except InvalidOperation:
        raise errors.data(f"{where}: field `total` must be a decimal number, got `{json.dumps(total)}`") from None
    item_count = item.get("item_count")
    if isinstance(item_count, bool) or not isinstance(item_count, int):
        raise errors.data(f"{where}: field `item_count` must be an integer, got `{json.dumps(item_count)}`")
    return {
        "id": order_id,
        "status": text("status"),
        "customer_email": text("customer_email"),
        "currency": text("currency"),
        "total": total,
        "item_count": item_count,
        "created_at": instant("created_at"),
        "updated_at": instant("updated_at"),
    }


def to_ndjson(rows: list) -> bytes:
    """Rows as newline-delimited JSON, the batch format the host converts to Arrow."""
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()
