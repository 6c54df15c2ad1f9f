"""The risk tests' real catalogs (the five servers, the checked snapshot), for the CLI tests too."""

from tests.gateway.risk.conftest import five_servers, live, snapshot

__all__ = ["five_servers", "live", "snapshot"]
