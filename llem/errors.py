"""Typed errors: every failure a user can cause or meet has its own class and a plain message.

The CLI prints ``str(error)`` as one line and exits non-zero; no traceback reaches the user
for these.
"""

from __future__ import annotations


def shown_name(name: object) -> str:
    """A file name as messages show it: as is when plain, else quoted with its control
    characters escaped, so a name can never break a message line or fake another one."""
    text = str(name)
    if text and text.isprintable() and text[0] not in "'\"":
        return text
    return repr(text)


class LlemError(Exception):
    """Base of every error llem raises on purpose."""


class ConfigError(LlemError):
    """A config file is missing, unreadable or invalid; the message names file and field."""


class ResultLoadError(LlemError):
    """A result file cannot be read as any known result format."""


class SchemaValidationError(LlemError):
    """A document does not match its JSON Schema."""


class EnergySourceError(LlemError):
    """An energy source cannot be opened or read."""


class ModelPreparationError(LlemError):
    """A model cannot be found, downloaded or materialized."""


class MeasurementError(LlemError):
    """A measurement cannot be made or its inputs disagree (e.g. a foreign baseline)."""


class AggregationError(LlemError):
    """Process results cannot be combined into one experiment result."""


class StoreError(LlemError):
    """The result store cannot be opened, migrated or written."""


class NoStoreError(StoreError):
    """Nothing has been ingested at this address yet (no file, or a catalog database without
    a store in it): the first ingest creates the store."""
