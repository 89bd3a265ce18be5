"""Starting or joining Ray, the same way for every job.

``ray.address`` unset starts a private single-node Ray on this machine, bound to the loopback
interface only (a laptop run never listens on the network); ``auto`` or ``HOST:PORT`` joins a
running cluster (``ray job submit`` sets ``RAY_ADDRESS`` for its entrypoint, which ``auto`` picks up).

Two things a local Ray needs besides (docs/reliability.md): ``ray.init`` replaces the process's
SIGTERM handler with one that exits from wherever the main thread is, so a handler the caller had
installed (the CLI's: SIGTERM behaves like Ctrl-C) is put back; and the daemons that would outlive
a driver killed with ``kill -9`` are followed by a parent-death watchdog
(``sfray.distributed.watchdog``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from sfray.config.schema import RayConfig
from sfray.distributed.watchdog import start_watchdog

#: With this set to 0, Ray resolves "this node" to 127.0.0.1 instead of the first non-loopback
#: interface (ray/_private/services.py, get_node_ip_address), so every local daemon binds to loopback.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def use_loopback() -> None:
    """Make a local Ray (this process and the daemons it starts) bind to 127.0.0.1 only.

    The daemons read the variable when they start; this process read it when ``ray`` was
    imported, so the constant is set too (``get_node_ip_address`` reads it at call time).
    """
    from ray._private import ray_constants

    os.environ[_LOOPBACK_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


@contextmanager
def ray_session(cfg: RayConfig, default_num_cpus: int | None = None, *,
                log_to_driver: bool = True) -> Iterator[bool]:
    """Make sure Ray is initialised; shut it down afterwards only if we started it.

    A local Ray gets ``ray.num_cpus`` logical CPUs, else ``default_num_cpus`` (the job's estimate
    of what its actors plus one write task need; logical CPUs may exceed the cores). Yields True
    when this call started a local Ray. ``log_to_driver=False`` keeps the workers' output in Ray's
    log files (a job that reports worker errors itself, with their log file, shows no stack dumps).
    """
    if ray.is_initialized():
        yield False
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS") or None
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    with contextlib.ExitStack() as stack:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=log_to_driver)
        else:
            use_loopback()
            ray.init(
                num_cpus=cfg.num_cpus or default_num_cpus,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=log_to_driver,
                configure_logging=True,
            )
            stack.enter_context(start_watchdog())
        stack.callback(ray.shutdown)  # before the watchdog hears "done"
        if main and callable(previous):
            signal.signal(signal.SIGTERM, previous)
        yield not address
