"""Deploy a model to phones and boards, profile it there, and check its outputs against this host.

    .venv/bin/python apps/deploy_and_profile.py --emulated            # what `make demo` runs
    .venv/bin/python apps/deploy_and_profile.py --model m.tflite --device adb:R58M12345 \\
        --device ssh:pi@rpi4.local --device local

Without --model it exports the digits CNN (scikit-learn's bundled 8x8 digits, offline) to INT8.
`--emulated` starts an emulated Android phone (our ADB daemon) and an emulated aarch64 board
(a real sshd on loopback) on this machine and uses them as devices: the protocols are real, the
Arm CPU is qemu, and the reports say so. Copy this file and change the device strings.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sdk
from sdk.examples import digits


def export_digits(out: Path) -> Path:
    from sdk.examples import digits_cnn

    data = digits()
    result = sdk.export(digits_cnn(data, epochs=6), "int8", calibration=data.x_train[:512],
                        output=out / "digits_int8.tflite", report=False)
    return Path(result.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .tflite or .edge model (default: export the digits CNN)")
    parser.add_argument("--device", action="append", default=[],
                        help="a device string or device-config name (repeatable)")
    parser.add_argument("--emulated", action="store_true",
                        help="also start and use an emulated phone and aarch64 board")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=64, help="validation samples")
    parser.add_argument("--out", default="out/deploy_and_profile", help="JSON reports go here")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = Path(args.model) if args.model else export_digits(out)
    inputs = digits().x_test[:args.samples]

    with contextlib.ExitStack() as stack:
        devices: list[sdk.devices.DeviceConfig | str] = list(args.device)
        if args.emulated:
            from sdk.devices.emulated import EmulatedBoard, EmulatedPhone

            phone = stack.enter_context(EmulatedPhone(arch="aarch64"))
            board = stack.enter_context(EmulatedBoard(arch="aarch64"))
            devices += [phone.device_config(name="emulated-phone"),
                        board.device_config(name="emulated-board")]
        if not devices:
            devices = ["local"]

        rows = []
        for device in devices:
            name = device if isinstance(device, str) else device.name
            print(f"\n== {name}")
            # 1. deploy: the model and its runner, checksum-verified on the device
            with sdk.deploy(model, device) as deployment:
                print(f"deployed {model.name} -> {deployment.remote_model} "
                      f"(runner: {deployment.runner.name})")
            # 2. profile: latency, memory, and what really ran
            profile = sdk.profile(model, device, runs=args.runs, warmup=5)
            print(profile.summary())
            for note in profile.notes:
                print(f"  note: {note}")
            (out / f"profile-{name}.json").write_text(profile.to_json())
            # 3. validate: the device's outputs against this host's for the same inputs
            validation = sdk.validate(model, device, inputs)
            print(f"validation: {validation.samples} samples, exact={validation.exact}, "
                  f"SQNR {validation.sqnr_db:.1f} dB, top-1 agreement "
                  f"{100 * (validation.top1_agreement or 0):.1f}%")
            (out / f"validation-{name}.json").write_text(validation.to_json())
            rows.append((name, profile.device.abi, profile.machine, profile.latency.p50_ms,
                         validation.passed(), profile.emulated is not None))

    print(f"\n{'device':<18} {'ABI':<12} {'ran as':<8} {'p50 ms':>8}  valid  emulated")
    for name, abi, machine, p50, passed, emulated in rows:
        print(f"{name:<18} {abi or '?':<12} {machine or '?':<8} {p50 or 0:8.3f}  "
              f"{'yes' if passed else 'NO':<5}  {'yes' if emulated else 'no'}")
    print(f"reports: {out}/")
    return 0 if all(row[4] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
