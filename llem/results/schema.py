"""JSON Schema export of the pydantic models, and validation of documents against it.

``schemas/`` in the repository holds the exported files (JSON Schema 2020-12, each with
``$schema`` and a versioned ``$id``); a test fails when they differ from a fresh export.
Results are serialized by llem, so their schemas use pydantic's serialization mode; configs are
written by people, so theirs use validation mode. The v2 and later-line schemas describe files
of the earlier tool and are frozen.

Validation uses ``jsonschema-rs`` (fast enough to validate every file of a large ingest, with
``format`` checked) against the files in ``schemas/`` when llem runs from a checkout, or against
an identical in-memory export when installed elsewhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from llem.config.models import CampaignConfig, ExperimentConfig
from llem.constants import SCHEMA_ID_BASE, SCHEMA_VERSION, V2_SCHEMA_VERSION
from llem.domain.baseline import BaselineRecord
from llem.domain.experiment import AggregatedResult, MultiCycleResult, RawProcessResult
from llem.domain.legacy import (
    LaterLineResult,
    V2AggregatedResult,
    V2MultiCycleResult,
    V2RawProcessResult,
)
from llem.domain.timeseries import TimeSeriesRecord
from llem.errors import LlemError
from llem.io import write_text_atomic

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class SchemaSpec:
    """One exported schema: which model, which mode, where it goes."""

    model: type[BaseModel]
    mode: Literal["validation", "serialization"]
    version: str
    relpath: str
    title: str


#: Every schema llem exports, keyed by document format.
SCHEMAS: dict[str, SchemaSpec] = {
    "v3_raw": SchemaSpec(
        RawProcessResult, "serialization", SCHEMA_VERSION,
        "v3/raw-process-result.schema.json", "llem per-process result (schema v3)",
    ),
    "v3_aggregated": SchemaSpec(
        AggregatedResult, "serialization", SCHEMA_VERSION,
        "v3/aggregated-result.schema.json", "llem experiment result (schema v3)",
    ),
    "v3_multi_cycle": SchemaSpec(
        MultiCycleResult, "serialization", SCHEMA_VERSION,
        "v3/multi-cycle-result.schema.json", "llem multi-cycle result (schema v3)",
    ),
    "timeseries": SchemaSpec(
        TimeSeriesRecord, "serialization", SCHEMA_VERSION,
        "v3/timeseries-record.schema.json", "llem time-series record (one Parquet row)",
    ),
    "baseline": SchemaSpec(
        BaselineRecord, "serialization", SCHEMA_VERSION,
        "v3/baseline-record.schema.json", "llem idle-power baseline (baseline.json)",
    ),
    "config": SchemaSpec(
        ExperimentConfig, "validation", SCHEMA_VERSION,
        "config.schema.json", "llem experiment config",
    ),
    "campaign": SchemaSpec(
        CampaignConfig, "validation", SCHEMA_VERSION,
        "campaign.schema.json", "llem campaign config (config/config.yaml)",
    ),
    "v2_raw": SchemaSpec(
        V2RawProcessResult, "validation", V2_SCHEMA_VERSION,
        "v2/raw-process-result.schema.json", "LLenergyMeasure per-process result (v2, frozen)",
    ),
    "v2_aggregated": SchemaSpec(
        V2AggregatedResult, "validation", V2_SCHEMA_VERSION,
        "v2/aggregated-result.schema.json", "LLenergyMeasure aggregated result (v2, frozen)",
    ),
    "v2_multi_cycle": SchemaSpec(
        V2MultiCycleResult, "validation", V2_SCHEMA_VERSION,
        "v2/multi-cycle-result.schema.json", "LLenergyMeasure multi-cycle result (v2, frozen)",
    ),
    "later_line": SchemaSpec(
        LaterLineResult, "validation", "later-line",
        "later-line/result.schema.json",
        "LLenergyMeasure later-line result ('2.0'/'3.0' with measurement_config_hash, frozen)",
    ),
}

def build_schema(fmt: str) -> dict[str, Any]:
    """The JSON Schema document of one format, with ``$schema`` and a versioned ``$id``."""
    spec = SCHEMAS[fmt]
    body = spec.model.model_json_schema(mode=spec.mode)
    body.pop("title", None)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_ID_BASE}/{spec.version}/{spec.relpath.split('/')[-1]}",
        "title": spec.title,
        **body,
    }


def render_schema(fmt: str) -> str:
    """The exact text written to disk (stable key order, trailing newline)."""
    return json.dumps(build_schema(fmt), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def export_schemas(out_dir: str | Path) -> list[Path]:
    """Write every schema under ``out_dir``; returns the written paths."""
    out = Path(out_dir)
    written = []
    for fmt, spec in SCHEMAS.items():
        path = out / spec.relpath
        write_text_atomic(path, render_schema(fmt))
        written.append(path)
    return written


def schema_dir() -> Path | None:
    """``schemas/`` of the checkout llem runs from (or ``$LLEM_SCHEMA_DIR``), if present."""
    env = os.environ.get("LLEM_SCHEMA_DIR")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[2] / "schemas"
    return candidate if candidate.is_dir() else None


@cache
def load_schema(fmt: str) -> dict[str, Any]:
    """The schema used for validation: the checked-in file if there is one, else the export."""
    if fmt not in SCHEMAS:
        raise LlemError(f"unknown document format {fmt!r}")
    folder = schema_dir()
    if folder is not None:
        path = folder / SCHEMAS[fmt].relpath
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return build_schema(fmt)


@cache
def _validator(fmt: str) -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(load_schema(fmt), validate_formats=True)


def validate_document(document: Any, fmt: str) -> list[str]:
    """Validate a parsed JSON document; returns one ``$.json.path: reason`` line per failure."""
    validator = _validator(fmt)
    if validator.is_valid(document):
        return []
    errors = []
    for err in validator.iter_errors(document):
        errors.append(f"{json_path(err.instance_path)}: {_short(err.message)}")
    return errors


def json_path(parts: Any) -> str:
    """``['a', 0, 'b']`` -> ``$.a[0].b``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."
