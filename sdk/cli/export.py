"""`edgesdk export MODEL --calibration DATA -o OUT.tflite`: quantise a model from the shell.

Calibration data on the command line is a folder of images (with the preprocessing options
below), a .npy/.npz file, or `synthetic`. Prints the export report (sizes, ops, input/output
quantisation, fidelity per output and per layer) and writes it as JSON beside the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sdk.base.errors import CalibrationError, ConversionError, FidelityError
from sdk.base.samples import SYNTHETIC, ImageFolder
from sdk.cli.exit_codes import CHECK_FAILED
from sdk.cli.output import emit_json, message, progress, report
from sdk.converters.frontends import IO_LAYOUTS
from sdk.converters.quantize import mixed as _mixed  # noqa: F401  (registers "mixed")
from sdk.converters.quantize.int8 import IO_TYPES
from sdk.converters.quantize.plan import SCHEMES
from sdk.converters.quantize.ranges import METHODS


def _floats(text: str) -> float | tuple[float, ...]:
    values = tuple(float(v) for v in text.replace(",", " ").split())
    return values[0] if len(values) == 1 else values


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("x", " ").replace(",", " ").split()
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"size must be HxW, not {text!r}")
    return int(parts[0]), int(parts[1])


def _shapes(items: list[str] | None) -> dict[str | None, list[int]] | None:
    if not items:
        return None
    shapes: dict[str | None, list[int]] = {}
    for item in items:
        name, _, dims = item.rpartition("=")
        shapes[name or None] = [int(d) for d in dims.replace("x", ",").split(",") if d]
    return shapes


def _constants(items: list[str] | None) -> dict[str, Any] | None:
    """--constant-input NAME=VALUE (a number, or numbers separated by commas)."""
    if not items:
        return None
    values: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name or not raw:
            raise ConversionError(f"--constant-input {item!r}: expected NAME=VALUE "
                                  "(e.g. sr=16000)")
        try:
            numbers = [float(v) if any(c in v for c in ".eE") else int(v)
                       for v in raw.split(",")]
        except ValueError:
            raise ConversionError(f"--constant-input {item!r}: {raw!r} is not a number or a "
                                  "list of numbers") from None
        values[name] = numbers if "," in raw else numbers[0]
    return values


def calibration_source(args: argparse.Namespace) -> Any:
    value = args.calibration
    if value is None:
        return None
    if value == SYNTHETIC:
        return SYNTHETIC
    path = Path(value)
    if path.is_dir():
        return ImageFolder(path, size=args.size, scale=args.scale, mean=args.mean, std=args.std,
                           channels=args.channels, resize=args.resize)
    if path.suffix in (".npy", ".npz"):
        return path
    raise CalibrationError(f"--calibration {value!r}: expected a folder of images, a .npy/.npz "
                           f"file or {SYNTHETIC!r}")


def _scheme_options(items: list[str] | None) -> dict[str, object] | None:
    """-O key=value pairs: integers, floats, true/false, else strings."""
    if not items:
        return None
    options: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--scheme-option expects KEY=VALUE, not {item!r}")
        value: object = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(text)
                    break
                except ValueError:
                    continue
        options[key.replace("-", "_")] = value
    return options


def run(args: argparse.Namespace) -> int:
    from sdk.exporter import export  # heavy imports only when the command runs

    calibration = calibration_source(args)
    validation = Path(args.validation) if args.validation else None
    if validation is not None and validation.is_dir():
        validation = ImageFolder(validation, size=args.size, scale=args.scale, mean=args.mean,
                                 std=args.std, channels=args.channels, resize=args.resize)
    precision = {name: "int16x8" for name in args.int16_layer or []}
    precision.update({name: "float32" for name in args.float_layer or []})
    # NPU targets: int8 model I/O unless asked otherwise (float I/O adds QUANTIZE /
    # DEQUANTIZE ops at the edges of the graph that an NPU compiler leaves to the CPU)
    io_default = "int8" if args.target else "float32"
    if args.target:
        from functools import partial

        from sdk.target_export import export_for_target

        export = partial(export_for_target, target=args.target)  # type: ignore[assignment]
    with progress(not args.quiet) as bars:
        result = export(args.model, args.scheme, calibration=calibration, output=args.output,
                        method=args.method, validation=validation,
                        max_samples=args.max_samples,
                        input_type=args.input_type or io_default,
                        output_type=args.output_type or io_default,
                        format=args.format, input_shapes=_shapes(args.input_shape),
                        constant_inputs=_constants(args.constant_input),
                        io_layout=args.io_layout,
                        precision=precision or None, strict=args.strict,
                        bias_correction=args.bias_correction,
                        activations=args.activations,
                        scheme_options=_scheme_options(args.scheme_option),
                        per_layer=not args.no_per_layer, target_sqnr=args.target_sqnr,
                        target_cost=args.target_cost,
                        budget_bytes=args.budget_bytes, budget_ms=args.budget_ms,
                        latency_profile=args.latency_profile, progress=bars)
    short = below_min_sqnr(result, args.min_sqnr)
    if args.json:
        emit_json(result.to_dict() | {"min_sqnr_db": args.min_sqnr, "passed": not short})
    else:
        report(result.sections(max_layers=None if args.all_layers else 20))
    if short:
        message(f"FAILED: --min-sqnr {args.min_sqnr:g} dB not met by {result.path}: "
                + ", ".join(short) + " (the file and its report are written; exit status "
                f"{CHECK_FAILED.code})")
        return CHECK_FAILED.code
    return 0


def below_min_sqnr(result: Any, min_sqnr: float | None) -> list[str]:
    """The outputs whose SQNR is under `min_sqnr` dB, described ("'y' at 12.30 dB")."""
    if min_sqnr is None:
        return []
    if result.fidelity is None:
        raise FidelityError(f"--min-sqnr {min_sqnr:g}: {result.path} has no fidelity report "
                            f"(format {result.format!r} does not run here), so it cannot be "
                            "checked")
    return [f"{o.name!r} at {o.sqnr_db:.2f} dB" for o in result.fidelity.outputs
            if not o.sqnr_db >= min_sqnr]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="quantise a model (int8, int4, ternary, int2, mixed)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help=".tflite, .onnx, .keras/.h5 file or SavedModel directory")
    p.add_argument("scheme", nargs="?", default="int8",
                   help="quantisation scheme (default int8; registered: "
                        f"{', '.join(sorted(SCHEMES))})")
    p.add_argument("-o", "--output", help="output file (default <model>_<scheme>.tflite)")
    p.add_argument("-c", "--calibration",
                   help=f"folder of images, .npy/.npz file, or {SYNTHETIC!r} (random data)")
    p.add_argument("--validation", help="held-out data for the fidelity report (default: 20%% "
                                        "of the calibration data)")
    p.add_argument("--method", default="mse", choices=METHODS, help="activation ranges")
    p.add_argument("--max-samples", type=int, default=1000, help="calibration samples to use")
    p.add_argument("--bias-correction", default="analytic",
                   choices=("none", "analytic", "empirical"),
                   help="remove the mean error of weighted layers (empirical: measured layer by "
                        "layer in LiteRT; best fidelity, slower)")
    p.add_argument("--input-type", choices=IO_TYPES,
                   help="model input type (default float32; int8 with --target)")
    p.add_argument("--output-type", choices=IO_TYPES,
                   help="model output type (default float32; int8 with --target)")
    p.add_argument("--target", metavar="NPU",
                   help="also compile the INT8 model for an NPU: ethos-u55-32/64/128/256, "
                        "ethos-u65-256/512, ethos-u85-128..2048 (Vela, the [npu] extra) or "
                        "rk3562/rk3566/rk3568/rk3576/rk3588 (rknn-toolkit2: edgesdk toolchain "
                        "install rknn); prints NPU/CPU placement and estimates")
    p.add_argument("--format", help="output format (default from the output suffix: tflite)")
    p.add_argument("--input-shape", action="append", metavar="[NAME=]D0,D1,...",
                   help="fix dynamic input dimensions (ONNX / Keras / .tflite); repeat per input")
    p.add_argument("--constant-input", action="append", metavar="NAME=VALUE",
                   help="ONNX: fix an input that is a setting (e.g. sr=16000, a sample rate "
                        "selecting an If branch) to a value; it folds away; repeat per input")
    p.add_argument("--io-layout", choices=IO_LAYOUTS,
                   help="ONNX models: nchw (default: inputs/outputs as ONNX declares them) or "
                        "nhwc (image inputs/outputs channels-last, no boundary transposes)")
    p.add_argument("--float-layer", action="append", metavar="LAYER",
                   help="keep this layer (name or pattern from the report) in float")
    p.add_argument("--int16-layer", action="append", metavar="LAYER",
                   help="give this layer 16x8 (int16 activations, int8 weights; name or "
                        "pattern from the report)")
    p.add_argument("--target-sqnr", type=float, metavar="DB",
                   help="accuracy-driven precision: keep the fewest layers wider (16x8, then "
                        "float) until every output's SQNR on the held-out samples reaches DB "
                        "(fails, exit status 1, nothing written, when it cannot)")
    p.add_argument("--target-cost", metavar="COST",
                   help="with --target-sqnr, what the planner's cost counts: balanced "
                        "(default: 1%% of the file weighs as 1%% of the time), bytes (the "
                        "smallest file: 16x8 wherever it runs, however slow), latency (the "
                        "fastest: float rather than 16x8) or a number from 0 (bytes) to 1 "
                        "(latency)")
    p.add_argument("--budget-bytes", type=int, metavar="N",
                   help="scheme mixed: the file's size limit; each weighted layer gets int8, "
                        "int4, 2-bit or ternary weights by measured sensitivity (fails, exit "
                        "status 1, when N is under the smallest such model)")
    p.add_argument("--budget-ms", type=float, metavar="MS",
                   help="scheme mixed: a latency limit, estimated from per-layer times of each "
                        "candidate format (profiled on this host, cached, unless "
                        "--latency-profile names a device's table)")
    p.add_argument("--latency-profile", metavar="JSON",
                   help="with --budget-ms: a per-layer latency table measured on a device "
                        "({\"layers\": {layer: {format: ms}}, \"other_ms\": ms})")
    p.add_argument("--min-sqnr", type=float, metavar="DB",
                   help="fail (exit status 1) when an output's SQNR on the held-out samples is "
                        "under DB; the file and report are still written, like `validate`")
    p.add_argument("--activations", default="int8", choices=("int8", "float32"),
                   help="int8: static (calibrated); float32: dynamic range (weights only)")
    p.add_argument("-O", "--scheme-option", action="append", metavar="KEY=VALUE",
                   help="a scheme option, e.g. block_size=32, ternary_scale=median, "
                        "custom_ops=false, keep_first=false, sqnr_floor_db=6 (repeatable)")
    p.add_argument("--strict", action="store_true",
                   help="fail when an op has no int8 kernel instead of keeping it in float")
    img = p.add_argument_group("image preprocessing (calibration folders)")
    img.add_argument("--size", type=_size, help="resize to HxW (default: the model's input)")
    img.add_argument("--scale", type=float, default=1.0 / 255.0,
                     help="pixel multiplier (default 1/255)")
    img.add_argument("--mean", type=_floats, default=0.0, help="subtracted after scaling "
                                                               "(one value or one per channel)")
    img.add_argument("--std", type=_floats, default=1.0, help="divides after the mean")
    img.add_argument("--channels", choices=("rgb", "bgr", "gray"),
                     help="channel order (default from the model: 1 -> gray, 3 -> rgb)")
    img.add_argument("--resize", default="bilinear", choices=("bilinear", "nearest", "bicubic",
                                                              "area"))
    out = p.add_argument_group("report")
    out.add_argument("--all-layers", action="store_true", help="list every layer's SQNR")
    out.add_argument("--no-per-layer", action="store_true", help="skip per-layer SQNR")
    p.set_defaults(func=run)
