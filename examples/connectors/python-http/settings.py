"""The connector's settings: their JSON Schema (for `inlet spec`) and the checks that turn the
host's JSON into `Settings`, refusing unknown keys and naming the setting that is wrong.

The host does not validate settings against the schema itself, so everything the schema says
is checked here too.
"""

import json
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

import errors
import timestamps

#: The credential the connector asks for: the operator grants it per connection (`--grant
#: api_key=env:VAR@host` or `[connections.NAME.grants.api_key]`), the host writes it into the
#: `authorization` header as the request leaves, and the connector never holds it.
API_KEY_CREDENTIAL = "api_key"

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Settings",
    "type": "object",
    "additionalProperties": False,
    "required": ["base_url"],
    "properties": {
        "base_url": {
            "type": "string",
            "description": "Origin of the orders API, `scheme://host[:port]` without a path. "
            "The only destination the connector may reach. Example: `https://api.example.com`.",
        },
        "start_updated_at": {
            "type": "string",
            "description": "Read orders updated after this instant (RFC 3339) on the first run; "
            "later runs go on from the saved cursor. Default: everything. "
            "Example: `2026-01-01T00:00:00Z`.",
        },
        "page_size": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "default": 100,
            "description": "Orders per page (`limit`). Example: `500`.",
        },
        "max_attempts": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10,
            "default": 4,
            "description": "Attempts per request when the API answers 429 or 5xx, before the "
            "read fails with `rate-limited` or `transient`. Example: `1` (no retry).",
        },
    },
    # How the host shows and checks the credential ask (the same keyword the Rust SDK writes).
    "x-inlet-credentials": [
        {
            "name": API_KEY_CREDENTIAL,
            "kind": "secret",
            "purpose": "the orders API key, sent as `authorization: Bearer <key>`",
        }
    ],
}


@dataclass(frozen=True)
class Settings:
    """Checked settings."""

    scheme: str
    authority: str
    start_updated_at: Optional[str]
    page_size: int
    max_attempts: int


def parse(text: str) -> Settings:
    """Checks the JSON settings the host passes; raises a `config` error naming the setting."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise errors.config(f"the settings are not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise errors.config("the settings must be a JSON object")
    known = SCHEMA["properties"]
    unknown = sorted(key for key in raw if key not in known)
    if unknown:
        raise errors.config(
            f"unknown setting `{unknown[0]}` (known: {', '.join(f'`{k}`' for k in known)})"
        )
    base_url = raw.get("base_url")
    if not isinstance(base_url, str) or not base_url:
        raise errors.config("setting `base_url` is required: the API's origin, for example `https://api.example.com`")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.config(f"setting `base_url`: `{base_url}` is not an http(s) origin such as `https://api.example.com`")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise errors.config(f"setting `base_url`: `{base_url}` must be an origin only, without path, query or user")
    start = raw.get("start_updated_at")
    if start is not None:
        if not isinstance(start, str):
            raise errors.config("setting `start_updated_at` must be an RFC 3339 string")
        try:
            start = timestamps.normalize(start)
        except ValueError:
            raise errors.config(f"setting `start_updated_at`: `{start}` is not an RFC 3339 instant such as `2026-01-01T00:00:00Z`") from None
    return Settings(
        scheme=parts.scheme,
        authority=parts.netloc,
        start_updated_at=start,
        page_size=_integer(raw, "page_size"),
        max_attempts=_integer(raw, "max_attempts"),
    )


def _integer(raw: dict, name: str) -> int:
    spec = SCHEMA["properties"][name]
    value = raw.get(name, spec["default"])
    if isinstance(value, bool) or not isinstance(value, int) or not spec["minimum"] <= value <= spec["maximum"]:
        raise errors.config(
            f"setting `{name}`: `{json.dumps(value)}` must be an integer from {spec['minimum']} to {spec['maximum']}"
        )
    return value
