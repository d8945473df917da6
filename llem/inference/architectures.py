"""Model architectures llem ships as data, for random-weights runs.

Random-weights mode measures the energy of an architecture at realistic size without
downloading any weights (as Hugging Face's LLM-Perf benchmarks do): the model is built from
its config and initialized randomly. Each shipped architecture is one JSON file under
``llem/data/architectures/`` holding a transformers config; adding one is adding a file.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from llem.errors import ModelPreparationError

_PACKAGE = "llem"
_FOLDER = "data/architectures"


def list_architectures() -> dict[str, str]:
    """Shipped architecture names mapped to their one-line descriptions."""
    out: dict[str, str] = {}
    folder = resources.files(_PACKAGE).joinpath(_FOLDER)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            out[doc["name"]] = doc.get("description", "")
    return out


def architecture_config(name_or_folder: str) -> dict[str, Any]:
    """The transformers config mapping of a shipped architecture or of a folder's config.json."""
    folder = Path(name_or_folder)
    if (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    entry = resources.files(_PACKAGE).joinpath(_FOLDER).joinpath(f"{name_or_folder}.json")
    if not entry.is_file():
        known = ", ".join(list_architectures())
        raise ModelPreparationError(
            f"random weights: {name_or_folder!r} is neither a shipped architecture nor a "
            f"folder with a config.json; shipped architectures: {known}"
        )
    doc = json.loads(entry.read_text(encoding="utf-8"))
    return dict(doc["config"])
