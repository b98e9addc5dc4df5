"""Shared, system-agnostic machinery: configs, run folders, progress, seeding, distributed and Ray setup,
atomic I/O, benchmarking and reports. Nothing here imports a system package."""
