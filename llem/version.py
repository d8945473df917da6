"""The llem version: written once here; the package metadata (pyproject.toml) reads it."""

from __future__ import annotations

__version__ = "0.2.0"
