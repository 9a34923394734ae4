"""cdcsync: a change-data-capture pipeline that keeps a calendar read model in sync with service databases.

One import namespace. The user's top-level folders are its subpackages:
``cdcsync.pipeline`` (the CLI, orchestration and the local stack), ``cdcsync.sink``
(the daemon) and ``cdcsync.debezium`` (connector definitions, the Connect client,
preflight and signals). ``pipeline`` uses the other two; those two never import
``pipeline`` or each other. What both need lives beside this file.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cdcsync")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
