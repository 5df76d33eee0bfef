"""Multi-host farms on Dask distributed (the `[farm]` extra).

When boards hang off several hosts (phones on USB), each host runs a Dask worker that declares
its boards as worker resources (`board-NAME = max_jobs`): `edgesdk farm worker --farm farm.toml
--scheduler tcp://sched:8786 --host lab-a` (the boards whose `host` is "lab-a"). Every health
check and job of a board asks for one unit of its resource, so it runs on the host that owns the
board, and never more at once than the board allows.

The scheduling policy (leases, retries, quarantine) and the results database stay in the process
that calls `Farm.profile`; workers only run `worker.check_board` / `worker.run_job` and send
their outcomes back. Models (and validation inputs) travel to the workers as bytes, scattered
once per file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sdk.base.errors import EdgeSDKError, UsageError
from sdk.devices.farm import worker
from sdk.devices.farm.inventory import BoardConfig, FarmConfig
from sdk.devices.farm.jobs import Job
from sdk.devices.farm.security import cluster_security, scheduler_address


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise EdgeSDKError("multi-host farms need Dask: pip install 'edgesdk[farm]'") from exc
    return distributed


def _lost(error: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": f"Dask: {type(error).__name__}: {error}",
            "error_type": "worker_lost", "transient": True, "board_fault": True}


class DaskExecutor:
    """Runs health checks and jobs on the Dask workers that own the boards."""

    name = "dask"

    def __init__(self, client: Any, boards: list[BoardConfig], *, own_client: bool):
        self.client = client
        self.own_client = own_client
        self.boards = {b.name: b for b in boards}
        self._pool = ThreadPoolExecutor(max_workers=sum(b.max_jobs for b in boards) + 4,
                                        thread_name_prefix="edgesdk-farm-dask")
        self._models: dict[str, Any] = {}
        self._model_lock = asyncio.Lock()

    @classmethod
    async def connect(cls, scheduler: Any, boards: list[BoardConfig], *,
                      certs: str | os.PathLike[str] | None = None,
                      allow_insecure: bool = False, timeout: float = 30.0) -> DaskExecutor:
        """A client of the scheduler: mutual TLS with the farm's certificates (`certs`);
        plain TCP only with `allow_insecure` (else FarmSecurityError). A `distributed.Client`
        given as `scheduler` is used as it is, if it speaks TLS (or `allow_insecure`)."""
        distributed = _distributed()
        if isinstance(scheduler, distributed.Client):
            address = str(getattr(scheduler.scheduler, "address", ""))
            if not address.startswith("tls://"):
                cluster_security(None, "client", allow_insecure=allow_insecure,
                                 what=f"the Dask scheduler at {address or '?'}")
            return cls(scheduler, boards, own_client=False)
        security = cluster_security(certs, "client", allow_insecure=allow_insecure,
                                    what=f"the Dask scheduler at {scheduler}")
        address = scheduler_address(str(scheduler), secure=security is not None)
        loop = asyncio.get_running_loop()
        try:
            client = await loop.run_in_executor(
                None, lambda: distributed.Client(address, timeout=timeout, security=security,
                                                 set_as_default=False))
        except (OSError, TimeoutError) as exc:
            hint = " (is it the farm's scheduler, with certificates of the same `farm certs`?)" \
                if security is not None else ""
            raise EdgeSDKError(f"cannot reach the Dask scheduler at {address}{hint}: "
                               f"{exc}") from exc
        return cls(client, boards, own_client=True)

    # ------------------------------------------------------------------ helpers
    def _owners(self, board: BoardConfig) -> list[str]:
        """Addresses of the workers that declare the board's resource."""
        info = self.client.scheduler_info(n_workers=-1)
        return [address for address, w in info.get("workers", {}).items()
                if w.get("resources", {}).get(board.resource, 0) > 0]

    async def _wait(self, future: Any, seconds: float, what: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, lambda: future.result(seconds))
        except TimeoutError:
            future.cancel()
            return {"ok": False, "error": f"{what} gave no answer within {seconds:g} s",
                    "error_type": "timeout", "transient": True, "board_fault": True}
        except Exception as exc:  # the worker died, the link to it dropped...
            return _lost(exc)

    async def _blob(self, sha256: str, path: str) -> Any:
        """A file's bytes on the cluster (scattered once per content)."""
        async with self._model_lock:
            if sha256 not in self._models:
                data = Path(path).read_bytes()
                loop = asyncio.get_running_loop()
                self._models[sha256] = await loop.run_in_executor(
                    self._pool, lambda: self.client.scatter(data, hash=False))
            return self._models[sha256]

    # ------------------------------------------------------------------ the executor API
    async def health(self, board: BoardConfig, timeout: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        owners = await loop.run_in_executor(self._pool, self._owners, board)
        if not owners:
            return {"ok": False, "error_type": "no_worker", "transient": False,
                    "board_fault": True,
                    "error": f"no Dask worker owns board {board.name} (resource "
                             f"{board.resource}); start one on its host: edgesdk farm worker "
                             f"--boards name:{board.name} --scheduler ADDRESS"}
        future = self.client.submit(worker.check_board, board.to_dict(), timeout,
                                    resources={board.resource: 1}, pure=False,
                                    key=f"health-{board.name}-{os.urandom(4).hex()}")
        return await self._wait(future, timeout + 15, "health check")

    async def run(self, board: BoardConfig, job: Job, timeout: float) -> dict[str, Any]:
        try:
            model = await self._blob(job.model.sha256, job.model.path)
            inputs = None if job.inputs is None else \
                await self._blob(job.inputs.sha256, job.inputs.path)
        except OSError as exc:
            return {"ok": False, "error": f"cannot read the files of {job.label}: {exc}",
                    "error_type": "OSError", "transient": False, "board_fault": False}
        future = self.client.submit(worker.run_job, board.to_dict(), job.to_dict(), model,
                                    inputs, resources={board.resource: 1}, pure=False,
                                    key=f"job-{board.name}-{job.key[:12]}-{os.urandom(4).hex()}")
        return await self._wait(future, timeout, "job")

    async def abort(self, board: BoardConfig) -> None:
        loop = asyncio.get_running_loop()

        def close_links() -> None:
            owners = self._owners(board)
            if owners:
                with contextlib.suppress(Exception):
                    self.client.run(worker.abort, board.name, workers=owners)

        await loop.run_in_executor(self._pool, close_links)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()

        def finish() -> None:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self._models.values()))
            if self.own_client:
                with contextlib.suppress(Exception):
                    self.client.close()

        await loop.run_in_executor(self._pool, finish)
        self._pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------- worker side
