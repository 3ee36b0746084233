"""The local Neo4j server that `lineage server start` runs (see `manager`)."""

from graph.server.manager import (
    DEFAULT_PORT,
    NEO4J_VERSION,
    LocalServer,
    ServerStatus,
    default_install_dir,
    default_port,
    default_server_home,
)

__all__ = [
    "DEFAULT_PORT",
    "NEO4J_VERSION",
    "LocalServer",
    "ServerStatus",
    "default_install_dir",
    "default_port",
    "default_server_home",
]
