"""Run the atheris harnesses in tests/fuzz/ with a budget and report, as JSON, what they found.

    .venv/bin/python tests/fuzz/run.py --time 60             # every harness, 60 s each
    .venv/bin/python tests/fuzz/run.py --runs 1000000 tflite # one harness, a million inputs

Each harness (`fuzz_<name>.py`) runs in its own subprocess: its seeds are written into
`<out>/<name>/corpus` (kept between runs, so the corpus grows), libFuzzer runs with
-timeout (5 s: a slower input is a hang), -rss_limit_mb (the load budget plus slack: more is an
out-of-memory finding) and EDGESDK_MEMORY_BUDGET set to the budget, and findings land in
`<out>/<name>/artifacts`. Printed per harness: executions, executions per second, findings
(crashes, hangs, out-of-memory, with the exception), the slowest input, peak RSS. The exit status
is 1 if any harness had a finding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
#: what libFuzzer names the files of its findings
FINDING_PREFIXES = ("crash-", "timeout-", "oom-", "leak-")
_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.M)
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_COV = re.compile(r"\bcov: (\d+)")


@dataclass
class Finding:
    kind: str  # crash, timeout, oom, leak, or exit (the process died without an artifact)
    artifact: str
    detail: str = ""


@dataclass
class HarnessReport:
    harness: str
    execs: int = 0
    seconds: float = 0.0
    execs_per_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    crashes: int = 0
    slowest_s: float | None = None
    slowest_input: str | None = None
    peak_rss_mb: float = 0.0
    rss_limit_mb: int = 0
    budget: str = ""
    corpus_files: int = 0
    #: coverage points (libFuzzer's "cov") at the end: near zero means no instrumentation
    coverage: int = 0
    exit_status: int = 0
    log: str = ""


def harnesses() -> dict[str, Path]:
    return {p.stem.removeprefix("fuzz_"): p for p in sorted(HERE.glob("fuzz_*.py"))}


def parse_size_mb(text: str) -> int:
    sys.path.insert(0, str(ROOT))
    from sdk.base.limits import parse_size

    return parse_size(text) >> 20


def _exception_detail(log: str) -> str:
    """The last line of the Python traceback atheris prints, or libFuzzer's error line."""
    if "Uncaught Python exception" in log:
        block = log.split("Uncaught Python exception", 1)[1]
        lines = [ln for ln in block.splitlines() if ln.strip()]
        for ln in lines:
            if re.match(r"^\w[\w.]*(Error|Exception|Exit|Interrupt)\b", ln):
                return ln.strip()
        return lines[-1].strip() if lines else ""
    match = re.search(r"ERROR: libFuzzer: (.*)", log)
    return match.group(1).strip() if match else ""