def worker_resources(boards: list[BoardConfig]) -> dict[str, float]:
    """The Dask resources a worker owning these boards declares: one unit per lease."""
    return {b.resource: float(b.max_jobs) for b in boards}


async def run_worker(config: FarmConfig, boards: list[BoardConfig], scheduler: str, *,
                     name: str | None = None, nthreads: int | None = None,
                     listen: str = "127.0.0.1", certs: str | os.PathLike[str] | None = None,
                     allow_insecure: bool = False, ready: Any = None) -> None:
    """Run a Dask worker (in this process) that owns `boards`, until it is closed. It listens
    on `listen` only (default loopback: give the address the scheduler reaches it at) and
    speaks mutual TLS with the farm's certificates (`certs`, default farm.toml's); without
    certificates it refuses to start unless `allow_insecure`."""
    distributed = _distributed()
    if not boards:
        raise UsageError("this worker would own no boards: check --boards / --host")
    certs = certs if certs is not None else config.settings.certs
    security = cluster_security(certs, "worker", allow_insecure=allow_insecure,
                                what="this farm worker")
    address = scheduler_address(scheduler, secure=security is not None)
    threads = nthreads or sum(b.max_jobs for b in boards) + 1
    async with distributed.Worker(
            address, nthreads=threads, resources=worker_resources(boards),
            name=name or f"edgesdk-farm-{socket.gethostname()}-{os.getpid()}",
            host=_listen_host(listen), security=security, dashboard=False) as w:
        if ready is not None:
            ready(w)
        await w.finished()
    worker.close_all()


async def run_scheduler(*, host: str = "127.0.0.1", port: int = 8786,
                        certs: str | os.PathLike[str] | None = None,
                        allow_insecure: bool = False, ready: Any = None) -> None:
    """Run the farm's Dask scheduler (in this process) on `host:port` (default loopback),
    mutual TLS with the farm's certificates; without them only with `allow_insecure`."""
    distributed = _distributed()
    security = cluster_security(certs, "scheduler", allow_insecure=allow_insecure,
                                what="this farm scheduler")
    async with distributed.Scheduler(host=_listen_host(host), port=port, security=security,
                                     protocol="tls" if security is not None else "tcp",
                                     dashboard=False) as s:
        if ready is not None:
            ready(s)
        await s.finished()


def _listen_host(host: str) -> str:
    """A listening host; every interface only when named ("0.0.0.0", "::")."""
    host = host.strip()
    if not host:
        raise EdgeSDKError("give an address to listen on (default 127.0.0.1)")
    return host
