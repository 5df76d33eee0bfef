"""What every atheris harness in tests/fuzz/ shares.

A harness is a script `tests/fuzz/fuzz_<loader>.py` that defines

    seeds() -> dict[str, bytes]        # seed corpus, built in code from the project's test models
    test_one_input(data: bytes) -> None  # feeds one input to the loader

and ends with `harness.main(test_one_input, seeds)`. `test_one_input` lets only
`sdk.base.errors.EdgeSDKError` subclasses escape (use `expect_project_errors`): any other exception,
a hang over libFuzzer's -timeout, or memory over -rss_limit_mb is a finding.

    python tests/fuzz/fuzz_tflite.py --write-seeds DIR   # write the seeds as files, then exit
    python tests/fuzz/fuzz_tflite.py --replay FILE...    # run inputs once, no atheris needed
    python tests/fuzz/fuzz_tflite.py [libFuzzer flags] [CORPUS_DIR...]   # fuzz (atheris)

The driver `tests/fuzz/run.py` runs harnesses with budgets and reports; see README.md.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: where a harness writes {"slowest_s", "slowest_sha1", "slowest_len"} whenever it sees a new
#: slowest input (set by the driver; the input itself is saved beside it as <file>.input)
STATS_ENV = "EDGESDK_FUZZ_STATS"

TestOneInput = Callable[[bytes], None]


def expect_project_errors(load: Callable[[bytes], Any], data: bytes) -> None:
    """Run `load(data)`; an EdgeSDKError is the expected outcome of a bad input, anything
    else propagates (and atheris records it as a crash)."""
    from sdk.base.errors import EdgeSDKError

    with contextlib.suppress(EdgeSDKError):
        load(data)


@contextlib.contextmanager
def instrumented(*modules: str) -> Iterator[None]:
    """Wrap the loader imports: under atheris, when the block ends, every Python function of the
    named packages (default: sdk) that is loaded by then gets coverage instrumentation; without
    atheris (or with --write-seeds / --replay, or EDGESDK_FUZZ_INSTRUMENT=0), a no-op.

    The functions are instrumented in place rather than through atheris.instrument_imports,
    whose import hook cannot see modules loaded by a custom loader, which is how the editable
    install (scikit-build-core's redirect) loads all of sdk: coverage would come from
    flatbuffers alone."""
    yield
    if os.environ.get("EDGESDK_FUZZ_INSTRUMENT", "1") == "0" or \
            {"--write-seeds", "--replay"} & set(sys.argv):
        return
    try:
        import atheris
    except ImportError:
        return
    _instrument_loaded(atheris, modules or ("sdk",))


def _instrument_loaded(atheris: Any, packages: tuple[str, ...]) -> None:
    def wanted(module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in packages)

    done = 0
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and wanted(getattr(obj, "__module__", "") or ""):
            try:
                atheris.instrument_func(obj)
                done += 1
            except Exception as exc:  # a function atheris cannot patch stays uninstrumented
                sys.stderr.write(f"WARNING: not instrumented: {obj.__qualname__}: {exc}\n")
    sys.stderr.write(f"INFO: instrumented {done} functions of {', '.join(packages)}\n")


class _Timed:
    """Wraps test_one_input: records the slowest input seen (time, hash, the bytes)."""

    def __init__(self, fn: TestOneInput, stats_path: str | None):
        self.fn = fn
        self.stats_path = stats_path
        self.slowest = 0.0

    def __call__(self, data: bytes) -> None:
        start = time.perf_counter()
        try:
            self.fn(data)
        finally:
            elapsed = time.perf_counter() - start
            if elapsed > self.slowest:
                self.slowest = elapsed
                self._record(data, elapsed)

    def _record(self, data: bytes, elapsed: float) -> None:
        if not self.stats_path:
            return
        path = Path(self.stats_path)
        Path(str(path) + ".input").write_bytes(data)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"slowest_s": round(elapsed, 6),
                                   "slowest_sha1": hashlib.sha1(data).hexdigest(),
                                   "slowest_len": len(data)}))
        tmp.replace(path)


def write_seeds(seeds: dict[str, bytes], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in sorted(seeds.items()):
        path = folder / f"seed-{name}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def replay(test_one_input: TestOneInput, files: list[str]) -> int:
    """Run each file once; print a line per file; exit status 1 if any raised."""
    status = 0
    for name in files:
        data = Path(name).read_bytes()
        start = time.perf_counter()
        try:
            test_one_input(data)
            outcome = "ok"
        except Exception as exc:  # a finding: report it, go on with the others
            outcome = f"FINDING {type(exc).__name__}: {exc}"
            status = 1
        print(f"{name}: {time.perf_counter() - start:.3f}s {outcome}", flush=True)
    return status


def _args_after(flag: str, argv: list[str]) -> Iterator[str]:
    return iter(argv[argv.index(flag) + 1:])


def main(test_one_input: TestOneInput, seeds: Callable[[], dict[str, bytes]]) -> None:
    argv = sys.argv
    if "--write-seeds" in argv:
        folder = Path(next(_args_after("--write-seeds", argv)))
        written = write_seeds(seeds(), folder)
        print(json.dumps({"seeds": len(written), "folder": str(folder)}))
        return
    if "--replay" in argv:
        sys.exit(replay(test_one_input, list(_args_after("--replay", argv))))
    import atheris

    atheris.Setup(argv, _Timed(test_one_input, os.environ.get(STATS_ENV)))
    atheris.Fuzz()
