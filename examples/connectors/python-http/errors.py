"""Typed connector errors: what went wrong and what the host should do about it.

Raise `ConnectorError` anywhere; `app.py` turns it into the contract's `error` variant at the
boundary, so the host can tell a wrong setting (`config`) from a refused key (`auth`), a throttled
API (`rate-limited`), a flaky one (`transient`) and a body it cannot use (`data`).
"""

from typing import Optional

from wit_world.imports import inlet_connector_types as types


class ConnectorError(Exception):
    """An expected failure of one kind (`config`, `auth`, `not-found`, `rate-limited`,
    `transient`, `data`, `internal`), with a message naming the setting, field or URL at fault."""

    def __init__(self, kind: str, message: str, retry_after_ms: Optional[int] = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after_ms = retry_after_ms

    def to_wit(self) -> types.Error:
        """The contract's `error` value for this failure."""
        if self.kind == "rate-limited":
            return types.Error_RateLimited(types.RateLimit(self.message, self.retry_after_ms))
        case = {
            "config": types.Error_Config,
            "auth": types.Error_Auth,
            "not-found": types.Error_NotFound,
            "transient": types.Error_Transient,
            "data": types.Error_Data,
        }.get(self.kind, types.Error_Internal)
        return case(self.message)


def config(message: str) -> ConnectorError:
    """A setting is missing or wrong; the message names it."""
    return ConnectorError("config", message)


def data(message: str) -> ConnectorError:
    """The API sent something this connector cannot represent; the message names the field."""
    return ConnectorError("data", message)
