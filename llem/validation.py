"""Validate result files against the JSON Schema of their own format, reporting every failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llem.errors import ResultLoadError
from llem.loader import decode_document, detect_format, format_label
from llem.schema import validate_document


@dataclass
class FileReport:
    """Validation outcome of one file: its format label and every error line."""

    path: str
    label: str = "unknown"
    errors: list[str] = field(default_factory=list)


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
    report.errors.extend(validate_document(document, fmt))
    return report


def validate_files(paths: list[str]) -> list[FileReport]:
    """Validate each file independently."""
    return [validate_file(p) for p in paths]
