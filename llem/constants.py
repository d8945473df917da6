"""Version numbers and fixed names shared across llem."""

from __future__ import annotations

#: Result schema written by this llem. v2 ("2.0.0") documents still load.
SCHEMA_VERSION = "3.0.0"

#: ``written_by`` of every result file llem writes; files of the earlier tool lack it.
WRITTEN_BY_LLEM = "llem"

#: Result schema of the earlier tool, frozen; its JSON Schemas are exported beside v3.
V2_SCHEMA_VERSION = "2.0.0"

#: Base of the ``$id`` of every exported JSON Schema.
SCHEMA_ID_BASE = "https://llem.dev/schemas"

#: Names of experiments, campaigns and runs: safe as file names and Snakemake wildcards.
SAFE_NAME_PATTERN = r"^[A-Za-z0-9._-]+$"

#: Longest such name: a path component of at most 255 bytes, with room for a suffix (".log").
MAX_NAME_CHARS = 200

#: Default location of the result store.
DEFAULT_STORE_PATH = "results/llem.duckdb"

#: Default folder of prepared models (one ``<model_key>/`` folder each).
DEFAULT_MODELS_DIR = "resources/models"
