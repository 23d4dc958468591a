"""crmmigrate: moves CRM data exactly once, with a queue for what needs a person.

Python bindings of the C++ library. The main entry point is :class:`Migration` (a context
manager); custom connectors and rules subclass :class:`Source`, :class:`Destination`,
:class:`MergeRule`, :class:`Validator` and :class:`Normalizer`; every error is a
:class:`Error` subclass with a ``code``; :mod:`crmmigrate.sandbox` prepares sandbox CRMs.

    import crmmigrate
    with crmmigrate.Migration("migration.json") as m:
        print(m.plan()["blocking"])
        m.plan(approve=True, reviewer="Avery")
        report = m.run()          # a dict; report["state"] is "complete", "incomplete", "halted", ...
"""
import sys as _sys

from ._crmmigrate import (  # noqa: F401  (re-exports)
    AlreadyExistsError,
    AuditIterator,
    CancelledError,
    ConfigError,
    Destination,
    Error,
    InternalError,
    InvalidArgumentError,
    LockedError,
    MergeRule,
    Migration,
    Normalizer,
    NotFoundError,
    ParseError,
    PermissionDeniedError,
    PluginError,
    Source,
    StorageError,
    StorageIOError,
    UnavailableError,
    Validator,
    __version__,
    sandbox,
)

# Show the public classes as crmmigrate.X (in help(), reprs and tracebacks), not crmmigrate._crmmigrate.X.
for _cls in (Migration, Source, Destination, MergeRule, Validator, Normalizer, AuditIterator, sandbox.Sandbox):
    _cls.__module__ = __name__ if _cls is not sandbox.Sandbox else __name__ + ".sandbox"
del _cls

# `import crmmigrate.sandbox` / `from crmmigrate.sandbox import Sandbox` work like a submodule.
_sys.modules[__name__ + ".sandbox"] = sandbox

__all__ = [
    "Migration",
    "Source",
    "Destination",
    "MergeRule",
    "Validator",
    "Normalizer",
    "AuditIterator",
    "Error",
    "InvalidArgumentError",
    "ConfigError",
    "ParseError",
    "NotFoundError",
    "AlreadyExistsError",
    "LockedError",
    "UnavailableError",
    "PermissionDeniedError",
    "StorageIOError",
    "StorageError",
    "CancelledError",
    "PluginError",
    "InternalError",
    "sandbox",
    "__version__",
]
