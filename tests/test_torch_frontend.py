"""PyTorch in: `sdk.export(module, ..., example_inputs=(x,))` through PyTorch's own ONNX exporter.

torchvision architectures are built here with random weights (no downloads). Their BatchNorm
statistics are settled on random batches first, so that activations have realistic ranges rather
than the initial mean 0 / variance 1. The float model we import must compute what PyTorch does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.base.errors import ConversionError
from sdk.converters.frontends import load_model
from sdk.converters.tflite import serialize
from sdk.run.runner import LiteRTRunner

torch = pytest.importorskip("torch", reason="PyTorch input needs the [torch] extra")
torchvision = pytest.importorskip("torchvision", reason="the architectures come from torchvision")
pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")

pytestmark = pytest.mark.slow


def _settled(module: torch.nn.Module, size: int, seed: int = 0) -> torch.nn.Module:
    """Random weights, BatchNorm running statistics averaged over a few random batches."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    module.train()
    with torch.no_grad():
        for _ in range(3):
            module(torch.rand(4, 3, size, size, generator=gen) * 2 - 1)
    return module.eval()


def _vit(size: int) -> torch.nn.Module:
    vit = torchvision.models.VisionTransformer(image_size=size, patch_size=16, num_layers=2,
                                               num_heads=2, hidden_dim=64, mlp_dim=128,
                                               num_classes=10)
    torch.nn.init.normal_(vit.heads.head.weight, std=0.1)  # torchvision zero-initialises it
    return vit


ARCHS = {
    "mobilenet_v3_small": lambda size: torchvision.models.mobilenet_v3_small(num_classes=10),
    "resnet18": lambda size: torchvision.models.resnet18(num_classes=10),
    "efficientnet_b0": lambda size: torchvision.models.efficientnet_b0(num_classes=10),
    "vit": _vit,
}
SIZE = 64


@pytest.fixture(scope="module")
def modules() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {name: _settled(build(SIZE), SIZE) for name, build in ARCHS.items()}


def _images(n: int, seed: int) -> np.ndarray:
    """Smooth image-like inputs: low-frequency noise upsampled, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(-1, 1, (n, 3, SIZE // 8, SIZE // 8)).astype(np.float32)
    return np.repeat(np.repeat(low, 8, axis=2), 8, axis=3)


def _float_outputs(model: sdk.converters.ir.Model, x: np.ndarray) -> np.ndarray:
    data, _ = serialize(model)
    return LiteRTRunner(data, reference=True).invoke([x])[0]


@pytest.mark.parametrize("arch", list(ARCHS))
def test_float_import_matches_pytorch(modules: dict[str, torch.nn.Module], arch: str) -> None:
    module = modules[arch]
    x = _images(1, seed=1)
    loaded = load_model(module, example_inputs=(torch.from_numpy(x),))
    assert loaded.kind == "pytorch"
    assert not module.training
    got = _float_outputs(loaded.model, x)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape
    scale = float(np.abs(want).max())
    assert scale > 1e-3, f"{arch}: degenerate outputs, the test would prove nothing"
    assert float(np.abs(got - want).max()) <= 1e-4 * scale + 1e-6


def test_training_flag_is_restored() -> None:
    module = torchvision.models.mobilenet_v3_small(num_classes=10).train()
    load_model(module, example_inputs=torch.zeros(1, 3, SIZE, SIZE))
    assert module.training


def test_int8_export_of_a_module(modules: dict[str, torch.nn.Module], tmp_path: Path) -> None:
    # ResNet-18 with settled statistics: ONNX Runtime's quantize_static (QDQ, per-channel) gets
    # 26.3 dB on these inputs (measured 2026-12-06). Random-weight MobileNetV3 is no fair
    # measure: random squeeze-excite gates make int8 lossy for every tool (ORT 8.7 dB).
    module = modules["resnet18"]
    result = sdk.export(module, "int8", example_inputs=(torch.zeros(1, 3, SIZE, SIZE),),
                        calibration=_images(64, seed=2), output=tmp_path / "resnet18.tflite")
    assert (tmp_path / "resnet18.tflite").is_file()
    assert result.inputs[0].shape == (1, 3, SIZE, SIZE)  # NCHW, as the module takes it
    worst = min(o.sqnr_db for o in result.fidelity.outputs)
    assert worst > 25.0, result.fidelity


def test_pt2_file_imports_like_the_module(modules: dict[str, torch.nn.Module],
                                          tmp_path: Path) -> None:
    module = modules["resnet18"]
    x = _images(1, seed=3)
    program = torch.export.export(module, (torch.from_numpy(x),))
    path = tmp_path / "resnet18.pt2"
    torch.export.save(program, str(path))
    from_file = _float_outputs(load_model(path).model, x)
    from_module = _float_outputs(load_model(module, example_inputs=(torch.from_numpy(x),)).model,
                                 x)
    np.testing.assert_allclose(from_file, from_module, rtol=1e-5, atol=1e-6)


def test_module_without_example_inputs_is_refused() -> None:
    with pytest.raises(ConversionError, match="example_inputs"):
        load_model(torchvision.models.resnet18())


def test_example_inputs_on_other_models_is_refused(tmp_path: Path) -> None:
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(b"")
    with pytest.raises(ConversionError, match="example_inputs applies to PyTorch"):
        load_model(onnx_path, example_inputs=(torch.zeros(1),))
