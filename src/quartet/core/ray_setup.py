"""Ray setup: a local Ray by default, a cluster with ``--ray-address``.

Offline jobs (reinforcement, corpus decomposition) run on Ray Data. On a laptop :func:`init_ray` starts a private
local instance with the given CPU count; on a cluster pass ``address="auto"`` (inside the cluster) or
``"ray://head:10001"``. Dashboard and usage reporting are off, nothing leaves the machine.
"""

from __future__ import annotations

import os
from typing import Any


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
             quiet: bool = True) -> Any:
    """Initialise Ray once per process and return the ``ray`` module."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    import ray

    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": not quiet, "ignore_reinit_error": True}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
    if quiet:
        try:
            from ray.data import DataContext

            ctx = DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
        except Exception:
            pass
    return ray


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
