"""Validate result files and folders: ingest's verdict on each file, without a store.

A file is valid when ``llem ingest`` would store it (into a store that does not hold it yet):
the same reading, JSON, schema, v3 model, row and time-series checks run, through
:func:`llem.store.ingest.check_paths`, so the two commands never disagree about a file. For
a file its schema refuses, every schema failure is reported, not only the first
(:func:`llem.results.loader.schema_errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llem.results.loader import format_label, schema_errors
from llem.store.ingest import REFUSED, check_paths


@dataclass
class FileReport:
    """Validation outcome of one file (or folder): its format label and every error line."""

    path: str
    label: str = "unknown"
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Every file's outcome, and the non-result JSON files of folders that were skipped."""

    files: list[FileReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def invalid(self) -> int:
        return sum(1 for f in self.files if f.errors)


def validate_paths(paths: Sequence[str | Path]) -> ValidationReport:
    """Validate files, and ``*.json`` under folders, as ``llem ingest`` would take them."""
    checked = check_paths(paths)
    report = ValidationReport(skipped=list(checked.skipped))
    for outcome in checked.files:
        file_report = FileReport(outcome.path)
        if outcome.format is not None:
            file_report.label = format_label(outcome.format)
        if outcome.status == REFUSED:
            file_report.errors = schema_errors(outcome.path) or [outcome.reason or ""]
        file_report.warnings.extend(outcome.warnings)
        report.files.append(file_report)
    return report
