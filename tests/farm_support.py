"""Helpers for the board farm tests: tiny models in four precisions, farm.toml files."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def build_mlp(path: Path, *, seed: int = 0, sizes: tuple[int, ...] = (64, 128, 128, 10)) -> Path:
    """A float32 MLP (FULLY_CONNECTED + RELU layers, SOFTMAX) written with our IR and writer."""
    from sdk.converters.ir import DType, Graph, Model, Operator, Tensor
    from sdk.converters.tflite.writer import write_tflite

    rng = np.random.default_rng(seed)
    g = Graph(name="main")
    x = g.add_tensor(Tensor("input", (1, sizes[0]), DType.FLOAT32))
    h = x
    layers = list(itertools.pairwise(sizes))
    for i, (k, n) in enumerate(layers):
        w = g.add_tensor(Tensor(f"dense{i}/weights", (n, k), DType.FLOAT32,
                                data=(rng.standard_normal((n, k)) / np.sqrt(k))
                                .astype(np.float32)))
        b = g.add_tensor(Tensor(f"dense{i}/bias", (n,), DType.FLOAT32,
                                data=(0.1 * rng.standard_normal(n)).astype(np.float32)))
        o = g.add_tensor(Tensor(f"dense{i}", (1, n), DType.FLOAT32))
        act = "RELU" if i < len(layers) - 1 else "NONE"
        g.operators.append(Operator("FULLY_CONNECTED", [h, w, b], [o],
                                    attrs={"fused_activation_function": act}))
        h = o
    probs = g.add_tensor(Tensor("probs", (1, sizes[-1]), DType.FLOAT32))
    g.operators.append(Operator("SOFTMAX", [h], [probs], attrs={"beta": 1.0}))
    g.inputs, g.outputs = [x], [probs]
    write_tflite(Model(graphs=[g]), path)
    return path


def mlp_models(folder: Path) -> dict[str, Path]:
    """The MLP as float32, int8 (sdk.export, with its report; .tflite and .edge), int4 and
    ternary (ai-edge-quantizer's dynamic_wi4_afp32 / dynamic_wi2c_afp32 recipes: standard
    INT4/INT2 .tflite)."""
    import sdk

    folder.mkdir(parents=True, exist_ok=True)
    out = {"float32": build_mlp(folder / "mlp_float32.tflite")}
    calibration = np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32)
    sdk.export(out["float32"], "int8", calibration=calibration, output=folder / "mlp_int8.tflite")
    out["int8"] = folder / "mlp_int8.tflite"
    out["int8-edge"] = folder / "mlp_int8_edge.edge"
    sdk.export(out["float32"], "int8", calibration=calibration, output=out["int8-edge"],
               format="edge")
    from ai_edge_quantizer import quantizer, recipe

    for precision, name in (("int4", "dynamic_wi4_afp32"), ("ternary", "dynamic_wi2c_afp32")):
        q = quantizer.Quantizer(str(out["float32"]), getattr(recipe, name)())
        path = folder / f"mlp_{precision}.tflite"
        q.quantize().export_model(str(path), overwrite=True)
        out[precision] = path
    return out


# ---------------------------------------------------------------------------- TOML
def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(x)}" for k, x in v.items()) \
            + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def toml_dumps(data: Mapping[str, Any]) -> str:
    """A farm.toml document: [farm], [defaults], [groups], then one [boards.NAME] per board."""
    lines: list[str] = []
    sections = [(s, data[s]) for s in ("farm", "defaults", "groups") if s in data]
    sections += [(f"boards.{json.dumps(n)}", t) for n, t in data.get("boards", {}).items()]
    for header, body in sections:
        lines.append(f"[{header}]")
        lines += [f"{json.dumps(str(k))} = {_value(v)}" for k, v in body.items()]
        lines.append("")
    return "\n".join(lines)


def write_farm(path: Path, boards: Mapping[str, Mapping[str, Any]], *,
               defaults: Mapping[str, Any] | None = None,
               farm: Mapping[str, Any] | None = None,
               groups: Mapping[str, list[str]] | None = None) -> Path:
    data: dict[str, Any] = {}
    if farm:
        data["farm"] = dict(farm)
    if defaults:
        data["defaults"] = dict(defaults)
    data["boards"] = {name: dict(table) for name, table in boards.items()}
    if groups:
        data["groups"] = dict(groups)
    path.write_text(toml_dumps(data))
    return path


def board_table(board: Any, **extra: Any) -> dict[str, Any]:
    """The farm.toml table of an EmulatedBoard (its DeviceConfig) plus farm keys."""
    table = board.device_config().to_dict()
    table.update(extra)
    return table


# ---------------------------------------------------------------------------- browser
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    import shutil

    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("no headless Chromium: apt-get install chromium-headless-shell "
                         "(`make setup` installs it)")


def _chromium(*args: str, timeout: float = 60) -> str:
    import subprocess

    result = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu",
                             "--no-first-run", "--disable-extensions", *args],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def rendered_dom(page: Path) -> str:
    """The page's DOM after its scripts ran, from a real headless browser (offline: the page
    may load nothing from the network)."""
    return _chromium("--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri())


def screenshot(page: Path, png: Path, size: str = "1000,2400") -> Path:
    _chromium(f"--window-size={size}", "--hide-scrollbars", f"--screenshot={png}",
              page.resolve().as_uri())
    return png


class Elements:
    """Elements of an HTML/SVG document: `count("circle", "sample")`."""

    def __init__(self, markup: str):
        from html.parser import HTMLParser

        self.items: list[tuple[str, dict[str, str]]] = []
        items = self.items

        class Collect(HTMLParser):
            def handle_starttag(self, tag, attrs):
                items.append((tag, {k: v or "" for k, v in attrs}))

            handle_startendtag = handle_starttag

        Collect().feed(markup)

    def find(self, tag: str, cls: str | None = None, **attrs: str) -> list[dict[str, str]]:
        out = []
        for t, a in self.items:
            if t != tag or (cls is not None and cls not in a.get("class", "").split()):
                continue
            if all(a.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append(a)
        return out

    def count(self, tag: str, cls: str | None = None, **attrs: str) -> int:
        return len(self.find(tag, cls, **attrs))
