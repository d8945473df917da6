"""Validate result files against the JSON Schema of their own format, reporting every failure.

A file without schema errors is then judged as ``llem ingest`` judges it on its own (the
conversion, its rows, the time-series files it names; see ``llem.store.ingest.check_file``),
so ``validate`` and ``ingest`` give the same verdict on every file; only conflicts with
results already in a store are left to ingest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llem.errors import ResultLoadError
from llem.loader import decode_document, detect_format, format_label, schema_format
from llem.schema import validate_document


@dataclass
class FileReport:
    """Validation outcome of one file: its format label and every error line."""

    path: str
    label: str = "unknown"
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def validate_file(path: str | Path) -> FileReport:
    """Every schema failure of one file (``$.json.path: reason``), or none."""
    report = FileReport(str(path))
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        report.errors.append(f"cannot read: {exc.strerror or exc}")
        return report
    try:
        _, document = decode_document(content, str(path))
        fmt = detect_format(document, str(path))
    except ResultLoadError as exc:
        report.errors.append(str(exc).removeprefix(f"{path}: "))
        return report
    report.label = format_label(fmt)
    report.errors.extend(validate_document(document, schema_format(fmt)))
    if not report.errors:
        from llem.store.ingest import REFUSED, check_file

        verdict = check_file(path)
        if verdict.status == REFUSED:
            report.errors.append(verdict.reason or "refused")
        report.warnings.extend(verdict.warnings)
    return report


def validate_files(paths: list[str]) -> list[FileReport]:
    """Validate each file independently."""
    return [validate_file(p) for p in paths]
