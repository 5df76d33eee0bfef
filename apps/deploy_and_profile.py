"""Deploy a model to phones and boards, profile it there, and check its outputs against this host.

    .venv/bin/python apps/deploy_and_profile.py --emulated            # what `make demo` runs
    .venv/bin/python apps/deploy_and_profile.py --model m.tflite --model m.edge \\
        --device adb:R58M12345 --device ssh:pi@rpi4.local --device local

Without --model it exports the digits CNN (scikit-learn's bundled 8x8 digits, offline) three
ways: INT8 and INT4 as standard .tflite (stock LiteRT runs them) and ternary as .edge (our
runtime, `edge-run` on the device). `--emulated` uses this host, an emulated Android phone (our
ADB daemon) and an emulated aarch64 board (a real sshd on loopback): the protocols are real, the
boards' Arm CPU is qemu, and the reports say so. A .edge model runs the device's own `edge-run`
build (arm64-v8a code under qemu on the emulated devices); a .tflite runs the device's Python
LiteRT, which on the emulated devices is this host's x86_64 interpreter (said in the notes).
Every (model, device) pair is deployed, profiled and validated against this host's outputs;
the table and `report.md` / `report.json` say what ran where, with which kernels.
Copy this file and change the device strings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sdk
from sdk.examples import digits


def export_digits(out: Path) -> list[Path]:
    """The digits CNN as INT8 and INT4 .tflite and ternary .edge (one trained model)."""
    from sdk.examples import digits_cnn

    data = digits()
    model = digits_cnn(data, epochs=6)
    calibration = data.x_train[:512]
    return [Path(sdk.export(model, precision, calibration=calibration, output=out / name,
                            report=False).path)
            for precision, name in (("int8", "digits_int8.tflite"),
                                    ("int4", "digits_int4.tflite"),
                                    ("ternary", "digits_ternary.edge"))]


@dataclass(frozen=True)
class Row:
    """One (model, device) result of the demo."""

    model: str
    device: str
    abi: str | None
    ran_as: str | None
    runner: str
    kernels: str
    p50_ms: float | None
    valid: bool
    sqnr_db: float | None
    emulated: bool


def write_report(rows: list[Row], out: Path) -> None:
    (out / "report.json").write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    lines = ["| model | device | ABI | ran as | runner | kernels | p50 ms | valid | emulated |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.model} | {r.device} | {r.abi or '?'} | {r.ran_as or '?'} | {r.runner} | "
              f"{r.kernels} | {r.p50_ms or 0:.3f} | {'yes' if r.valid else 'NO'} | "
              f"{'yes' if r.emulated else 'no'} |" for r in rows]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[],
                        help="a .tflite or .edge model (repeatable; default: export the digits "
                             "CNN to int8 / int4 .tflite and ternary .edge)")
    parser.add_argument("--device", action="append", default=[],
                        help="a device string or device-config name (repeatable)")
    parser.add_argument("--emulated", action="store_true",
                        help="use this host, an emulated phone and an emulated aarch64 board")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=64, help="validation samples")
    parser.add_argument("--out", default="out/deploy_and_profile", help="JSON reports go here")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = [Path(m) for m in args.model] or export_digits(out)
    inputs = digits().x_test[:args.samples]

    with contextlib.ExitStack() as stack:
        devices: list[sdk.devices.DeviceConfig | str] = list(args.device)
        if args.emulated:
            from sdk.devices.emulated import EmulatedBoard, EmulatedPhone

            phone = stack.enter_context(EmulatedPhone(arch="aarch64"))
            board = stack.enter_context(EmulatedBoard(arch="aarch64"))
            devices += ["local", phone.device_config(name="emulated-phone"),
                        board.device_config(name="emulated-board")]
        if not devices:
            devices = ["local"]

        rows: list[Row] = []
        for device, model in ((d, m) for d in devices for m in models):
            name = device if isinstance(device, str) else device.name
            print(f"\n== {model.name} on {name}")
            # 1. deploy: the model and its runner, checksum-verified on the device
            with sdk.deploy(model, device) as deployment:
                print(f"deployed {model.name} -> {deployment.remote_model} "
                      f"(runner: {deployment.runner.name})")
            # 2. profile: latency, memory, and what really ran
            profile = sdk.profile(model, device, runs=args.runs, warmup=5)
            print(profile.summary())
            for note in profile.notes:
                print(f"  note: {note}")
            print(f"  kernels: {profile.kernels}")
            (out / f"profile-{model.stem}-{name}.json").write_text(profile.to_json())
            # 3. validate: the device's outputs against this host's for the same inputs
            validation = sdk.validate(model, device, inputs)
            print(f"validation: {validation.samples} samples, exact={validation.exact}, "
                  f"SQNR {validation.sqnr_db:.1f} dB, top-1 agreement "
                  f"{100 * (validation.top1_agreement or 0):.1f}%")
            (out / f"validation-{model.stem}-{name}.json").write_text(validation.to_json())
            rows.append(Row(model.name, name, profile.device.abi, profile.machine,
                            profile.runner, profile.kernels, profile.latency.p50_ms,
                            validation.passed(), validation.sqnr_db,
                            profile.emulated is not None))

    print(f"\n{'model':<20} {'device':<16} {'ABI':<12} {'ran as':<8} {'runner':<14} "
          f"{'p50 ms':>8}  valid  emulated")
    for r in rows:
        print(f"{r.model:<20} {r.device:<16} {r.abi or '?':<12} {r.ran_as or '?':<8} "
              f"{r.runner:<14} {r.p50_ms or 0:8.3f}  {'yes' if r.valid else 'NO':<5}  "
              f"{'yes' if r.emulated else 'no'}")
    write_report(rows, out)
    print(f"reports: {out}/ (report.md, report.json, one profile and validation JSON per row)")
    return 0 if all(r.valid for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
