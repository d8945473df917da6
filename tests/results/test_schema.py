"""Exported JSON Schemas: in sync with the models, valid 2020-12, really checking formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from llem.results.schema import SCHEMAS, build_schema, export_schemas, validate_document

from tests import documents as docs

REPO = Path(__file__).resolve().parents[2]


def test_checked_in_schemas_equal_a_fresh_export(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json"))
    checked_in = sorted(p.relative_to(REPO / "schemas") for p in (REPO / "schemas").rglob("*.json"))
    assert fresh == checked_in, "schemas/ has missing or extra files: run `make schemas`"
    for rel in fresh:
        assert (tmp_path / rel).read_text() == (REPO / "schemas" / rel).read_text(), (
            f"schemas/{rel} differs from the models: run `make schemas` and commit"
        )


@pytest.mark.parametrize("fmt", sorted(SCHEMAS))
def test_each_schema_passes_the_2020_12_metaschema(fmt: str) -> None:
    schema = json.loads((REPO / "schemas" / SCHEMAS[fmt].relpath).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://") and SCHEMAS[fmt].version in schema["$id"]
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_v3_field_has_a_description() -> None:
    schema = build_schema("v3_aggregated")
    missing = [
        f"{name}.{prop}"
        for name, definition in schema["$defs"].items()
        for prop, body in definition.get("properties", {}).items()
        if "description" not in body
    ]
    assert not missing


def test_date_time_is_really_checked_by_both_validators() -> None:
    doc = docs.v3_aggregated()
    doc["start_time"] = "yesterday at noon"
    assert any("$.start_time" in e for e in validate_document(doc, "v3_aggregated"))
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    validator = jsonschema.Draft202012Validator(build_schema("v3_aggregated"),
                                                format_checker=checker)
    assert not validator.is_valid(doc)
    doc["start_time"] = "2026-13-45T99:00:00+00:00"  # matches neither RFC 3339 nor naive ISO
    assert validate_document(doc, "v3_aggregated")


def test_naive_and_aware_datetimes_both_valid() -> None:
    doc = docs.v3_aggregated()
    doc["start_time"] = "2026-01-25T09:00:00.123456"
    assert validate_document(doc, "v3_aggregated") == []
    doc["start_time"] = "2026-01-25T09:00:00Z"
    assert validate_document(doc, "v3_aggregated") == []


def test_config_schema_rejects_unknown_keys() -> None:
    good = {"config_name": "a", "model_name": "m"}
    assert validate_document(good, "config") == []
    errors = validate_document({**good, "batch_size": 4}, "config")
    assert errors and "batch_size" in errors[0]


def test_schema_export_command_writes_the_files(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llem", "schema", "export", "--out", str(tmp_path)],
        capture_output=True, text=True, check=True,
    )
    assert len(out.stdout.splitlines()) == len(SCHEMAS)
    assert (tmp_path / "v3" / "aggregated-result.schema.json").is_file()
    assert (tmp_path / "v2" / "aggregated-result.schema.json").is_file()


def test_a_written_baseline_file_is_checked_by_its_exported_schema(tmp_path: Path) -> None:
    from llem.domain.baseline import BaselineRecord, DeviceBaseline
    from llem.measure.baseline import write_baseline

    device = DeviceBaseline(device_id="GPU-0", kind="gpu", power_w=61.5, duration_sec=30.0,
                            source="nvml", measured_at="2026-01-25T09:00:00+00:00", host="a")
    record = BaselineRecord(method="fresh", power_w=61.5, devices=[device], host="a",
                            timestamp=device.measured_at, energy_source="nvml")
    path = tmp_path / "baseline.json"
    write_baseline(record, path)
    written = json.loads(path.read_text())
    assert validate_document(written, "baseline") == []
    assert (REPO / "schemas" / SCHEMAS["baseline"].relpath).is_file()
    written["method"] = "guessed"
    del written["devices"][0]["power_w"]
    errors = validate_document(written, "baseline")
    assert any(e.startswith("$.method:") for e in errors)
    assert any(e.startswith("$.devices[0]:") and "power_w" in e for e in errors)
