"""Session-wide fixtures: one local Ray runtime (loopback only) shared by the modules that ask for it.

Starting Ray costs several seconds of a 2-core machine plus its prestarted workers, so the modules
that only need *a* local Ray request ``shared_ray`` and share one start. Any other module gets a
process without a driver-level Ray: the autouse ``_no_foreign_ray`` shuts the shared one down
before its first test, so a module that calls ``ray.init`` itself, or runs sfray's CLI in-process
(which starts a private Ray only when none is running), behaves exactly as if it ran alone.
Subprocesses (``sfray generate``, ``ray start --head``) never join this Ray: they get no
``RAY_ADDRESS`` from it.
"""

from __future__ import annotations

import pytest

#: Logical CPUs of the shared Ray: enough for its largest user (two Ray Train workers plus the
#: controller and a stream actor in tests/distributed/test_train_ray.py).
SHARED_RAY_CPUS = 4


class _SharedRay:
    """Starts the shared Ray on demand and stops it when a module that does not share it comes."""

    def __init__(self) -> None:
        self.started = False

    def ensure(self) -> None:
        import ray

        from sfray.distributed.runtime import use_loopback

        if self.started and ray.is_initialized():
            return
        if ray.is_initialized():  # a module's own Ray left running: not ours to reuse
            raise RuntimeError("a Ray runtime not started by the shared_ray fixture is still running")
        use_loopback()
        ray.init(num_cpus=SHARED_RAY_CPUS, include_dashboard=False, log_to_driver=False)
        self.started = True

    def release(self) -> None:
        if not self.started:
            return
        import ray

        ray.shutdown()
        self.started = False


_SHARED = _SharedRay()


@pytest.fixture(scope="session")
def _shared_ray_owner():
    yield _SHARED
    _SHARED.release()


@pytest.fixture(scope="module")
def shared_ray(_shared_ray_owner) -> None:
    """A local loopback Ray with ``SHARED_RAY_CPUS`` logical CPUs, shared across modules."""
    _shared_ray_owner.ensure()


@pytest.fixture(autouse=True, scope="module")
def _no_foreign_ray(request, _shared_ray_owner):
    """Before a module whose first test does not share the Ray, shut the shared one down."""
    if "shared_ray" not in request.fixturenames:
        _shared_ray_owner.release()
    yield
