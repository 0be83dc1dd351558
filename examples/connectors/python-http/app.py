"""An Inlet source connector in Python: incremental reads of a paginated orders API over HTTP.

componentize-py builds this module into a WebAssembly component (`build.sh`). The class
`Source` below implements the contract's exported `source` interface (`wit/connector.wit` at
the repository's root); `wit_world` is the package componentize-py generates from the WIT.
"""

import json
from typing import List, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports import inlet_connector_types as types

import errors
import rows
import settings as settings_module
from orders_api import OrdersApi

NAME = "python-http"
VERSION = "0.1.0"


class Source(exports.Source):
    """The exported `source` interface."""

    def spec(self) -> types.ConnectorSpec:
        return types.ConnectorSpec(
            name=NAME,
            version=VERSION,
            description="Orders from a paginated HTTP JSON API, read incrementally by `updated_at` (an example in Python)",
            config_schema=json.dumps(settings_module.SCHEMA),
            # The key is a granted credential, not a setting, so no setting is secret.
            secret_fields=[],
            # The only origin the connector may reach: the user's `base_url`.
            destinations=[types.Destination_Http("{base_url}")],
        )

    def check(self, config: str) -> None:
        def check() -> None:
            settings = settings_module.parse(config)
            OrdersApi(settings).page(updated_after=None, page_token=None, limit=1)

        _at_boundary(check)

    def discover(self, config: str) -> List[types.Stream]:
        def discover() -> List[types.Stream]:
            settings_module.parse(config)
            return [
                types.Stream(
                    name=rows.STREAM,
                    # No declared Arrow schema (there is no pyarrow in the guest): the host infers
                    # it from the NDJSON, and `rows` keeps each column's JSON type stable.
                    schema=None,
                    primary_key=rows.PRIMARY_KEY,
                    cursor_field=rows.CURSOR,
                    sync_modes=[types.SyncMode.INCREMENTAL, types.SyncMode.FULL_REFRESH],
                )
            ]

        return _at_boundary(discover)

    def partitions(self, config: str, stream: str, count: int) -> List[str]:
        def partitions() -> List[str]:
            settings_module.parse(config)
            return []  # a cursor-paginated listing cannot be split into parts: read it whole

        return _at_boundary(partitions)

    def read(self, config: str, streams: List[types.ConfiguredStream], state: Optional[str]) -> None:
        _at_boundary(lambda: _read(settings_module.parse(config), streams, state))


def _read(settings, streams: List[types.ConfiguredStream], state: Optional[str]) -> None:
    saved = json.loads(state) if state else {}
    for configured in streams:
        if configured.name != rows.STREAM:
            raise errors.config(f"unknown stream `{configured.name}` (this connector has `{rows.STREAM}`)")
        incremental = configured.sync_mode == types.SyncMode.INCREMENTAL
        start = saved.get(rows.STREAM, {}).get("updated_after") if incremental else None
        _read_orders(OrdersApi(settings), settings, start or settings.start_updated_at, saved, incremental)


def _read_orders(api: OrdersApi, settings, updated_after: Optional[str], saved: dict, incremental: bool) -> None:
    """One listing of the orders updated after `updated_after`, page by page, with a checkpoint
    after each page.

    The cursor saved after a page is the newest `updated_at` whose orders have all been
    emitted: orders sharing the last `updated_at` of a page may go on on the next page, so that
    value is saved only once the listing has ended. A run that stops between pages reads those
    orders again (the same `id`s: loaders merge on the primary key); none is skipped.
    """
    complete = updated_after
    page_token = None
    read = 0
    while True:
        page = api.page(updated_after=updated_after, page_token=page_token, limit=settings.page_size)
        batch = [rows.to_row(position, item) for position, item in enumerate(page.items, start=1)]
        if batch:
            host.emit(rows.STREAM, types.BatchFormat.NDJSON, rows.to_ndjson(batch))
            read += len(batch)
            last = batch[-1][rows.CURSOR]
            if page.next_page_token is None:
                newest_complete = last
            else:
                earlier = [row[rows.CURSOR] for row in batch if row[rows.CURSOR] < last]
                newest_complete = max(earlier) if earlier else None
            if newest_complete is not None and (complete is None or newest_complete > complete):
                complete = newest_complete
        if incremental and complete is not None:
            saved[rows.STREAM] = {"updated_after": complete}
        host.checkpoint(json.dumps(saved))
        host.progress(rows.STREAM, read, None)
        if page.next_page_token is None:
            return
        page_token = page.next_page_token


_CONTRACT_ERRORS = (
    types.Error_Config,
    types.Error_Auth,
    types.Error_NotFound,
    types.Error_RateLimited,
    types.Error_Transient,
    types.Error_Data,
    types.Error_Internal,
)


def _at_boundary(call):
    """Runs `call`, turning a `ConnectorError` into the contract's typed error and any other
    exception into `internal` (a bug here), so the host gets a result, not a trap."""
    try:
        return call()
    except errors.ConnectorError as error:
        raise Err(error.to_wit()) from None
    except Err as error:
        if isinstance(error.value, _CONTRACT_ERRORS):
            raise  # from a host call (emit, checkpoint, credential): already typed
        raise Err(types.Error_Internal(f"bug in the connector: unhandled {error.value!r}")) from None
    except Exception as error:  # noqa: BLE001 - the boundary: anything else is a bug
        raise Err(types.Error_Internal(f"bug in the connector: {type(error).__name__}: {error}")) from None
