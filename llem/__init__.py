"""llem: energy, throughput and latency of LLM inference, measured and kept queryable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llem.version import __version__

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["__version__", "load_result", "open_store"]


def load_result(path: str | Path) -> Any:
    """Load a result file of any supported format as its v3 model (:mod:`llem.results.loader`)."""
    from llem.results.loader import load_result as _load

    return _load(path)


def open_store(path: str | Path | None = None, **options: Any) -> Any:
    """A read-only handle on a result store for analysis (:mod:`llem.store.api`): ``.sql()``
    gives DuckDB relations, ``.results()`` a DataFrame of the results table."""
    from llem.store.api import open_store as _open

    return _open(path, **options)
