"""MediaPipe's attention-mesh custom ops (Landmarks2TransformMatrix, TransformTensorBilinear,
TransformLandmarks, version 2) are rewritten into builtins at import: the rewritten float model
runs in stock LiteRT and matches a reference written from the math MediaPipe documents (its
ops' sources), including sample points outside the feature map; it exports to INT8. Version 1
is still refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk.base.errors import UnsupportedOpError
from sdk.converters.frontends import load_model
from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
from sdk.converters.tflite import to_tflite_bytes

N_LANDMARKS, FEAT_HW, CROP = 24, 12, 6
LEFT, RIGHT, SUBSET = 3, 17, [3, 5, 8, 11, 13, 17, 20]
SCALE = (1.5, 1.25)
TARGET = 0.3


def _options() -> bytes:
    from flatbuffers import flexbuffers

    return bytes(flexbuffers.Dumps({
        "left_rotation_idx": LEFT, "right_rotation_idx": RIGHT, "output_height": CROP,
        "output_width": CROP, "scale_x": SCALE[0], "scale_y": SCALE[1],
        "subset_idxs": SUBSET, "target_rotation_radians": TARGET}))


def _model(version: int = 2) -> bytes:
    """landmarks [1, N, 3], features [1, 12, 12, 4], points [1, 7, 2] -> matrix, crop, points
    transformed: the three ops wired as the face mesh with attention wires them."""
    from flatbuffers import flexbuffers

    g = Graph(name="main")
    lm = g.add_tensor(Tensor("landmarks", (1, N_LANDMARKS, 3), DType.FLOAT32))
    feat = g.add_tensor(Tensor("features", (1, FEAT_HW, FEAT_HW, 4), DType.FLOAT32))
    pts = g.add_tensor(Tensor("points", (1, 7, 2), DType.FLOAT32))
    m = g.add_tensor(Tensor("matrix", (1, 4, 4), DType.FLOAT32))
    crop = g.add_tensor(Tensor("crop", (1, CROP, CROP, 4), DType.FLOAT32))
    moved = g.add_tensor(Tensor("moved", (1, 7, 2), DType.FLOAT32))
    crop_opts = bytes(flexbuffers.Dumps({"output_height": CROP, "output_width": CROP}))
    g.operators = [
        Operator("CUSTOM", [lm], [m], custom_code="Landmarks2TransformMatrix",
                 custom_options=_options(), version=version),
        Operator("CUSTOM", [feat, m], [crop], custom_code="TransformTensorBilinear",
                 custom_options=crop_opts, version=version),
        Operator("CUSTOM", [pts, m], [moved], custom_code="TransformLandmarks",
                 version=version)]
    g.inputs, g.outputs = [lm, feat, pts], [m, crop, moved]
    return to_tflite_bytes(Model([g]))


# ------------------------------------------------------------ the documented math, in numpy
def _rot4(r: float) -> np.ndarray:
    t = np.eye(4)
    t[:2, :2] = [[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]]
    return t


def _shift4(x: float, y: float) -> np.ndarray:
    t = np.eye(4)
    t[0, 3], t[1, 3] = x, y
    return t


def ref_matrix(lm: np.ndarray) -> np.ndarray:
    left, right = lm[0, LEFT, :2].astype(np.float64), lm[0, RIGHT, :2].astype(np.float64)
    r = TARGET - np.arctan2(right[1] - left[1], right[0] - left[0])
    pts = lm[0, SUBSET, :2].astype(np.float64)
    rotated = pts @ _rot4(r)[:2, :2].T
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    w, h = hi - lo
    centre = _rot4(-r)[:2, :2] @ ((lo + hi) / 2)
    scale = np.diag([SCALE[0] * w / CROP, SCALE[1] * h / CROP, 1.0, 1.0])
    t = _shift4(*centre) @ _rot4(-r) @ scale @ _shift4(-CROP / 2, -CROP / 2)
    return t[None].astype(np.float32)


def ref_bilinear(feat: np.ndarray, t: np.ndarray) -> np.ndarray:
    h, w = feat.shape[1:3]
    row_x, row_y = t[0, 0].astype(np.float64), t[0, 1].astype(np.float64)
    row_x[3] += row_x[0] * 0.5 + row_x[1] * 0.5 - 0.5  # v2: align corners
    row_y[3] += row_y[0] * 0.5 + row_y[1] * 0.5 - 0.5
    out = np.zeros((1, CROP, CROP, feat.shape[3]))

    def read(yy: int, xx: int) -> np.ndarray:
        inside = 0 <= yy < h and 0 <= xx < w
        return feat[0, yy, xx] if inside else np.zeros(feat.shape[3])

    for oy in range(CROP):
        for ox in range(CROP):
            c = np.array([ox, oy, 0.0, 1.0])
            x, y = row_x @ c, row_y @ c
            if x < 0 or x > w - 1 or y < 0 or y > h - 1:
                continue
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            fx, fy = x - x0, y - y0
            upper = (1 - fx) * read(y0, x0) + fx * read(y0, x0 + 1)
            lower = (1 - fx) * read(y0 + 1, x0) + fx * read(y0 + 1, x0 + 1)
            out[0, oy, ox] = fy * lower + (1 - fy) * upper
    return out.astype(np.float32)


def ref_landmarks(pts: np.ndarray, t: np.ndarray) -> np.ndarray:
    hom = np.concatenate([pts[0], np.zeros((pts.shape[1], 1)), np.ones((pts.shape[1], 1))], 1)
    return (hom @ t[0, :2].T)[None].astype(np.float32)


def _run(data: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from sdk.run.litert import backend

    it = backend().interpreter(model_content=data, num_threads=1, xnnpack=True)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], feeds[d["name"]])
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def _inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lm = rng.uniform(1.0, FEAT_HW - 2.0, (1, N_LANDMARKS, 3)).astype(np.float32)
    return {"landmarks": lm,
            "features": rng.normal(0, 1, (1, FEAT_HW, FEAT_HW, 4)).astype(np.float32),
            "points": rng.uniform(0, 8, (1, 7, 2)).astype(np.float32)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_attention_mesh_ops_become_builtins_matching_the_documented_math(seed: int) -> None:
    loaded = load_model(_model())
    types = {op.type for op in loaded.model.main.operators}
    assert "CUSTOM" not in types and {"ATAN2", "GATHER", "FLOOR"} <= types
    assert sum("Landmarks2TransformMatrix" in n for n in loaded.notes) == 1
    feeds = _inputs(seed)
    got = _run(to_tflite_bytes(loaded.model), feeds)
    t = ref_matrix(feeds["landmarks"])
    np.testing.assert_allclose(got["matrix"], t, rtol=1e-4, atol=1e-4)
    crop = ref_bilinear(feeds["features"], t)
    if seed == 0:  # some sample points fall outside the feature map (zeros), most inside
        assert (crop == 0).all(axis=-1).any() and (crop != 0).all(axis=-1).sum() > 18
    np.testing.assert_allclose(got["crop"], crop, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(got["moved"], ref_landmarks(feeds["points"], t), rtol=1e-4,
                               atol=1e-4)


def test_attention_mesh_ops_export_to_int8(tmp_path: Path) -> None:
    import sdk

    samples = [_inputs(10 + i) for i in range(24)]
    cal = {k: np.stack([s[k][0] for s in samples]) for k in samples[0]}
    result = sdk.export(_model(), "int8", calibration=cal, output=tmp_path / "mesh.tflite",
                        report=False)
    assert result.fidelity is not None
    by_name = {o.name: o.sqnr_db for o in result.fidelity.outputs}
    assert by_name["moved"] > 20 and by_name["matrix"] > 20


def test_version_1_ops_are_still_refused_by_name() -> None:
    with pytest.raises(UnsupportedOpError, match=r"Landmarks2TransformMatrix.*version 2"):
        load_model(_model(version=1))