def run_harness(name: str, script: Path, args: argparse.Namespace) -> HarnessReport:
    work = Path(args.out) / name
    corpus, artifacts = work / "corpus", work / "artifacts"
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    corpus.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    budget_mb = parse_size_mb(args.budget)
    rss_limit = budget_mb + args.rss_slack_mb
    env = dict(os.environ, EDGESDK_MEMORY_BUDGET=args.budget,
               EDGESDK_FUZZ_STATS=str(work / "slowest.json"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    report = HarnessReport(harness=name, rss_limit_mb=rss_limit, budget=args.budget,
                           log=str(work / "fuzz.log"))
    (work / "slowest.json").unlink(missing_ok=True)
    subprocess.run([py, str(script), "--write-seeds", str(corpus)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    cmd = [py, str(script), str(corpus), f"-timeout={args.timeout}",
           f"-rss_limit_mb={rss_limit}", f"-artifact_prefix={artifacts}/",
           "-print_final_stats=1"]
    if args.runs:
        cmd.append(f"-runs={args.runs}")
    if args.time:
        cmd.append(f"-max_total_time={args.time}")
    if args.max_len:
        cmd.append(f"-max_len={args.max_len}")
    start = time.monotonic()
    with open(work / "fuzz.log", "wb") as log:
        proc = subprocess.Popen([*FRESH_RSS, *cmd], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        peak = _PeakRss(proc.pid)
        # a watchdog, in case libFuzzer's own limits fail to stop the process
        hard = (args.time or 0) + args.grace + (args.runs or 0) * args.timeout
        watchdog = threading.Timer(hard, lambda: os.killpg(proc.pid, signal.SIGKILL))
        watchdog.start()
        try:
            _, status, _usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
            peak.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    report.seconds = round(time.monotonic() - start, 1)
    report.exit_status = proc.returncode
    report.peak_rss_mb = round(peak.kib / 1024, 1)
    text = (work / "fuzz.log").read_text(errors="replace")
    stats = {k: int(v) for k, v in _STAT.findall(text)}
    done = _DONE.findall(text)
    report.execs = stats.get("number_of_executed_units", int(done[-1][0]) if done else 0)
    report.execs_per_s = round(report.execs / report.seconds, 1) if report.seconds else 0.0
    covs = _COV.findall(text)
    report.coverage = int(covs[-1]) if covs else 0
    if "peak_rss_mb" in stats:
        report.peak_rss_mb = max(report.peak_rss_mb, float(stats["peak_rss_mb"]))
    slowest = work / "slowest.json"
    if slowest.exists():
        info = json.loads(slowest.read_text())
        report.slowest_s = info["slowest_s"]
        report.slowest_input = f"{slowest}.input ({info['slowest_len']} bytes, " \
                               f"sha1 {info['slowest_sha1']})"
    detail = _exception_detail(text)
    for path in sorted(artifacts.iterdir()):
        kind = next((p[:-1] for p in FINDING_PREFIXES if path.name.startswith(p)), None)
        if kind:
            report.findings.append(Finding(kind, str(path), detail))
    if report.exit_status != 0 and not report.findings:
        report.findings.append(Finding("exit", "", f"exit status {report.exit_status}: "
                                       f"{detail or 'see the log'}"))
    report.crashes = len(report.findings)
    report.corpus_files = sum(1 for _ in corpus.iterdir())
    return report


#: The harness runs as a child of a shell that forks it. libFuzzer's -rss_limit_mb (and wait4's
#: ru_maxrss) read getrusage, whose high-water mark a process inherits from its parent across
#: fork and exec: started straight from a pytest that holds TensorFlow and PyTorch (2 GB), every
#: harness "ran out of memory" at its first check. The shell, once exec'd, is small; the harness
#: it forks starts from that.
FRESH_RSS = ["/bin/sh", "-c", '"$@"; exit $?', "sh"]


class _PeakRss:
    """The harness's peak resident set: VmHWM of the shell's child, sampled while it runs (VmHWM
    belongs to the process's own memory map, made new at exec, so nothing is inherited)."""

    def __init__(self, shell_pid: int, every_s: float = 0.2):
        self.kib = 0
        self._shell = shell_pid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(every_s,), daemon=True)
        self._thread.start()

    def _watch(self, every_s: float) -> None:
        while not self._done.wait(every_s):
            self.sample()

    def sample(self) -> None:
        try:
            children = Path(f"/proc/{self._shell}/task/{self._shell}/children").read_text()
            for pid in children.split():
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.kib = max(self.kib, int(line.split()[1]))
        except (OSError, ValueError):
            pass  # the harness has not started yet, or has just exited

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("harness", nargs="*", help="harness names (default: all): "
                        + ", ".join(harnesses()))
    parser.add_argument("--time", type=int, default=0, help="seconds per harness")
    parser.add_argument("--runs", type=int, default=0, help="inputs per harness")
    parser.add_argument("--budget", default="256M",
                        help="EDGESDK_MEMORY_BUDGET for the loaders (default 256M)")
    parser.add_argument("--rss-slack-mb", type=int, default=768,
                        help="RSS allowed over the budget: the interpreter, numpy, atheris")
    parser.add_argument("--timeout", type=int, default=5, help="seconds per input (a hang)")
    parser.add_argument("--max-len", type=int, default=0, help="longest input (libFuzzer's)")
    parser.add_argument("--grace", type=int, default=120,
                        help="seconds past the budget before the watchdog kills a harness")
    parser.add_argument("--out", default=str(ROOT / "out" / "fuzz"))
    args = parser.parse_args(argv)
    if not args.time and not args.runs:
        parser.error("give a budget: --time SECONDS and/or --runs N")
    known = harnesses()
    names = args.harness or list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown harness {unknown}; known: {list(known)}")
    reports = [run_harness(n, known[n], args) for n in names]
    ok = all(not r.findings for r in reports)
    print(json.dumps({"ok": ok, "harnesses": [asdict(r) for r in reports]}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
