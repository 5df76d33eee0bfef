"""The float import against the publisher's runtime: before any quantisation, does our IR compute
what the published file computes? ONNX files: our float .tflite (read_onnx with the manifest's
input_shapes and constant_inputs, run in LiteRT) against onnxruntime; .tflite files: our float
import (custom ops rewritten, sparse weights densified) against the published file in LiteRT
(where LiteRT loads it). Per model, the worst output's SQNR (dB) over a few corpus inputs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from corpus.manifest import CorpusModel
from corpus.measure import LiteRTRunner, OrtRunner, Runner, align, compare, quiet, short_error
from corpus.prepared import prepare


@dataclass
class FloatCheck:
    name: str
    format: str
    worst_sqnr_db: float | None = None
    error: str | None = None

    def line(self) -> str:
        if self.error is not None:
            return f"{self.name:34s} {self.format:6s} {self.error}"
        db = "exact" if self.worst_sqnr_db == math.inf else f"{self.worst_sqnr_db:.1f} dB"
        return f"{self.name:34s} {self.format:6s} float import vs publisher runtime: {db}"


def check(model: CorpusModel, samples: int = 2, cache: Path | None = None) -> FloatCheck:
    from sdk.converters.frontends import load_model
    from sdk.converters.tflite import to_tflite_bytes

    prep = prepare(model, cache)
    path = prep.path
    out = FloatCheck(model.name, model.format)
    try:
        inputs = [d.name for d in prep.fed]
        feeds = prep.samples(samples, 7)
        with quiet():
            loaded = load_model(str(path), input_shapes=dict(model.input_shapes) or None,
                                constant_inputs=dict(model.constant_inputs) or None)
            ours = LiteRTRunner(to_tflite_bytes(loaded.model), inputs)
            ref: Runner = OrtRunner(str(path)) if model.format == "onnx" else \
                LiteRTRunner(path.read_bytes(), inputs)
        expected = [ref(s) for s in feeds]
        got = [ours(s) for s in feeds]
    except Exception as exc:
        out.error = short_error(exc, 160).replace("\n", " ")
        return out
    idx = align(ref.names, [o.size for o in expected[0]], ours.names, [o.size for o in got[0]])
    stats = compare(expected, [[g[j] for j in idx] for g in got], ref.names)
    out.worst_sqnr_db = min(s.sqnr_db for s in stats)
    return out


__all__ = ["FloatCheck", "check"]
