"""The security suite reuses the web and API fixtures: logged-in members and keyed clients."""

from tests.api.conftest import other_read_api, read_api, write_api  # noqa: F401
from tests.web.conftest import (  # noqa: F401
    admin,
    admin_client,
    in_memory_channel_layer,
    ingest,
    member,
    member_client,
)
