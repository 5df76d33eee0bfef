"""`sdk.export`: model in, quantised file out, with a fidelity report.

    result = sdk.export(keras_model, "int8", calibration=x_train, output="model.tflite")

Stages (timed in `result.timings`): load (any frontend -> float IR), calibrate (LiteRT over the
calibration samples), quantize (the precision plan + the INT8 rewrite), encode (the output
format's writer), validate (fidelity on held-out samples, which also proves the file loads and
runs in LiteRT), write (model and JSON report, each to a temporary name renamed on success).
Nothing is written unless every stage succeeded.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.base.errors import CalibrationError, ConversionError, EdgeSDKError
from sdk.base.fileio import atomic_write_bytes, atomic_write_text, sha256_file
from sdk.base.samples import InputSpec
from sdk.converters.formats import TFLITE, OutputFormat, format_for
from sdk.converters.frontends import InputShapes, LoadedModel, load_model
from sdk.converters.ir import DType, Model, Tensor
from sdk.converters.qat import qat_export
from sdk.converters.quantize import (
    LayerPrecision,
    SampleSet,
    as_samples,
    calibrate,
    layer_name,
    plan_for,
    quantize_int8,
)
from sdk.converters.quantize.bias import empirical_bias_correction
from sdk.converters.quantize.equalize import equalize as equalize_model
from sdk.converters.quantize.fidelity import (
    LAYER_CACHE_BYTES,
    PER_LAYER_SAMPLES,
    FloatReference,
    evaluate,
    input_sqnr,
    per_layer_sqnr,
)
from sdk.converters.quantize.fixed_outputs import keep_coarse_outputs_float
from sdk.converters.quantize.front_end_handoff import plan_16x8 as handoff_16x8
from sdk.converters.quantize.gptq import weight_solver
from sdk.converters.quantize.head_bias import FloatHeads, correct_head_biases
from sdk.converters.quantize.head_rounding import head_rounding as round_heads
from sdk.converters.quantize.int8 import IO_TYPES, QuantizedModel, check_float_model
from sdk.converters.quantize.int16x8 import wide_ranges
from sdk.converters.quantize.method_check import MIN_SAMPLES as AUTO_CHECK_SAMPLES
from sdk.converters.quantize.method_check import (
    check_candidates,
    fold_halves,
    output_energies,
    outputs_of,
    plain_solver,
)
from sdk.converters.quantize.method_check import choose as choose_method
from sdk.converters.quantize.method_default import (
    SUBBYTE_SCHEMES,
    default_weight_method,
    float_weights,
)
from sdk.converters.quantize.mixed import MixedReport
from sdk.converters.quantize.mixed import search as mixed_search
from sdk.converters.quantize.op_latency import op_times_ms
from sdk.converters.quantize.plan import SCHEMES, PrecisionPlan
from sdk.converters.quantize.planner import (
    MIN_CONFIDENT_SAMPLES,
    Attempt,
    CostModel,
    PlannerReport,
    measure_latency_ms,
    measured_latency,
    plan_to_target,
    with_layers,
)
from sdk.converters.quantize.planner import cost_model as planner_cost
from sdk.converters.quantize.score_ranges import reach_output_codes
from sdk.converters.quantize.stem import StemRounding
from sdk.converters.quantize.stem import confirm as confirm_stem
from sdk.converters.quantize.stem import stem_rounding as round_stem
from sdk.converters.quantize.stream_state import plan_16x8
from sdk.converters.tflite import serialize
from sdk.converters.tflite.custom_ops import custom_ops_in
from sdk.mixed_profile import latency_source
from sdk.results import CalibrationInfo, ExportResult, TensorInfo
from sdk.run.fidelity import FidelityReport, FidelityWarning
from sdk.run.runner import LiteRTRunner, ModelRunner

Progress = Callable[[str, int, int], None]

#: fewer calibration samples than this: validate on the calibration data instead of splitting
MIN_SAMPLES_TO_SPLIT = 10
MAX_VALIDATION_SAMPLES = 500
#: calibration samples the empirical bias correction runs per layer
EMPIRICAL_BC_SAMPLES = 256
BIAS_CORRECTIONS = ("none", "analytic", "empirical")


def export(model: Any, scheme: str = "int8", *, calibration: Any = None,
           output: str | os.PathLike[str] | None = None, method: str = "mse",
           validation: Any = None, validation_split: float = 0.2, max_samples: int = 1000,
           input_type: str = "float32", output_type: str = "float32", format: str | None = None,
           input_shapes: InputShapes = None, io_layout: str | None = None,
           precision: Mapping[str, LayerPrecision | str] | None = None,
           weight_method: str | None = None, bias_correction: bool | str = "analytic",
           per_layer: bool = True, strict: bool = False, report: bool = True,
           percentile: float = 99.99, progress: Progress | None = None,
           target: str | None = None, target_sqnr: float | None = None,
           target_cost: str | float | None = None,
           activations: str = "int8", equalize: bool = True, stem_rounding: bool = True,
           scheme_options: Mapping[str, Any] | None = None,
           example_inputs: Any = None,
           constant_inputs: Mapping[str, Any] | None = None,
           budget_bytes: int | None = None, budget_ms: float | None = None,
           latency_profile: Any = None) -> ExportResult:
    """Quantise `model` and write it to `output`.

    model: a Keras model, SavedModel directory, .keras/.h5/.tflite/.onnx path (or bytes),
        an onnx.ModelProto, a PyTorch nn.Module / torch.export program / .pt2 path (with
        example_inputs; the `[torch]` extra) or an IR Model.
    scheme: "int8" (full-integer INT8), "int4", "ternary" or "int2" (sub-byte weights, see
        `sdk.converters.quantize.subbyte`: first/last layer and layers under an SQNR floor stay
        INT8; 2-bit convolutions become edgesdk custom ops unless
        scheme_options={"custom_ops": False}).
    calibration: representative inputs: numpy array (N, ...), iterable/generator, callable,
        tf.data.Dataset, image folder (path or `ImageFolder`), .npy/.npz, or "synthetic".
    output: the file to write (default: <model name>_<scheme><suffix> in the current folder).
    method: activation ranges: "minmax", "percentile" or "mse" (default; the search that
        minimises quantisation error per tensor).
    validation: held-out inputs for the fidelity report; default: the last `validation_split`
        of the calibration samples (not used for calibration).
    input_type / output_type: "float32" (QUANTIZE / DEQUANTIZE inside the model), "int8" or
        "uint8" (the caller quantises; `result.inputs` gives scale and zero point).
    format: "tflite" (default, or from the output suffix) or "edge".
    input_shapes: {input name or None: shape}: fixes dynamic dimensions (ONNX, Keras).
    constant_inputs: ONNX models: {input name: value} fixes inputs that are settings, not data
        (silero-vad's sample rate: {"sr": 16000}); what they select folds, and the exported
        model has no such input.
    io_layout: ONNX models: "nchw" (default: inputs and outputs as ONNX declares them, the same
        arrays as onnxruntime) or "nhwc" (image inputs and outputs channels-last, no boundary
        transposes); see `sdk.converters.onnx.read_onnx`.
    precision: per-layer overrides {layer name or pattern: "float32" | "int8" | LayerPrecision}.
    bias_correction: "analytic" (default: remove the mean shift weight rounding causes, from
        the calibration inputs' means), "empirical" (also measure and remove, layer by layer,
        the remaining mean error of every weighted layer in LiteRT: best fidelity, one model run
        over up to 256 calibration samples per weighted layer) or "none".
    strict: an op without an int8 kernel is an error instead of staying in float.
    weight_method: weight scales, "minmax" or "mse"; default: the weight format's own (int8:
        minmax, sub-byte: mse), except that a sub-byte scheme ("int4", "ternary", "int2") with
        real calibration data defaults to "auto", and to "gptq" for a model of more than 1 M
        float weights (`method_default.AUTO_MAX_WEIGHTS`; not with target_sqnr= or a QAT
        model; the notes say which method ran and why: `sdk.converters.quantize.method_default`).
        "rtn": round to nearest with MSE-searched scales for every format (ternary too);
        "gptq": those scales, codes by GPTQ from each layer's inputs on
        the calibration samples (`sdk.converters.quantize.gptq`; its time is timings["gptq"]);
        "adaround": those scales, codes learned by AdaRound on the same inputs
        (`sdk.converters.quantize.adaround`; timings["adaround"]).
        "auto": per layer, the codes of rtn / gptq / adaround (and GPTQ variants) with the least
        output error on held-out calibration samples (`sdk.converters.quantize.method_choice`;
        the notes list each layer's choice; timings["auto"]); that choice, plain "gptq" and
        plain "adaround" are then compared at the model's outputs, each solved on half the
        calibration samples and measured on the other half, and the winner solved on all
        (`sdk.converters.quantize.method_check`).
    activations: "int8" (static, calibrated: full-integer) or "float32" (dynamic range: the
        weights are quantised, LiteRT quantises activations at run time).
    stem_rounding: scheme "int8", default weight method: the int8 codes of the layers next to
        the input (fewer than 3 weighted layers before them) are chosen by GPTQ against their
        calibration inputs where that lowers the output error on a held-out part of the
        calibration samples (`sdk.converters.quantize.stem`; the notes say which layers and
        why; benchmarks/results/corpus-detectors-2026-12-06.md). False: round to nearest.
    equalize: scheme "int8": rescale the output channels of a layer and the input channels
        of the one layer that reads it where one channel's range dwarfs the others
        (cross-layer equalisation, `sdk.converters.quantize.equalize`; the float function is
        unchanged; the notes list the pairs).
    scheme_options: the scheme's own options (sub-byte: block_size, ternary_scale,
        ternary_refit, keep_first, keep_last, sqnr_floor_db, custom_ops).
    report: also write the JSON report beside the model (`report_path_for`: <stem>.report.json
        for .tflite, <file name>.report.json for other formats, e.g. m.edge.report.json).
    target: an NPU to compile the INT8 .tflite for ("ethos-u55-128" ... with Vela, "rk3588" ...
        with rknn-toolkit2; `sdk.converters.targets`): `result.target` holds the compiler's
        per-layer NPU/CPU placement, estimates and (RKNN) simulator fidelity; docs/npu.md.
    target_sqnr: accuracy-driven precision: keep the fewest layers wider (float) until every
        output's SQNR on the held-out samples is at least this many dB
        (`sdk.converters.quantize.planner`; `result.planner` lists what was kept wider, why and
        what it cost; a ConversionError when even all of them kept wider fall short).
    target_cost: with target_sqnr, what the planner's cost counts: "balanced" (default: a 1 %
        larger file weighs as a 1 % slower model), "bytes" (the smallest file: 16x8 wherever
        LiteRT has the kernel, however slow), "latency" (the fastest: float in XNNPACK rather
        than 16x8 in LiteRT's reference kernels, whatever the bytes), or a number from 0
        (bytes) to 1 (latency), the weight of latency (`planner.cost_model`).
    budget_bytes: scheme "mixed": the file's size limit; each weighted layer gets INT8, INT4,
        2-bit or ternary weights by measured sensitivity (`sdk.converters.quantize.mixed`;
        `result.mixed` lists every point tried, the Pareto front and the bits chosen).
    budget_ms: scheme "mixed": a latency limit (with or without budget_bytes), estimated per
        layer from `latency_profile`: None profiles the search's uniform probes on this host
        (`sdk.mixed_profile`, cached), or a per-layer table measured on a device
        (`sdk.converters.quantize.mixed_latency.LatencyTable`, its dict or JSON path).
    progress: called as progress(stage, done, total) during calibration and validation.
    example_inputs: PyTorch models: a tuple of tensors shaped like one batch; the module is
        exported in eval mode through PyTorch's ONNX exporter, with every dimension fixed by
        them (inputs and outputs stay NCHW, like the module's, unless io_layout="nhwc").
    """
    if target is not None:  # export, then the NPU compiler: sdk.target_export
        from sdk.target_export import export_for_target

        forward = {k: v for k, v in locals().items()
                   if k not in ("model", "scheme", "target", "export_for_target")}
        return export_for_target(model, scheme, target=target, **forward)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    clock = [start]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = round(now - clock[0], 4)
        clock[0] = now

    for name, value in (("input_type", input_type), ("output_type", output_type)):
        if value not in IO_TYPES:
            raise ConversionError(f"{name} must be one of {', '.join(IO_TYPES)}, not {value!r}")
    correction = _bias_mode(bias_correction)
    if not 0.0 < validation_split < 1.0:
        raise ConversionError(f"validation_split must be in (0, 1), not {validation_split}")

    if scheme not in SCHEMES:  # before the model loads (a Keras model takes seconds)
        raise ConversionError(f"unknown quantisation scheme {scheme!r}; available: "
                              f"{', '.join(sorted(SCHEMES))}")
    qat = qat_export(model)  # a model from sdk.qat.prepare: export its trained grid and ranges
    if qat is not None:
        qat.check(scheme, dict(scheme_options or {}), activations)
    loaded = load_model(model if qat is None else qat.model, input_shapes=input_shapes,
                        io_layout=io_layout,
                        example_inputs=example_inputs, constant_inputs=constant_inputs)
    float_model = loaded.model
    try:  # before any calibration: quantising a quantised model is refused at once
        check_float_model(float_model)
    except ConversionError as exc:
        raise ConversionError(f"{_source_name(model, loaded)}: {exc}") from None
    fmt = format_for(format, output)
    path = Path(output) if output is not None else Path(f"{_safe(loaded.name)}_{scheme}"
                                                         f"{fmt.suffix}")
    if target_cost is not None and target_sqnr is None:
        raise ConversionError(f"target_cost={target_cost!r} goes with target_sqnr= (it says "
                              "what the precision planner's cost counts)")
    costs = planner_cost(target_cost)  # a bad value is refused before any calibration
    if (scheme == "mixed") != (budget_bytes is not None or budget_ms is not None):
        raise ConversionError("budget_bytes / budget_ms go with scheme 'mixed' (and 'mixed' "
                              f"needs one), not scheme {scheme!r} with budget_bytes="
                              f"{budget_bytes}, budget_ms={budget_ms}")
    try:
        options = dict(scheme_options or {})
        if activations != "int8":
            options["activations"] = activations
        plan = plan_for(scheme, float_model, options).with_overrides(precision)
    except ValueError as exc:
        raise ConversionError(str(exc)) from None
    lap("load")

    specs = input_specs(float_model)
    # target_sqnr= and mixed choose by the held-out samples: at least MIN_CONFIDENT_SAMPLES
    cal_set, val_set, notes = _samples(calibration, validation, specs, max_samples,
                                       validation_split, _min_check(scheme, target_sqnr))
    notes = [*loaded.notes, *notes]  # what the import changed (densified weights, rewrites)
    if weight_method is None and scheme in SUBBYTE_SCHEMES:  # sub-byte + real samples: "auto"
        default = default_weight_method(scheme, synthetic=cal_set.synthetic,
                                        target_sqnr=target_sqnr, qat=qat is not None,
                                        weights=float_weights(float_model))
        weight_method = default.method
        notes.append(default.note())
    if equalize and qat is None and scheme == "int8" and activations == "int8":
        equalized = equalize_model(float_model, cal_set)
        if equalized.pairs:
            float_model = equalized.model
            notes.append("cross-layer equalisation (per-channel activation outliers): "
                         + "; ".join(equalized.describe()))
    cal = calibrate(float_model, cal_set, method, percentile=percentile, progress=progress,
                    channel_means=correction != "none")
    if qat is not None:
        qat.pin_ranges(cal, float_model)
    # the layers next to the input: int8 codes rounded against their inputs where held-out
    # calibration samples show a gain (`confirm` below checks the int8 model)
    stem = round_stem(float_model, cal_set, ranges=cal.ranges) if stem_rounding and qat is None \
        and weight_method is None and scheme == "int8" and activations == "int8" else None
    lap("calibrate")
    if activations == "int8" and output_type == "float32":
        plan, kept = keep_coarse_outputs_float(float_model, plan, cal, precision,
                                               percentile=percentile)
        notes += kept
    if activations == "int8":  # a score output's input reaches every output code
        notes += reach_output_codes(float_model, plan, cal, precision)
    if activations == "int8" and scheme == "int8":  # a streamed LSTM state: 16x8
        plan, kept = plan_16x8(float_model, plan, precision)
        notes += kept
        plan, kept = handoff_16x8(float_model, plan, precision)  # a float front end's output
        notes += kept

    def quantize(plan_: PrecisionPlan, stem_: StemRounding | None, **options: Any
                 ) -> QuantizedModel:
        """The INT8 rewrite of the float model with this export's ranges and bias correction
        (build() and the stem's check); `options`: quantize_int8's other keywords."""
        return quantize_int8(float_model, plan_, cal.ranges, strict=strict,
                             input_means=cal.means if correction != "none" else None,
                             wide_ranges=wide_ranges(cal.stats, cal.ranges), stem=stem_,
                             **options)

    if stem is not None:  # the stem's GPTQ codes only where the int8 model gains on held-out
        def stem_int8(s: StemRounding | None) -> bytes:
            return serialize(quantize(plan, s).model)[0]

        serialized_float = serialize(float_model)
        confirm_stem(stem, serialized_float[0], stem_int8)

    # output heads (a returned FULLY_CONNECTED): int8 codes rounded against their inputs where
    # held-out calibration samples show a gain
    heads = round_heads(float_model, cal_set) if qat is None and weight_method is None \
        and scheme == "int8" and activations == "int8" else None
    head_floats = FloatHeads(float_model, cal_set)  # their float side: run once, for all builds
    solver = weight_solver(weight_method, float_model, cal_set,
                           bias_corrected=correction != "none",
                           input_means=cal.means if correction != "none" else None) \
        if qat is None \
        else qat.solver(float_model)  # GPTQ: the layers' Hessians; QAT: the trained codes
    float_state: list[tuple[bytes, list[dict[Tensor, int]]]] = \
        [serialized_float] if stem is not None else []

    def serialized() -> tuple[bytes, list[dict[Tensor, int]]]:
        """The float model as .tflite bytes and tensor maps, serialised once for the export."""
        if not float_state:
            float_state.append(serialize(float_model))
        return float_state[0]

    # the float outputs on val_set, run once for all builds (and, where several builds are
    # measured layer by layer, the float side of that too)
    float_reference = FloatReference(layer_budget_bytes=LAYER_CACHE_BYTES if target_sqnr
                                     is not None or scheme == "mixed" else 0)
    if target_sqnr is not None and not (fmt.runs_in_litert or fmt.runner is not None):
        raise ConversionError(f"target_sqnr needs a fidelity report, and format {fmt.name!r} "
                              "has no runner here")

    def build(plan_: PrecisionPlan, lap: Callable[[str], None], layers: bool = True,
              solver_: Any = None, candidate: bool = False) -> _Built:
        """Quantise, encode and validate under `plan_` (what target_sqnr= repeats). `layers`
        False: the per-layer SQNR is left to `_Built.measure_layers` (the planner asks for it
        only where it picks layers). `solver_`: another weight solver (auto's whole-model
        check builds the plain methods' candidates). `candidate`: one of that check's builds
        (no empirical bias correction: only the kept build is corrected; no fidelity report)."""
        active = solver if solver_ is None else solver_
        try:
            with active:
                quantized = quantize(plan_, stem, input_type=input_type, output_type=output_type,
                                     weight_method=weight_method if qat is None
                                     and solver_ is None else active.method, heads=heads)
        except ValueError as exc:
            if isinstance(exc, EdgeSDKError):
                raise
            raise ConversionError(str(exc)) from exc
        # not on auto's check candidates: correcting each of the six would cost six more runs
        # per layer, on the very half the candidate is scored on; the kept build is corrected
        if correction == "empirical" and not candidate:
            refused: list[str] = []
            empirical_bias_correction(float_model, quantized,
                                      cal_set.subset(slice(0, EMPIRICAL_BC_SAMPLES)), progress,
                                      notes=refused)
            notes.extend(n for n in refused if n not in notes)
        if heads is not None and correction == "analytic":  # the heads' mean output shift
            notes.extend(n for n in correct_head_biases(float_model, quantized, cal_set,
                                                       head_floats)
                         if n not in notes)
        lap("quantize")
        float_bytes, float_maps = serialized()
        quantized.model.format_extras.update(
            source_sha256=_source_sha256(model, float_bytes),
            source_name=_source_name(model, loaded),
            quantization_recipe=quantization_recipe(
                scheme, activations=activations, method=method, bias_correction=correction,
                weight_method=weight_method, scheme_options=scheme_options))
        encoded_model = fmt.lower(quantized.model) if fmt.lower is not None else quantized.model
        custom_ops = custom_ops_in(encoded_model)
        data, maps = fmt.encode(encoded_model)
        lap("encode")

        if fmt.runs_in_litert:
            check_prepares(data, encoded_model, _delegates(fmt, custom_ops), path)
        fidelity = None
        sample_errors: dict[str, Any] = {}  # the planner's per-sample errors, from evaluate
        # not on auto's check candidates: the check scores their outputs itself, and with
        # per_layer (the default) each would measure every layer on the validation samples
        if (fmt.runs_in_litert or fmt.runner is not None) and not candidate:
            where = "LiteRT" if fmt.runs_in_litert else f"its {fmt.name} runtime"
            try:
                runner = None
                if not fmt.runs_in_litert and fmt.runner is not None:
                    runner = ModelRunner(fmt.runner(data))
                fidelity = evaluate(float_bytes, float_maps, float_model, data, maps, quantized,
                                    val_set, per_layer=(per_layer or target_sqnr is not None
                                                        or scheme == "mixed")
                                    and fmt.runs_in_litert and layers,
                                    progress=progress,
                                    delegates=_delegates(fmt, custom_ops),
                                    layer_notes=cal.notes, quant_runner=runner,
                                    kernels=None if runner is None else f"{fmt.name} runtime",
                                    # plans measure every layer on every held-out sample
                                    per_layer_samples=None if target_sqnr is not None
                                    or scheme == "mixed" else PER_LAYER_SAMPLES,
                                    float_reference=float_reference,
                                    energies=sample_errors if fmt.runs_in_litert
                                    and runner is None and (target_sqnr is not None
                                                            or scheme == "mixed") else None)
            except EdgeSDKError as exc:
                raise ConversionError(f"the exported model does not run in {where}: {exc}"
                                      ) from exc
        def measure_layers() -> Any:  # the float side kept by float_reference: one quantised run
            return per_layer_sqnr(float_bytes, float_maps, float_model, data, maps, quantized,
                                  val_set, None, _delegates(fmt, custom_ops), cal.notes,
                                  float_reference)

        later = not layers and fidelity is not None and fmt.runs_in_litert
        return _Built(quantized, encoded_model, custom_ops, data, maps, fidelity,
                      measure_layers if later else None, sample_errors)

    solvers, kept = [solver], None
    if solver.method == "auto" and qat is None and target_sqnr is None \
            and scheme != "mixed" and len(cal_set) >= AUTO_CHECK_SAMPLES:
        # the per-layer choice and the plain methods, each solved on half the calibration
        # samples and compared at the model's outputs on the other half, then the halves
        # swapped, the two folds' errors pooled (`method_check`)
        folds = [(cal_set.subset(f), cal_set.subset(c)) for f, c in fold_halves(len(cal_set))]
        fold_solvers = [weight_solver("auto", float_model, fit, bias_corrected=correction != "none",
                                      input_means=cal.means if correction != "none" else None)
                        for fit, _ in folds]
        solvers += fold_solvers
        float_runner = LiteRTRunner(serialized()[0])
        floats = [float_reference.outputs_for(float_runner, held) for _, held in folds]

        def candidate(method: str, fold: int) -> _Built:
            solver_ = fold_solvers[fold]
            if method != "auto":
                solver_ = plain_solver(solver_, method)
                solvers.append(solver_)
            return build(plan, lap, solver_=solver_, candidate=True)

        def check_outputs(b: _Built, held: Any) -> list[Any]:
            """b's outputs on a check half, in LiteRT: another format's model is scored as
            its .tflite (the same quantised model), so a .tflite and an .edge export with the
            same settings keep the same candidate and write the same codes."""
            if fmt.runs_in_litert:
                return outputs_of(b.data, held, _delegates(fmt, b.custom_ops))
            lowered = TFLITE.lower(b.quantized.model) if TFLITE.lower else b.quantized.model
            return outputs_of(TFLITE.encode(lowered)[0], held,
                              _delegates(TFLITE, custom_ops_in(lowered)))

        check = choose_method(
            candidate,
            lambda b, fold: output_energies(floats[fold], check_outputs(b, folds[fold][1])),
            sum(len(held) for _, held in folds), check_candidates(scheme), folds=len(folds))
        solver.notes.append(check.describe())
        if check.chosen != "auto":  # the plain method solved on all the samples
            kept = plain_solver(solver, check.chosen)
            solvers.append(kept)
    built = build(plan, lap, solver_=kept)
    if kept is not None:
        solver.notes.extend(kept.notes)
    if solver.method in ("gptq", "adaround", "auto") and qat is None:
        # Hessians + solving, part of "quantize"
        timings[solver.method] = round(sum(s.seconds for s in solvers), 4)
    notes += solver.notes
    if stem is not None:
        timings["stem"] = round(stem.seconds, 4)  # part of "calibrate" and "quantize"
    if stem is not None and (stem.rounded or stem.choices):
        notes.append(stem.describe())
    elif stem is not None and stem.skipped:
        notes.append(stem.skipped)
    if heads is not None and heads.describe():
        timings["heads"] = round(heads.seconds, 4)  # part of "quantize"
        notes.append(heads.describe())
    float_bytes = serialized()[0]
    planned = mixed = None
    if scheme == "mixed":
        if built.fidelity is None:
            raise ConversionError(f"scheme 'mixed' measures every candidate, and format "
                                  f"{fmt.name!r} has no runner here")
        latency = None if budget_ms is None else latency_source(latency_profile, fmt.suffix)
        cal_reference = FloatReference()  # the float outputs on cal_set, run once

        def on_calibration(b: _Built) -> dict[str, Any]:
            """A build's per-sample errors on the calibration samples (mixed's second set)."""
            energies: dict[str, Any] = {}
            evaluate(*serialized(), float_model, b.data, b.maps, b.quantized, cal_set,
                     per_layer=False, delegates=_delegates(fmt, b.custom_ops),
                     float_reference=cal_reference, energies=energies)
            return energies

        built, plan, mixed = _mixed(float_model, plan, budget_bytes, built, build,
                                    val_set, options, cal_set, getattr(solver, "hessians", None),
                                    budget_ms, latency, on_calibration)
        timings["mixed"] = mixed.seconds  # the search's exports, part of "validate"
    if target_sqnr is not None and built.fidelity is not None:
        built, plan, planned = _plan_to_target(float_model, plan, float(target_sqnr), built,
                                               build, val_set, fmt, costs)
    quantized, encoded_model, custom_ops = built.quantized, built.encoded_model, built.custom_ops
    data, fidelity = built.data, built.fidelity
    if fidelity is not None:
        if cal.synthetic:
            fidelity.notes.append("calibrated on synthetic data: these numbers say nothing about "
                                  "real inputs")
        for text in fidelity.warnings:  # never silent: also Python's warnings (the CLI's stderr)
            warnings.warn(text, FidelityWarning, stacklevel=2)
        for text in planned.warnings if planned is not None else ():  # target not guaranteed
            warnings.warn(text, FidelityWarning, stacklevel=2)
    else:
        notes.append(f"format {fmt.name!r} has no runner here: no fidelity report")
    lap("validate")

    result = ExportResult(
        path=path, format=fmt.name, scheme=scheme, size_bytes=len(data),
        float_size_bytes=len(float_bytes), input_size_bytes=_source_size(model),
        op_counts=encoded_model.op_counts(),
        precision={lr.name: lr.precision for lr in quantized.layers},
        fallbacks=quantized.fallbacks,
        inputs=[_info(t) for t in quantized.model.main.inputs],
        outputs=[_info(t) for t in quantized.model.main.outputs],
        calibration=CalibrationInfo(cal.method, cal.samples, cal.source, cal.synthetic,
                                    correction),
        fidelity=fidelity, timings=timings, source=f"{loaded.kind}: {loaded.name}",
        # synthetic calibration data is noted once (the sample set's own note when it came through)
        notes=notes + (["calibrated on synthetic random data: activation ranges are not "
                        "representative of real inputs"]
                       if cal.synthetic and not any("synthetic" in n for n in notes) else []),
        precision_notes={**plan.notes, **quantized.hybrid_kept}, custom_ops=custom_ops,
        planner=planned, mixed=mixed,
    )
    _write(result, data, fmt, report)
    lap("write")
    timings["total"] = round(time.perf_counter() - start, 4)
    return result


@dataclass
class _Built:
    """One quantise + encode + validate of the export."""

    quantized: QuantizedModel
    encoded_model: Model
    custom_ops: dict[str, int]
    data: bytes
    maps: Any
    fidelity: FidelityReport | None
    #: the per-layer SQNR, measured when asked (a build without it)
    measure_layers: Callable[[], Any] | None = None
    #: per output, the held-out samples' signal and error energies (target_sqnr= builds:
    #: from the fidelity run itself, so the planner's bound costs no second run)
    sample_errors: dict[str, Any] = field(default_factory=dict)


def _mixed(float_model: Model, plan: PrecisionPlan, budget_bytes: int | None, first: _Built,
           build: Callable[..., _Built], val_set: SampleSet,
           options: Mapping[str, Any], cal_set: SampleSet, hessians: Any,
           budget_ms: float | None = None, latency: Any = None,
           on_calibration: Callable[[_Built], Any] | None = None,
           ) -> tuple[_Built, PrecisionPlan, MixedReport]:
    """export(scheme="mixed", budget_bytes=): bits per layer under the budget, measured. The
    search's sensitivities are the calibration samples' Hessian losses, so the points it
    measures are built without their per-layer SQNR (one LiteRT run of every tensor each):
    only the chosen one's report gets it."""
    def as_attempt(plan_: PrecisionPlan, built: _Built) -> Attempt:
        return _attempt(float_model, val_set, plan_, built)

    chosen, report = mixed_search(float_model, budget_bytes,
                                  lambda p: as_attempt(p, build(p, lambda stage: None, False)),
                                  as_attempt(plan, first), options, samples=cal_set,
                                  hessians=hessians or None, budget_ms=budget_ms,
                                  latency=latency,
                                  on_calibration=None if on_calibration is None
                                  else lambda a: on_calibration(a.payload))
    with_layers(chosen)
    return chosen.payload, chosen.plan, report


def _attempt(float_model: Model, val_set: SampleSet, plan: PrecisionPlan, built: _Built,
             ) -> Attempt:
    """One build as the mixed search or the precision planner weighs it, with its deferred
    per-layer SQNR and its per-sample errors (the planner's bound, mixed's paired choice)."""
    assert built.fidelity is not None
    return Attempt(plan, built.fidelity, len(built.data),
                   input_sqnr(float_model, built.quantized, val_set),
                   {lr.name: lr.precision for lr in built.quantized.layers}, built,
                   built.measure_layers, built.sample_errors)


def _plan_to_target(float_model: Model, plan: PrecisionPlan, target_db: float, first: _Built,
                    build: Callable[[PrecisionPlan, Callable[[str], None]], _Built],
                    val_set: SampleSet, fmt: OutputFormat, costs: CostModel | None = None,
                    ) -> tuple[_Built, PrecisionPlan, PlannerReport]:
    """export(target_sqnr=): the precision planner over re-exports of the model."""
    def as_attempt(plan_: PrecisionPlan, built: _Built) -> Attempt:
        return _attempt(float_model, val_set, plan_, built)

    def attempt(plan_: PrecisionPlan) -> Attempt:
        return as_attempt(plan_, build(plan_, lambda stage: None, False))

    chosen, planned = plan_to_target(float_model, plan, target_db, attempt,
                                     first=as_attempt(plan, first), cost_model=costs)
    with_layers(chosen)  # the written file's report lists its layers, as without a target
    if planned.kept:
        planned.latency_before_ms = measure_latency_ms(
            first.data, val_set, _delegates(fmt, first.custom_ops))
        built: _Built = chosen.payload
        planned.latency_after_ms = measure_latency_ms(
            built.data, val_set, _delegates(fmt, built.custom_ops))
        # what each kept layer costs, measured here (its operators run alone in both files)
        # rather than from the KERNEL_NS table of another host
        measured_latency(planned, float_model,
                         op_times_ms(first.data, delegates=_delegates(fmt, first.custom_ops)),
                         op_times_ms(built.data, delegates=_delegates(fmt, built.custom_ops)))
    return chosen.payload, chosen.plan, planned


def check_prepares(data: bytes, model: Model, delegates: list[Any] | None,
                   path: Path) -> None:
    """Prepare the encoded model in LiteRT with its builtin kernels (XNNPACK would take over the
    ops it knows and skip their checks, but a device without it runs these), so that a file
    LiteRT refuses is never written: a ConversionError names the node that failed."""
    import re

    from sdk.run.litert import backend

    try:
        interpreter = backend().interpreter(model_content=data, num_threads=1, xnnpack=False,
                                            delegates=delegates)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        text = str(exc)
        where = ""
        found = re.search(r"Node number (\d+) \((\w+)\)", text)
        if found:
            index, op_type = int(found.group(1)), found.group(2)
            ops = model.main.operators
            if index < len(ops) and ops[index].type == op_type:
                where = f" at {op_type} {layer_name(ops[index])!r} (node {index})"
            else:
                where = f" at {op_type} (node {index})"
        reason = " ".join(line.strip() for line in text.splitlines() if line.strip())
        raise ConversionError(f"the quantised model for {path} does not prepare in LiteRT's "
                              f"builtin kernels{where}: {reason}; nothing was written") from exc


def _source_sha256(source: Any, float_bytes: bytes) -> str:
    """SHA-256 of what the export started from: the model file, or the bytes / ModelProto
    given; for models that are no single file (in-memory Keras models, SavedModel folders,
    IR models) the float .tflite the SDK converted them to."""
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        return sha256_file(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(source)).hexdigest()
    if hasattr(source, "SerializeToString") and hasattr(source, "graph"):  # onnx.ModelProto
        return hashlib.sha256(source.SerializeToString()).hexdigest()
    return hashlib.sha256(float_bytes).hexdigest()


def _source_size(source: Any) -> int | None:
    """Bytes of what the export started from: the model file, a SavedModel folder's files, or
    the bytes given; None for in-memory models (Keras, torch, IR)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            return path.stat().st_size
        if path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(bytes(source))
    if hasattr(source, "ByteSize") and hasattr(source, "graph"):  # onnx.ModelProto
        return int(source.ByteSize())
    return None


def _source_name(source: Any, loaded: LoadedModel) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return loaded.name


def quantization_recipe(scheme: str, *, activations: str = "int8", method: str = "mse",
                        bias_correction: str = "analytic", weight_method: str | None = None,
                        scheme_options: Mapping[str, Any] | None = None) -> str:
    """How a model was quantised, as the .edge metadata's `quantization_recipe` records it:
    the scheme, then `key=value` settings separated by "; " (scheme options sorted by key),
    e.g. "ternary; activations=int8; method=mse; bias_correction=analytic; ternary_scale=median".
    """
    parts = [scheme, f"activations={activations}", f"method={method}",
             f"bias_correction={bias_correction}"]
    if weight_method is not None:
        parts.append(f"weight_method={weight_method}")
    parts += [f"{k}={v}" for k, v in sorted((scheme_options or {}).items())]
    return "; ".join(parts)


def _bias_mode(value: bool | str) -> str:
    if value is True:
        return "analytic"
    if value is False or value is None:
        return "none"
    if value not in BIAS_CORRECTIONS:
        raise ConversionError(f"bias_correction must be one of {', '.join(BIAS_CORRECTIONS)}, "
                              f"not {value!r}")
    return str(value)


def _delegates(fmt: OutputFormat, custom_ops: Mapping[str, int]) -> list[Any] | None:
    """What LiteRT needs to run the encoded model: the format's delegates, and the edgesdk
    delegate when the model holds our custom ops."""
    delegates = list(fmt.delegates()) if fmt.delegates else []
    if custom_ops:
        from sdk.run.delegate import load_delegate

        delegates.append(load_delegate())
    return delegates or None


def input_specs(model: Model) -> list[InputSpec]:
    names: dict[int, str] = {}
    for sig in model.signatures:
        if sig.graph_index == 0:
            names.update({id(t): k for k, t in sig.inputs.items()})
    return [InputSpec.from_tensor(t, names.get(id(t))) for t in model.main.inputs]


def _min_check(scheme: str, target_sqnr: float | None) -> int:
    """Held-out samples the plans need at least (target_sqnr=, scheme "mixed"), else 0."""
    return MIN_CONFIDENT_SAMPLES if target_sqnr is not None or scheme == "mixed" else 0


def held_out_samples(specs: list[InputSpec], calibration: Any, *, validation: Any = None,
                     max_samples: int = 1000, validation_split: float = 0.2,
                     scheme: str = "int8", target_sqnr: float | None = None) -> SampleSet:
    """The samples `export(...)` with these arguments measures its fidelity on (`validation`,
    else the part of the calibration samples it held out), e.g. for the NPU simulator of
    `sdk.target_export`."""
    return _samples(calibration, validation, specs, max_samples, validation_split,
                    _min_check(scheme, target_sqnr))[1]


def _samples(calibration: Any, validation: Any, specs: list[InputSpec], max_samples: int,
             split: float, min_check: int = 0) -> tuple[SampleSet, SampleSet, list[str]]:
    """(calibration, held-out, notes). `min_check` (target_sqnr=): hold out at least that many
    samples for the planner's check where `split` gives fewer, up to half of them."""
    notes: list[str] = []
    if calibration is None:
        raise CalibrationError(
            "calibration data is required for int8 export: pass calibration=<numpy array, "
            "iterable, tf.data.Dataset or image folder> with ~100-1000 representative inputs, "
            "or calibration='synthetic' for a smoke test with random data")
    samples = as_samples(calibration, specs, max_samples=max_samples)
    if validation is not None:
        val = as_samples(validation, specs, max_samples=MAX_VALIDATION_SAMPLES,
                         what="validation")
        val.source = f"validation data: {val.source}"
        return samples, val, notes
    if len(samples) < MIN_SAMPLES_TO_SPLIT:
        notes.append(f"only {len(samples)} calibration samples: fidelity is measured on the "
                     "calibration samples themselves (pass validation= for held-out numbers)")
        val = samples.subset(slice(0, len(samples)), f"the {len(samples)} calibration samples")
        return samples, val, notes
    wider = min(0.5, min_check / len(samples))
    if wider > split:
        notes.append(f"target_sqnr / mixed: {round(len(samples) * wider)} of the "
                     f"{len(samples)} calibration samples held out for the planner's check or "
                     f"the mixed search's choice (validation_split="
                     f"{split:g} leaves {max(1, round(len(samples) * split))}); pass validation= "
                     "to calibrate on all of them")
        split = wider
    if min_check > 0:  # target_sqnr=: the check spread over the samples, not their tail
        cal, val = _spread_split(samples, split)
    else:
        cal, val = samples.split(split)
    if len(val) > MAX_VALIDATION_SAMPLES:
        val = val.subset(slice(0, MAX_VALIDATION_SAMPLES),
                         f"{MAX_VALIDATION_SAMPLES} of the {val.source}")
    return cal, val, notes


def _spread_split(samples: SampleSet, fraction: float) -> tuple[SampleSet, SampleSet]:
    """(calibration, check) with the check samples evenly spaced over the set (every other
    one when half are held out), not its last part: calibration data in time or class order
    (windows of one audio stream, files sorted by kind) would leave the planner a check unlike
    the rest (oww_silero_vad_v4: the tail held no speech onset)."""
    import numpy as np

    n = len(samples)
    held = max(1, round(n * fraction))
    idx = np.minimum(((np.arange(held) + 0.5) * n / held).astype(int), n - 1)
    keep = np.setdiff1d(np.arange(n), idx)
    return (samples.subset(keep, f"{samples.source}: {len(keep)} of {n} samples"),
            samples.subset(idx, f"{samples.source}: {held} of {n} samples, evenly spaced "
                                f"(1 in {n / held:.3g}), held out from calibration"))


def _info(t: Tensor) -> TensorInfo:
    q = t.quant
    quantized = q is not None and t.dtype in (DType.INT8, DType.UINT8, DType.INT16) \
        and q.scale.size == 1
    return TensorInfo(t.name, tuple(t.shape), t.dtype.name.lower(),
                      float(q.scale[0]) if quantized else None,  # type: ignore[union-attr]
                      int(q.zero_point[0]) if quantized else None)  # type: ignore[union-attr]


def report_path_for(path: Path) -> Path:
    """The JSON report beside a model: `<stem>.report.json` for .tflite, `<name>.report.json`
    for other formats (m.edge -> m.edge.report.json), so m.tflite and m.edge never share one."""
    path = Path(path)
    if path.suffix.lower() == ".tflite":
        return path.with_name(path.stem + ".report.json")
    return path.with_name(path.name + ".report.json")


def _write(result: ExportResult, data: bytes, fmt: OutputFormat, report: bool) -> None:
    atomic_write_bytes(result.path, data)
    if report:
        result.report_path = report_path_for(result.path)
        try:
            atomic_write_text(result.report_path, result.to_json() + "\n")
        except BaseException:
            # the pair is the product: do not leave a model without its report
            result.path.unlink(missing_ok=True)
            raise


def _safe(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return keep.strip("._") or "model"


def load_report(path: str | os.PathLike[str]) -> FidelityReport | None:
    """The fidelity part of a JSON report written by `export`."""
    import json

    d = json.loads(Path(path).read_text())
    return FidelityReport.from_dict(d["fidelity"]) if d.get("fidelity") else None


__all__ = ["export", "input_specs", "load_report", "quantization_recipe", "report_path_for"]
