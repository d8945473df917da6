"""Environment metadata of result schema v3: what the numbers were measured on.

The schema-v3 environment models; llem adds, optionally, every GPU of a multi-GPU host with its
UUID, and the software versions and scheduler context needed to reproduce a run. ``gpu`` and
``cuda`` may be null: a CPU-only host has neither, and collection never fails.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from llem.domain.types import Count, Int64, Timestamp


class _Env(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GPUEnvironment(_Env):
    """One GPU as seen by NVML."""

    name: str = Field(description='GPU model name (e.g., "NVIDIA A100-SXM4-80GB")')
    vram_total_mb: float | None = Field(
        default=None, description="Total VRAM in MB; null when it cannot be read."
    )
    compute_capability: str | None = Field(default=None, description='e.g., "8.0"')
    pcie_gen: Int64 | None = Field(default=None, description="PCIe generation")
    mig_enabled: bool = Field(default=False, description="Whether MIG mode is enabled.")
    uuid: str | None = Field(default=None, description="NVML UUID, the stable identity.")
    index: Int64 | None = Field(default=None, description="NVML (physical) index.")
    pci_bus_id: str | None = Field(default=None, description="PCI bus id.")
    persistence_mode: bool | None = Field(default=None, description="Persistence mode on.")
    energy_counter_supported: bool | None = Field(
        default=None, description="Whether the cumulative energy counter can be read."
    )


class CUDAEnvironment(_Env):
    """CUDA runtime and driver."""

    version: str = Field(description='CUDA version (e.g., "12.4")')
    driver_version: str = Field(description="Driver version string")
    cudnn_version: str | None = Field(default=None, description="cuDNN version.")


class ThermalEnvironment(_Env):
    """Thermal and power state at experiment start."""

    temperature_c: float | None = Field(default=None, description="GPU temp at experiment start")
    power_limit_w: float | None = Field(default=None, description="Configured power limit")
    default_power_limit_w: float | None = Field(default=None, description="Factory power limit")
    fan_speed_pct: float | None = Field(default=None, description="Fan speed, percent.")


class CPUEnvironment(_Env):
    """Host CPU."""

    governor: str = Field(default="unknown", description="CPU frequency governor")
    model: str | None = Field(default=None, description="CPU model string")
    platform: str = Field(description="OS platform (Linux, etc.)")
    logical_cores: Count | None = Field(default=None, description="Logical CPU count.")


class ContainerEnvironment(_Env):
    """Container detection."""

    detected: bool = Field(default=False, description="Running in container")
    runtime: str | None = Field(default=None, description="Docker, podman, etc.")


class SoftwareEnvironment(_Env):
    """Versions of what ran the measurement."""

    python_version: str | None = Field(default=None, description="Python version.")
    torch_version: str | None = Field(default=None, description="PyTorch version.")
    transformers_version: str | None = Field(default=None, description="transformers version.")
    llem_version: str | None = Field(default=None, description="llem version.")
    git_commit: str | None = Field(default=None, description="Commit of the llem checkout.")
    git_dirty: bool | None = Field(default=None, description="Uncommitted changes present.")


class EnvironmentMetadata(_Env):
    """Everything about the host that a reader needs to interpret or reproduce a result."""

    gpu: GPUEnvironment | None = Field(
        default=None, description="The first GPU in use; null on a host without GPUs."
    )
    cuda: CUDAEnvironment | None = Field(
        default=None, description="CUDA runtime and driver; null without CUDA."
    )
    thermal: ThermalEnvironment = Field(
        default_factory=ThermalEnvironment, description="Thermal state at start."
    )
    cpu: CPUEnvironment = Field(description="The host CPU and OS.")
    container: ContainerEnvironment = Field(
        default_factory=ContainerEnvironment,
        description="Whether a container runtime was detected.",
    )
    collected_at: Timestamp = Field(description="When metadata was collected")
    gpus: list[GPUEnvironment] | None = Field(
        default=None, description="Every GPU on the host, with UUIDs."
    )
    host: str | None = Field(default=None, description="Host name.")
    software: SoftwareEnvironment | None = Field(default=None, description="Software versions.")
    slurm_job_id: str | None = Field(default=None, description="SLURM_JOB_ID, if any.")
    cuda_visible_devices: str | None = Field(
        default=None, description="CUDA_VISIBLE_DEVICES as set for the job."
    )
    unavailable: dict[str, str] | None = Field(
        default=None, description="What could not be read, and why."
    )

    @property
    def summary_line(self) -> str:
        """One line for logs, e.g. ``A100 80GB | CUDA 12.4 | Driver 535.104 | 42C | container``."""
        parts: list[str] = []
        if self.gpu is not None:
            parts.append(_short_gpu_name(self.gpu.name, self.gpu.vram_total_mb))
        else:
            parts.append(f"no GPU ({self.cpu.model or self.cpu.platform})")
        if self.cuda is not None:
            parts.append(f"CUDA {self.cuda.version}")
            parts.append(f"Driver {_short_driver(self.cuda.driver_version)}")
        if self.thermal.temperature_c is not None:
            parts.append(f"{self.thermal.temperature_c:.0f}C")
        if self.container.detected:
            parts.append("container")
        return " | ".join(parts)


#: Words of a GPU name that are the vendor or brand, not the model.
_BRAND_WORDS = frozenset({"NVIDIA", "GEFORCE", "TESLA"})
#: A word from which on a GPU name only describes memory or form factor ("80GB", "HBM3").
_SUFFIX_WORD = re.compile(r"^(\d+GB|HBM\w*|PCIE|SXM\d*|NVL)$", re.IGNORECASE)


def _short_gpu_name(name: str, vram_total_mb: float | None) -> str:
    """The GPU model and its memory: 'NVIDIA A100-SXM4-80GB' with 81920 MB -> 'A100 80GB'.

    'Tesla V100-SXM2-16GB' -> 'V100 16GB', 'NVIDIA GeForce RTX 4090' -> 'RTX 4090 24GB',
    'NVIDIA H100 80GB HBM3' -> 'H100 80GB'; without a readable memory size, the model alone.
    """
    words = name.split("-")[0].split()
    words = [w for w in words if w.upper() not in _BRAND_WORDS]
    model_words: list[str] = []
    for word in words:
        if _SUFFIX_WORD.match(word):
            break
        model_words.append(word)
    model = " ".join(model_words) or name.strip()
    if vram_total_mb is None:
        return model
    return f"{model} {round(vram_total_mb / 1024)}GB"


def _short_driver(version: str) -> str:
    """'535.104.05' -> '535.104'."""
    return ".".join(version.split(".")[:2])
