"""The orders API as this connector uses it: one page of `GET /orders`, with the key from the
host's credential placeholder, retries on 429 and 5xx, and each failure as the right error kind.

    GET {base_url}/orders?limit=N[&updated_after=T][&page_token=P]
    authorization: Bearer <key>

answers `{"items": [...], "next_page_token": "..." | null}`, items sorted by `updated_at`, then
`id`, each updated strictly after `updated_after`. Errors: 401/403 (a wrong key), 429 with
`Retry-After` seconds, 5xx, each with `{"error": {"message": "..."}}`.
"""

import json
import time
from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import quote

from wit_world.imports import host
from wit_world.imports import inlet_connector_types as types

import errors
import http_client
from settings import API_KEY_CREDENTIAL, Settings

#: Longest wait between two attempts when the API gives no `Retry-After`, in seconds.
MAX_BACKOFF_S = 30.0


@dataclass
class Page:
    """One page of orders, as the API sent them (not yet checked)."""

    items: List[object]
    next_page_token: Optional[str]


class OrdersApi:
    """A client for one configured API."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # The placeholder stands in for the key; the host swaps the real key in as the request
        # leaves, only towards the hosts the operator's grant names. Raises `auth` if not granted.
        self.authorization = f"Bearer {host.credential(API_KEY_CREDENTIAL, [])}"

    def page(self, updated_after: Optional[str], page_token: Optional[str], limit: int) -> Page:
        """One page of `GET /orders`, retried on 429 and 5xx."""
        query = f"limit={limit}"
        if updated_after is not None:
            query += f"&updated_after={quote(updated_after, safe='')}"
        if page_token is not None:
            query += f"&page_token={quote(page_token, safe='')}"
        response = self._get_with_retries(f"/orders?{query}")
        return _parse_page(response.body)

    def _get_with_retries(self, path_and_query: str) -> http_client.Response:
        settings = self.settings
        what = f"GET {settings.scheme}://{settings.authority}/orders"
        headers = [("authorization", self.authorization), ("accept", "application/json")]
        attempt = 1
        while True:
            response = http_client.get(settings.scheme, settings.authority, path_and_query, headers)
            if response.status < 300:
                return response
            error = _classify(what, response)
            if error.kind not in ("rate-limited", "transient") or attempt >= settings.max_attempts:
                raise error
            wait_s = (
                error.retry_after_ms / 1000
                if error.retry_after_ms is not None
                else min(MAX_BACKOFF_S, 0.5 * 2 ** (attempt - 1))
            )
            host.log(
                types.LogLevel.WARN,
                f"{error.message}; attempt {attempt} of {settings.max_attempts}, retrying in {wait_s:g} s",
            )
            time.sleep(wait_s)
            attempt += 1


def _classify(what: str, response: http_client.Response) -> errors.ConnectorError:
    """The error kind for a status of 300 or more, with the API's own message."""
    status = response.status
    said = _api_message(response.body)
    if status in (401, 403):
        return errors.ConnectorError(
            "auth",
            f"{what}: {status}: the API refused credential `{API_KEY_CREDENTIAL}`{said}; check the "
            f"key granted as `{API_KEY_CREDENTIAL}` (`--grant {API_KEY_CREDENTIAL}=env:VAR@host`)",
        )
    if status == 429:
        retry_after = response.headers.get("retry-after", "").strip()
        retry_after_ms = int(float(retry_after) * 1000) if _is_number(retry_after) else None
        return errors.ConnectorError("rate-limited", f"{what}: 429 Too Many Requests{said}", retry_after_ms)
    if status >= 500:
        return errors.ConnectorError("transient", f"{what}: {status}{said}")
    if status == 404:
        return errors.ConnectorError("not-found", f"{what}: 404{said}; check setting `base_url`")
    return errors.config(f"{what}: {status}{said}; check the settings")


def _api_message(body: bytes) -> str:
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return ""
    return f" (the API said: {message})" if isinstance(message, str) else ""


def _is_number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


def _parse_page(body: bytes) -> Page:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise errors.data(f"stream `orders`: the body of GET /orders is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise errors.data("stream `orders`: the body of GET /orders is not a JSON object")
    items = document.get("items")
    if not isinstance(items, list):
        raise errors.data("stream `orders`: field `items` of GET /orders is missing or not a list")
    token = document.get("next_page_token")
    if token is not None and (not isinstance(token, str) or not token):
        raise errors.data(
            f"stream `orders`: field `next_page_token` must be a non-empty string or null, got `{json.dumps(token)}`"
        )
    return Page(items, token)
