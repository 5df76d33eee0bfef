"""`edgesdk farm ...`: profile models on a board farm described by farm.toml.

    edgesdk farm profile model_int8.tflite model_ternary.tflite --farm farm.toml \\
        --boards tag:pi4,name:pixel7 --runs 100 --report out/
    edgesdk farm validate model_int8.tflite --farm farm.toml --inputs x.npy --report out/
    edgesdk farm status --farm farm.toml
    edgesdk farm results --farm farm.toml --run latest
    edgesdk farm certs certs/                  # the farm's CA + TLS certificates
    edgesdk farm scheduler --certs certs/ --listen 10.0.0.5
    edgesdk farm worker --farm farm.toml --scheduler tls://10.0.0.5:8786 --host lab-a \\
        --certs certs/ --listen 10.0.0.7

The farm file defaults to $EDGESDK_FARM, else ./farm.toml.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from sdk.cli.exit_codes import CHECK_FAILED
from sdk.cli.logs import stderr_is_terminal
from sdk.cli.output import emit_json, message, report, table


def _farm_path(args: argparse.Namespace) -> str:
    return args.farm or os.environ.get("EDGESDK_FARM") or "farm.toml"


def _farm(args: argparse.Namespace) -> Any:
    from sdk.devices.farm import Farm

    return Farm(_farm_path(args), database=args.db,
                scheduler=getattr(args, "scheduler", None), certs=getattr(args, "certs", None),
                allow_insecure=getattr(args, "insecure", False))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--farm", metavar="FARM.toml", help="the farm inventory (default: "
                   "$EDGESDK_FARM or ./farm.toml)")
    p.add_argument("--db", metavar="FILE", help="results database (default: from farm.toml, "
                   "else FARM-results.sqlite beside it)")


def _progress_mode(args: argparse.Namespace) -> Any:
    """The farm's progress: False (none: -q / --no-progress), None (live, on a terminal) or
    "log" (a line per job)."""
    if args.no_progress or args.quiet:
        return False
    return None if stderr_is_terminal() else "log"


def _report_written(args: argparse.Namespace) -> None:
    if args.report:
        message(f"report: {os.path.join(args.report, 'report.html')} (+ report.json, "
                "report.md)")


def _profile(args: argparse.Namespace) -> int:
    farm = _farm(args)
    progress = _progress_mode(args)
    run = farm.profile(args.models, boards=args.boards, runs=args.runs, warmup=args.warmup,
                       min_duration_s=args.min_duration, threads=args.threads, cpus=args.cpus,
                       layers=args.layers, timeout=args.timeout, retries=args.retries,
                       fresh=args.fresh, reference=args.reference, report=args.report,
                       progress=progress, layer_board=args.layer_board)
    if args.json:
        emit_json(run.to_dict())
    else:
        report(run.sections())
    _report_written(args)
    return 0 if not run.failed else CHECK_FAILED.code


def _validate(args: argparse.Namespace) -> int:
    farm = _farm(args)
    progress = _progress_mode(args)
    run = farm.validate(args.models, args.inputs, samples=args.samples, seed=args.seed,
                        boards=args.boards, threads=args.threads, timeout=args.timeout,
                        retries=args.retries, fresh=args.fresh, min_sqnr_db=args.min_sqnr,
                        min_top1=args.min_top1 / 100.0, reference=args.reference,
                        report=args.report, progress=progress)
    if args.json:
        emit_json(run.to_dict())
    else:
        report(run.sections())
    _report_written(args)
    return 0 if not run.failed and not run.disagreeing else CHECK_FAILED.code


def _status(args: argparse.Namespace) -> int:
    farm = _farm(args)
    boards = farm.status(args.boards, check=not args.no_check)
    code = 0 if all(b.healthy is not False for b in boards) else CHECK_FAILED.code
    if args.json:
        emit_json([b.to_dict() for b in boards])
        return code
    rows = []
    for b in boards:
        if b.disabled:
            health = "disabled"
        elif not b.checked:
            health = "-"
        else:
            health = "ok" if b.healthy else "DOWN"
        tags = ",".join(f"{k}={v}" if v else k for k, v in b.tags.items())
        temp = "-" if b.temperature_c is None else f"{b.temperature_c:.0f}"
        rows.append((b.name, f"{b.transport}:{b.address}" if b.address else b.transport,
                     tags or "-", b.host or "-", health, b.governor or "-", temp,
                     f"{b.results_ok}/{b.results_failed}",
                     "QUARANTINED" if b.quarantined_in_last_run else ""))
    table(None, ("board", "device", "tags", "host", "health", "governor", "temp C",
                 "ok/failed", "last run"), rows)
    for b in boards:
        if b.error:
            print(f"  {b.name}: {b.error}")
        elif b.summary:
            print(f"  {b.name}: {b.summary}")
        if b.quarantined_in_last_run:
            print(f"  {b.name}: quarantined in the last run: {b.quarantined_in_last_run}")
    return code


def _results(args: argparse.Namespace) -> int:
    from sdk.devices.farm.results import format_ms

    farm = _farm(args)
    if args.report:
        from sdk.devices.farm.report import write_report

        run = farm.run_record(args.run or "latest")
        paths = write_report(run, args.report, layer_board=args.layer_board)
        message(f"report: {paths.html}")
    results = farm.results(model=args.model, board=args.board, run=args.run,
                           status="failed" if args.failed else None, kind=args.kind)
    if args.json:
        emit_json([r.to_dict() for r in results])
        return 0
    from sdk.devices.farm.jobs import VALIDATE
    from sdk.devices.farm.results import validation_rows

    checks = [r for r in results if r.kind == VALIDATE]
    if checks:
        report([validation_rows(checks)])
    rows = []
    for r in results:
        if r.kind == VALIDATE:
            continue
        p = r.profile
        rows.append((r.model.name, r.board, r.model.precision,
                     format_ms(p.latency.p50_ms if p else None),
                     format_ms(p.latency.p90_ms if p else None),
                     str(p.latency.runs) if p else "-",
                     (p.governor or "-") if p else "-",
                     f"{p.temperature_c:.0f}" if p and p.temperature_c is not None else "-",
                     str(r.run_id), "ok" if r.ok else f"FAILED ({r.error_type})"))
    if rows or not checks:
        table(None, ("model", "board", "precision", "p50 ms", "p90 ms", "runs", "governor",
                     "temp C", "run", "status"), rows)
    for r in results:
        if not r.ok:
            print(f"  {r.model.name} @ {r.board}: {r.error}")
    print(f"  {len(results)} results in {farm.database}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    import asyncio

    from sdk.devices.farm.dask_backend import run_worker
    from sdk.devices.farm.inventory import load_farm

    config = load_farm(_farm_path(args))
    selectors = list(args.boards or [])
    if args.host:
        selectors.append(f"host:{args.host}")
    boards = config.select(selectors or None)
    print(f"farm worker: boards {', '.join(b.name for b in boards)}; scheduler "
          f"{args.scheduler}; listening on {args.listen}", file=sys.stderr, flush=True)
    asyncio.run(run_worker(config, boards, args.scheduler, name=args.name,
                           nthreads=args.nthreads, listen=args.listen, certs=args.certs,
                           allow_insecure=args.insecure))
    return 0


def _scheduler(args: argparse.Namespace) -> int:
    import asyncio

    from sdk.devices.farm.dask_backend import run_scheduler

    certs = args.certs
    if certs is None and (args.farm or os.environ.get("EDGESDK_FARM")):
        from sdk.devices.farm.inventory import load_farm

        certs = load_farm(_farm_path(args)).settings.certs

    def ready(scheduler: Any) -> None:
        print(f"farm scheduler: {scheduler.address}", file=sys.stderr, flush=True)

    asyncio.run(run_scheduler(host=args.listen, port=args.port, certs=certs,
                              allow_insecure=args.insecure, ready=ready))
    return 0


def _certs(args: argparse.Namespace) -> int:
    from sdk.devices.farm.security import ROLES, make_certs

    certs = make_certs(args.folder, hosts=args.host or (), days=args.days, force=args.force)
    if args.json:
        emit_json({"folder": str(certs.folder), "ca": str(certs.ca),
                   "roles": {role: {"cert": str(certs.cert(role)), "key": str(certs.key(role))}
                             for role in ROLES}})
        return 0
    print(f"farm certificates in {certs.folder}: {certs.ca.name} (the farm's CA; its key is "
          "not kept)")
    for role in ROLES:
        print(f"  {role}: {certs.cert(role).name} + {certs.key(role).name} (0600)")
    print("copy the folder (ca.pem and the files of each role) to the scheduler, worker and "
          "client hosts over a trusted channel; pass --certs DIR or set `certs = \"DIR\"` in "
          "farm.toml's [farm] table")
    return 0


def _security_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--certs", metavar="DIR", help="the farm's TLS certificates (`edgesdk farm "
                   "certs DIR`; default: farm.toml's [farm] certs)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a Dask cluster without TLS or authentication (anyone who "
                        "reaches it runs code on the workers)")


def register(sub: argparse._SubParsersAction) -> None:
    farm = sub.add_parser("farm", help="profile and validate models on a board farm "
                          "(farm.toml)",
                          description=__doc__.split("\n\n")[0])
    verbs = farm.add_subparsers(dest="farm_command", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("profile", help="profile models on the farm's boards in parallel")
    p.add_argument("models", nargs="+", metavar="MODEL")
    _common(p)
    p.add_argument("--boards", action="append", metavar="SEL",
                   help="name:X, group:G, tag:T, tag:KEY=VALUE, host:H, all (comma-separated; "
                        "default: all enabled boards)")
    p.add_argument("--runs", type=int, help="minimum timed runs per job (default: farm.toml)")
    p.add_argument("--warmup", type=int, help="untimed runs first")
    p.add_argument("--min-duration", type=float, metavar="S",
                   help="minimum seconds of timed runs (with --runs: both must be met)")
    p.add_argument("--threads", type=int)
    p.add_argument("--cpus", help="pin runs: a taskset list, 'big' or 'little'")
    p.add_argument("--layers", action="store_true",
                   help="per-layer times too (edge-run and benchmark_model profile layers; "
                        "litert-python times every operator alone)")
    p.add_argument("--layer-board", help="the board whose layers the report shows first")
    p.add_argument("--timeout", type=float, metavar="S", help="per-job time limit")
    p.add_argument("--retries", type=int, help="retries of a job after transient faults")
    p.add_argument("--fresh", action="store_true",
                   help="measure everything again, even what the database has")
    p.add_argument("--reference", metavar="FLOAT.tflite",
                   help="float model to measure fidelity against (for models without an export "
                        "report)")
    p.add_argument("--report", metavar="DIR", help="write report.html/.json/.md there")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler (tls://host:8786) whose workers own the boards")
    _security_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress (as -q)")
    p.set_defaults(func=_profile)

    v = verbs.add_parser("validate", help="compare every board's outputs with this host's "
                         "(same inputs, every model)")
    v.add_argument("models", nargs="+", metavar="MODEL")
    _common(v)
    v.add_argument("--boards", action="append", metavar="SEL",
                   help="name:X, group:G, tag:T, tag:KEY=VALUE, host:H, all (comma-separated; "
                        "default: all enabled boards)")
    v.add_argument("--inputs", metavar="X.npy|X.npz",
                   help="samples on axis 0 (.npz: one array per model input, by name); "
                        "default: --samples seeded random inputs made for each model")
    v.add_argument("--samples", type=int, metavar="N",
                   help="with --inputs: the first N samples; without: N random samples "
                        "(default 16)")
    v.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    v.add_argument("--threads", type=int)
    v.add_argument("--min-sqnr", type=float, default=30.0, metavar="DB",
                   help="outputs that are not bit-exact pass with at least this SQNR "
                        "(default 30)")
    v.add_argument("--min-top1", type=float, default=99.0, metavar="PCT",
                   help="... and at least this top-1 agreement in %% (default 99)")
    v.add_argument("--timeout", type=float, metavar="S", help="per-job time limit")
    v.add_argument("--retries", type=int, help="retries of a job after transient faults")
    v.add_argument("--fresh", action="store_true",
                   help="validate everything again, even what the database has")
    v.add_argument("--reference", metavar="FLOAT.tflite",
                   help="float model to measure fidelity against (report's model table)")
    v.add_argument("--report", metavar="DIR", help="write report.html/.json/.md there")
    v.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler (tls://host:8786) whose workers own the boards")
    _security_flags(v)
    v.add_argument("--no-progress", action="store_true", help="no progress (as -q)")
    v.set_defaults(func=_validate)

    s = verbs.add_parser("status", help="the boards, health-checked now, and their results")
    _common(s)
    s.add_argument("--boards", action="append", metavar="SEL")
    s.add_argument("--no-check", action="store_true", help="do not contact the boards")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="check through the Dask workers that own the boards")
    _security_flags(s)
    s.set_defaults(func=_status)

    r = verbs.add_parser("results", help="results stored in the farm's database")
    _common(r)
    r.add_argument("--model", help="file name or SHA-256 (prefix)")
    r.add_argument("--board")
    r.add_argument("--run", help="a run id, or 'latest'")
    r.add_argument("--failed", action="store_true", help="only failures")
    r.add_argument("--kind", choices=("profile", "validate"), help="only profiles or only "
                   "validations")
    r.add_argument("--report", metavar="DIR", help="write the report of that run (default: "
                   "the latest) there")
    r.add_argument("--layer-board", help="the board whose layers the report shows first")
    r.set_defaults(func=_results)

    w = verbs.add_parser("worker", help="run a Dask worker owning this host's boards")
    _common(w)
    w.add_argument("--scheduler", required=True, metavar="ADDRESS")
    w.add_argument("--boards", action="append", metavar="SEL")
    w.add_argument("--host", help="own the boards whose `host` is this")
    w.add_argument("--name", help="worker name")
    w.add_argument("--nthreads", type=int)
    w.add_argument("--listen", default="127.0.0.1", metavar="HOST",
                   help="the address to listen on, that the scheduler reaches this worker at "
                        "(default 127.0.0.1)")
    _security_flags(w)
    w.set_defaults(func=_worker)

    c = verbs.add_parser("scheduler", help="run the farm's Dask scheduler (mutual TLS)")
    c.add_argument("--farm", metavar="FARM.toml", help="read [farm] certs from it")
    c.add_argument("--listen", default="127.0.0.1", metavar="HOST",
                   help="the address to listen on (default 127.0.0.1)")
    c.add_argument("--port", type=int, default=8786)
    _security_flags(c)
    c.set_defaults(func=_scheduler)

    k = verbs.add_parser("certs", help="make the farm's CA and TLS certificates (scheduler, "
                         "workers, clients)")
    k.add_argument("folder", metavar="DIR")
    k.add_argument("--host", action="append", metavar="NAME",
                   help="a host name or IP address the certificates name too (repeatable)")
    k.add_argument("--days", type=int, default=365, help="validity (default 365)")
    k.add_argument("--force", action="store_true", help="replace an existing set")
    k.set_defaults(func=_certs)
