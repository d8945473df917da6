"""Build a powercap sysfs tree (``intel-rapl:*`` zones) in a folder, and drive its counters."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MAX_RANGE_UJ = 262_143_328_850


class FakePowercap:
    """A powercap tree whose ``energy_uj`` files the test advances (wrapping like RAPL)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.zones: dict[str, Path] = {}

    def add_zone(self, zone: str, name: str, energy_uj: int = 0,
                 max_range_uj: int = DEFAULT_MAX_RANGE_UJ) -> Path:
        path = self.root / zone
        path.mkdir(parents=True, exist_ok=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
        (path / "energy_uj").write_text(f"{energy_uj}\n")
        (path / "enabled").write_text("1\n")
        self.zones[zone] = path
        return path

    def energy_uj(self, zone: str) -> int:
        return int((self.zones[zone] / "energy_uj").read_text())

    def add_energy(self, zone: str, joules: float) -> None:
        """Let ``joules`` pass through the zone; the counter wraps at its max range."""
        max_range = int((self.zones[zone] / "max_energy_range_uj").read_text())
        value = self.energy_uj(zone) + round(joules * 1e6)
        while value > max_range:
            value -= max_range
        (self.zones[zone] / "energy_uj").write_text(f"{value}\n")


def build_powercap(
    root: Path, packages: int = 1, dram: bool = True, core: bool = True, psys: bool = False,
    energy_uj: int = 1_000_000, max_range_uj: int = DEFAULT_MAX_RANGE_UJ,
) -> FakePowercap:
    """A tree like a server's: package zones with core/uncore/dram sub-zones (and psys)."""
    tree = FakePowercap(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "intel-rapl").mkdir(exist_ok=True)  # the control type folder, not a zone
    for p in range(packages):
        tree.add_zone(f"intel-rapl:{p}", f"package-{p}", energy_uj, max_range_uj)
        sub = 0
        if core:
            tree.add_zone(f"intel-rapl:{p}:{sub}", "core", energy_uj, max_range_uj)
            sub += 1
            tree.add_zone(f"intel-rapl:{p}:{sub}", "uncore", energy_uj, max_range_uj)
            sub += 1
        if dram:
            tree.add_zone(f"intel-rapl:{p}:{sub}", "dram", energy_uj, max_range_uj)
    if psys:
        tree.add_zone(f"intel-rapl:{packages}", "psys", energy_uj, max_range_uj)
    return tree
