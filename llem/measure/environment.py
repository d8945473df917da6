"""Collect what a result was measured on. Never fails: what cannot be read is null, and
``unavailable`` says why.

GPUs come from NVML (every GPU, with UUIDs; ``gpu`` is the first one the job uses, found
through ``CUDA_VISIBLE_DEVICES`` like the energy source finds it). Versions come from package
metadata, so torch is imported only for its CUDA runtime and cuDNN versions.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from llem.domain.environment import (
    ContainerEnvironment,
    CPUEnvironment,
    CUDAEnvironment,
    EnvironmentMetadata,
    GPUEnvironment,
    SoftwareEnvironment,
    ThermalEnvironment,
)
from llem.energy import nvml as nv
from llem.energy.cuda_devices import visible_devices
from llem.errors import EnergySourceError
from llem.version import __version__

T = TypeVar("T")
_MIB = 1024 * 1024


def _try(call: Callable[[], T]) -> T | None:
    """An optional non-NVML fact (container, cuDNN): None when it cannot be read."""
    try:
        return call()
    except Exception:
        return None


def _nvml_try(nvml: Any, call: Callable[[], T]) -> T | None:
    """An optional NVML read: None when NVML refuses it (not supported, no permission)."""
    try:
        return call()
    except nvml.NVMLError:
        return None


def collect_environment(
    cuda_device_indices: list[int] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    sys_root: Path = Path("/"),
) -> EnvironmentMetadata:
    """EnvironmentMetadata of this host for a job using ``cuda_device_indices`` (torch numbers)."""
    env = os.environ if environ is None else environ
    unavailable: dict[str, str] = {}
    gpus, gpu, thermal, cuda = _gpu_section(cuda_device_indices, env, unavailable)
    try:
        cpu = _cpu(sys_root, unavailable)
    except Exception as exc:  # pragma: no cover - defensive: never fail
        unavailable["cpu"] = str(exc)
        cpu = CPUEnvironment(platform="unknown")
    container = _try(lambda: _container(sys_root, env)) or ContainerEnvironment()
    software = _try(_software)
    return EnvironmentMetadata(
        gpu=gpu,
        cuda=cuda,
        thermal=thermal,
        cpu=cpu,
        container=container,
        collected_at=datetime.now(UTC),
        gpus=gpus,
        host=_try(socket.gethostname),
        software=software,
        slurm_job_id=env.get("SLURM_JOB_ID"),
        cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES"),
        unavailable=unavailable or None,
    )


def _gpu_section(
    indices: list[int] | None, env: Mapping[str, str], unavailable: dict[str, str]
) -> tuple[list[GPUEnvironment] | None, GPUEnvironment | None, ThermalEnvironment,
           CUDAEnvironment | None]:
    thermal = ThermalEnvironment()
    try:
        nvml = nv.load_nvml()
        nv.nvml_init(nvml)
    except EnergySourceError as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        unavailable["gpu"] = reason
        unavailable["cuda"] = reason
        return None, None, thermal, None
    try:
        physical = nv.list_gpus(nvml)
        gpus = [_gpu_env(nvml, g) for g in physical]
        if not gpus:
            unavailable["gpu"] = "NVML found no NVIDIA GPU"
        visible, _note = visible_devices(env.get("CUDA_VISIBLE_DEVICES"),
                                         [g.uuid for g in physical])
        first = (indices or [0])[0]
        gpu = None
        if 0 <= first < len(visible) and visible[first].physical_index is not None:
            phys = physical[visible[first].physical_index]
            gpu = gpus[phys.index]
            h = phys.handle
            thermal = ThermalEnvironment(
                temperature_c=_nvml_try(nvml, lambda: float(nvml.nvmlDeviceGetTemperature(
                    h, nv.NVML_TEMPERATURE_GPU))),
                power_limit_w=_nvml_try(
                    nvml, lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0),
                default_power_limit_w=_nvml_try(
                    nvml, lambda: nvml.nvmlDeviceGetPowerManagementDefaultLimit(h) / 1000.0),
                fan_speed_pct=_nvml_try(nvml, lambda: float(nvml.nvmlDeviceGetFanSpeed(h))),
            )
        elif gpus:
            unavailable["gpu"] = (f"CUDA device {first} is not a visible whole GPU "
                                  f"(CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')!r})")
        cuda = _cuda(nvml, unavailable)
        return gpus or None, gpu, thermal, cuda
    except (EnergySourceError, nvml.NVMLError) as exc:
        unavailable["gpu"] = getattr(exc, "reason", None) or str(exc)
        return None, None, thermal, None
    finally:
        nv.nvml_shutdown(nvml)


def _gpu_env(nvml: Any, g: nv.PhysicalGpu) -> GPUEnvironment:
    h = g.handle
    cc = _nvml_try(nvml, lambda: nvml.nvmlDeviceGetCudaComputeCapability(h))
    mem = _nvml_try(nvml, lambda: nvml.nvmlDeviceGetMemoryInfo(h))
    return GPUEnvironment(
        name=g.name,
        vram_total_mb=mem.total / _MIB if mem is not None else None,
        compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
        pcie_gen=_nvml_try(nvml, lambda: int(nvml.nvmlDeviceGetMaxPcieLinkGeneration(h))),
        mig_enabled=g.mig_enabled,
        uuid=g.uuid,
        index=g.index,
        pci_bus_id=_nvml_try(nvml, lambda: nv.nvml_text(nvml.nvmlDeviceGetPciInfo(h).busId)),
        persistence_mode=_nvml_try(nvml, lambda: bool(nvml.nvmlDeviceGetPersistenceMode(h))),
        energy_counter_supported=g.counter_supported,
    )


def _cuda(nvml: Any, unavailable: dict[str, str]) -> CUDAEnvironment | None:
    driver = _nvml_try(nvml, lambda: nv.nvml_text(nvml.nvmlSystemGetDriverVersion()))
    if driver is None:
        unavailable["cuda"] = "NVIDIA driver version unreadable"
        return None
    runtime, cudnn = None, None
    try:
        import torch

        runtime = torch.version.cuda
        cudnn_int = _try(torch.backends.cudnn.version)
        cudnn = str(cudnn_int) if cudnn_int else None
    except Exception:
        pass
    if runtime is None:  # CPU build of torch: report what the driver supports
        code = _nvml_try(nvml, lambda: int(nvml.nvmlSystemGetCudaDriverVersion()))
        if code:
            runtime = f"{code // 1000}.{(code % 1000) // 10}"
    if runtime is None:
        unavailable["cuda"] = "CUDA version unknown (torch without CUDA, driver did not say)"
        return None
    return CUDAEnvironment(version=runtime, driver_version=driver, cudnn_version=cudnn)


def _cpu(root: Path, unavailable: dict[str, str]) -> CPUEnvironment:
    governor = "unknown"
    gov_path = root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"
    try:
        governor = gov_path.read_text().strip() or "unknown"
    except OSError:
        unavailable["cpu.governor"] = "no cpufreq governor exposed (VM or container?)"
    model = None
    try:
        for line in (root / "proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model"):
                model = value.strip()
                break
    except OSError:
        pass
    model = model or platform.processor() or None
    return CPUEnvironment(governor=governor, model=model, platform=platform.system(),
                          logical_cores=os.cpu_count())


def _container(root: Path, env: Mapping[str, str]) -> ContainerEnvironment:
    if (root / ".dockerenv").exists():
        return ContainerEnvironment(detected=True, runtime="docker")
    if (root / "run/.containerenv").exists():
        return ContainerEnvironment(detected=True, runtime="podman")
    if env.get("container"):
        return ContainerEnvironment(detected=True, runtime=env["container"])
    if env.get("KUBERNETES_SERVICE_HOST"):
        return ContainerEnvironment(detected=True, runtime="kubernetes")
    if env.get("APPTAINER_CONTAINER") or env.get("SINGULARITY_CONTAINER"):
        return ContainerEnvironment(detected=True, runtime="apptainer")
    try:
        cgroup = (root / "proc/1/cgroup").read_text()
    except OSError:
        cgroup = ""
    for marker, runtime in (("docker", "docker"), ("kubepods", "kubernetes"),
                            ("containerd", "containerd"), ("lxc", "lxc"), ("libpod", "podman")):
        if marker in cgroup:
            return ContainerEnvironment(detected=True, runtime=runtime)
    return ContainerEnvironment(detected=False)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _software() -> SoftwareEnvironment:
    commit, dirty = _git_state(Path(__file__).resolve().parents[2])
    return SoftwareEnvironment(
        python_version=platform.python_version(),
        torch_version=_version("torch"),
        transformers_version=_version("transformers"),
        llem_version=__version__,
        git_commit=commit,
        git_dirty=dirty,
    )


def _git_state(checkout: Path) -> tuple[str | None, bool | None]:
    """Commit and dirtiness of the llem checkout, if llem runs from one."""
    if not (checkout / ".git").exists() or not (checkout / "llem").is_dir():
        return None, None
    try:
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())
