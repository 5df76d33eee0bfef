"""A multi-host farm on a real local Dask cluster: `edgesdk farm scheduler` and two `edgesdk
farm worker` processes, each owning different emulated boards (declared as worker resources),
all speaking mutual TLS with the certificates of `edgesdk farm certs`. Every job runs on the
worker that owns its board; a board that no worker owns fails fast with a clear error. Issue 13,
hole 2: a client without the farm's certificates (none, or another CA's) cannot talk to the
scheduler or a worker, the processes listen on loopback only, and an unauthenticated cluster
is refused unless asked for."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from farm_support import board_table, write_farm

from sdk.cli import main
from sdk.cli.exit_codes import ENVIRONMENT
from sdk.devices.emulated import EmulatedBoard
from sdk.devices.farm import Farm
from sdk.devices.farm.security import (
    FarmCerts,
    FarmSecurityError,
    InsecureFarmWarning,
    cluster_security,
    make_certs,
)

distributed = pytest.importorskip("distributed", reason="needs the [farm] extra")
psutil = pytest.importorskip("psutil", reason="needs the [farm] extra")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask-farm")
    boards = [EmulatedBoard(name=n, arch=a, root=root / n) for n, a in
              (("a1", "aarch64"), ("a2", "armv7"), ("b1", "aarch64"))]
    procs: list[subprocess.Popen] = []
    try:
        for b in boards:
            b.start()
        farm_file = write_farm(root / "farm.toml", {
            "a1": board_table(boards[0], host="lab-a"),
            "a2": board_table(boards[1], host="lab-a"),
            "b1": board_table(boards[2], host="lab-b", max_jobs=2),
            "b2": {"transport": "local", "workdir": str(root / "b2-work"), "host": "lab-b"},
            "orphan": {"transport": "local", "workdir": str(root / "orphan"), "host": "lab-c"},
        }, defaults={"runs": 5, "warmup": 1, "min_duration": 0.05},
            farm={"retry_backoff": 0.1, "quarantine_after": 2, "health_timeout": 20})
        certs = root / "certs"
        assert main(["farm", "certs", str(certs)]) == 0
        port = _free_port()
        address = f"tls://127.0.0.1:{port}"
        env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        log = open(root / "cluster.log", "wb")  # noqa: SIM115 - closed below
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "sdk", "farm", "scheduler", "--certs", str(certs),
             "--port", str(port)],
            stdout=log, stderr=log, start_new_session=True, env=env))
        for host in ("lab-a", "lab-b"):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "sdk", "farm", "worker", "--farm", str(farm_file),
                 "--scheduler", address, "--host", host, "--name", f"worker-{host}",
                 "--certs", str(certs)],
                stdout=log, stderr=log, start_new_session=True, env=env))
        client = distributed.Client(address, timeout=60, set_as_default=False,
                                    security=FarmCerts(certs).security("client"))
        try:
            client.wait_for_workers(2, timeout=120)
            yield farm_file, client, root
        finally:
            client.close()
        log.close()
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for b in boards:
            b.stop()


def test_jobs_run_on_the_worker_that_owns_the_board(cluster, mlp_models):
    farm_file, client, _ = cluster
    resources = {w["name"]: w["resources"]
                 for w in client.scheduler_info(n_workers=-1)["workers"].values()}
    assert resources == {"worker-lab-a": {"board-a1": 1.0, "board-a2": 1.0},
                         "worker-lab-b": {"board-b1": 2.0, "board-b2": 1.0}}
    farm = Farm(farm_file, scheduler=client)
    models = [mlp_models["int8"], mlp_models["ternary"]]
    run = farm.profile(models, boards="host:lab-a,host:lab-b", progress=False)
    assert run.backend == "dask" and len(run.results) == 8
    for r in run.results:
        assert r.ok, f"{r.model.name} @ {r.board}: {r.error}"
        owner = "worker-lab-a" if r.board in ("a1", "a2") else "worker-lab-b"
        assert r.executed_by == owner
        assert r.profile.latency.runs >= 5
    # the models travelled to the workers as bytes; the results came back to this process's
    # database
    assert len(farm.results(run="latest")) == 8


def test_validation_jobs_run_on_the_owning_workers(cluster, mlp_models):
    farm_file, client, _ = cluster
    farm = Farm(farm_file, scheduler=client)
    run = farm.validate([mlp_models["int8"]], samples=4, boards="a2,b1", progress=False)
    assert run.backend == "dask" and len(run.results) == 2
    for r in run.results:
        assert r.ok and r.kind == "validate", f"{r.board}: {r.error}"
        assert r.executed_by == ("worker-lab-a" if r.board == "a2" else "worker-lab-b")
        assert r.validation.exact and r.validation.samples == 4
    assert len(farm.results(run="latest", kind="validate")) == 2


def test_board_without_a_worker_fails_with_a_clear_error(cluster, mlp_models):
    farm_file, client, _ = cluster
    run = Farm(farm_file, scheduler=client).profile([mlp_models["int8"]],
                                                     boards="orphan,b2", progress=False)
    orphan, b2 = (run.get("mlp_int8.tflite", name) for name in ("orphan", "b2"))
    assert b2 is not None and b2.ok
    assert orphan is not None and not orphan.ok and orphan.error_type == "quarantined"
    assert "no Dask worker owns board orphan" in (orphan.error or "")
    assert "edgesdk farm worker" in (orphan.error or "")
    assert run.quarantined == ["orphan"]


def test_status_asks_the_owning_workers(cluster):
    farm_file, client, root = cluster
    # by address, with the farm's certificates (a client of its own)
    status = {b.name: b for b in Farm(farm_file, scheduler=client.scheduler.address,
                                      certs=root / "certs").status()}
    assert all(status[n].healthy for n in ("a1", "a2", "b1", "b2"))
    assert status["a2"].summary.startswith("armeabi-v7a")
    assert status["orphan"].healthy is False
    assert "no Dask worker owns board orphan" in (status["orphan"].error or "")


def test_worker_cli_needs_boards(cluster, tmp_path):
    farm_file, _, _ = cluster
    result = subprocess.run([sys.executable, "-m", "sdk", "farm", "worker", "--farm",
                             str(farm_file), "--scheduler", "tcp://127.0.0.1:1", "--host",
                             "nowhere"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "would own no boards" in result.stderr
    assert Path(farm_file).is_file()


async def _identity(address: str, connection_args: dict) -> dict:
    """Ask a scheduler or worker who it is (any handler, `run` included, is as reachable)."""
    from distributed.core import rpc

    async with rpc(address, connection_args=connection_args, timeout=5) as remote:
        return await remote.identity()


def test_unauthenticated_clients_cannot_reach_the_cluster(cluster, tmp_path):
    import asyncio
    import ssl

    _, client, root = cluster
    info = client.scheduler_info(n_workers=-1)
    targets = [client.scheduler.address, *info["workers"]]
    assert len(targets) == 3 and all(t.startswith("tls://127.0.0.1:") for t in targets)
    good = FarmCerts(root / "certs").security("client").get_connection_args("client")
    other_ca = make_certs(tmp_path / "other").security("client")
    other = other_ca.get_connection_args("client")
    # TLS that trusts the farm's CA but shows no certificate of its own
    anonymous = ssl.create_default_context(cafile=str(root / "certs" / "ca.pem"))
    anonymous.check_hostname = False
    attackers = {"plain tcp": (lambda t: t.replace("tls://", "tcp://"), {}),
                 "tls, no client certificate": (str, {"ssl_context": anonymous,
                                                      "require_encryption": True}),
                 "another CA's certificates": (str, other)}
    for target in targets:
        # the farm's own certificates get an answer: the attacks below would too on a plain
        # cluster (the farm's before this fix)
        assert asyncio.run(_identity(target, good))["type"] in ("Scheduler", "Worker")
        for address, args in attackers.values():
            with pytest.raises((OSError, TimeoutError)):
                asyncio.run(_identity(address(target), args))
    # a whole client without certificates (or with another CA's) cannot connect, so it can
    # submit nothing
    for address, security in ((client.scheduler.address.replace("tls://", "tcp://"), None),
                              (client.scheduler.address, other_ca)):
        with pytest.raises((OSError, TimeoutError)):
            distributed.Client(address, timeout=5, set_as_default=False, security=security)


def test_scheduler_and_workers_listen_on_loopback_only(cluster):
    _, client, _ = cluster
    info = client.scheduler_info(n_workers=-1)
    pids = list(client.run(os.getpid).values())
    pids.append(client.run_on_scheduler(os.getpid))
    assert len(set(pids)) == 3 and len(info["workers"]) == 2
    for pid in pids:
        listening = [c.laddr for c in psutil.Process(pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening, pid
        assert {a.ip for a in listening} == {"127.0.0.1"}, (pid, listening)


def test_unauthenticated_cluster_is_refused_unless_asked_for(tmp_path, cluster, mlp_models):
    farm_file, _, _ = cluster
    for verb in (["worker", "--farm", str(farm_file), "--host", "lab-a", "--scheduler",
                  "tcp://127.0.0.1:1"], ["scheduler", "--port", str(_free_port())]):
        result = subprocess.run([sys.executable, "-m", "sdk", "farm", *verb],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == ENVIRONMENT.code, result.stderr[-2000:]
        assert "without authentication" in result.stderr and "--insecure" in result.stderr
    with pytest.raises(FarmSecurityError, match="edgesdk farm certs"):
        Farm(farm_file, scheduler="tcp://127.0.0.1:1").profile([mlp_models["int8"]],
                                                               progress=False)
    with pytest.warns(InsecureFarmWarning, match="WITHOUT TLS"):
        assert cluster_security(None, "client", allow_insecure=True) is None


def test_farm_certs(tmp_path, capsys):
    folder = tmp_path / "certs"
    assert main(["farm", "certs", str(folder), "--host", "lab-a", "--host", "10.0.0.7"]) == 0
    assert (folder.stat().st_mode & 0o777) == 0o700
    for role in ("scheduler", "worker", "client"):
        assert (folder / f"{role}-key.pem").stat().st_mode & 0o777 == 0o600
        assert FarmCerts(folder).check(role)
    assert not list(folder.glob("ca-key*")) and not list(folder.glob("ca.key"))
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((folder / "worker.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "lab-a" in names.get_values_for_type(x509.DNSName)
    assert main(["farm", "certs", str(folder)]) == 2  # no silent overwrite
    assert "--force" in capsys.readouterr().err
    # farm.toml's [farm] certs, relative to the file
    farm_file = write_farm(tmp_path / "farm.toml", {"a": {"transport": "local"}},
                           farm={"certs": "certs"})
    assert Farm(farm_file).certs == folder
    from sdk.devices.farm.inventory import FarmConfigError, parse_farm

    with pytest.raises(FarmConfigError, match=r"field 'farm\.certs'"):
        parse_farm({"farm": {"certs": 3}, "boards": {"a": {"transport": "local"}}})
    (folder / "client-key.pem").chmod(0o644)
    with pytest.raises(FarmSecurityError, match="readable by others"):
        FarmCerts(folder).security("client")


def test_insecure_cluster_runs_only_when_asked_for(tmp_path, mlp_models):
    """--insecure is honoured (with a warning) by scheduler, worker and client alike."""
    farm_file = write_farm(tmp_path / "farm.toml", {
        "here": {"transport": "local", "workdir": str(tmp_path / "work"), "host": "lab"}},
        defaults={"runs": 3, "warmup": 1, "min_duration": 0.05})
    port = _free_port()
    log = open(tmp_path / "cluster.log", "wb")  # noqa: SIM115 - closed below
    procs = [subprocess.Popen(
        [sys.executable, "-m", "sdk", "farm", "scheduler", "--insecure", "--port", str(port)],
        stdout=log, stderr=log, start_new_session=True)]
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "sdk", "farm", "worker", "--farm", str(farm_file),
             "--scheduler", f"127.0.0.1:{port}", "--host", "lab", "--insecure"],
            stdout=log, stderr=log, start_new_session=True))
        with pytest.warns(InsecureFarmWarning):
            farm = Farm(farm_file, scheduler=f"tcp://127.0.0.1:{port}", allow_insecure=True)
            deadline = time.monotonic() + 120
            while not farm.status()[0].healthy:  # until the worker has joined
                assert time.monotonic() < deadline, "the worker did not join"
                time.sleep(0.5)
            run = farm.profile([mlp_models["int8"]], progress=False)
        (r,) = run.results
        assert r.ok and run.backend == "dask", r.error
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()
    text = (tmp_path / "cluster.log").read_text()
    assert text.count("WITHOUT TLS") == 2  # scheduler and worker warned
