"""Stand-ins for hardware interfaces (NVML, powercap sysfs) replaying scripted traces."""
