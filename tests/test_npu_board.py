"""NPU boards, device side (issue 18): which nodes a configured delegate claimed, from the
interpreter's node list, reported by sdk.profile on an emulated board.

No NPU hardware exists here: the "NPU delegate" is a stand-in, the edgesdk delegate (a real
TFLite external delegate that claims the EDGE_* custom ops of 2-bit layers), loaded through the
device config's `delegates` exactly as a vendor's libvx_delegate.so / Ethos-U delegate would be.
"""

from __future__ import annotations

import pytest
from npu_support import build_classifier, images

import sdk
from sdk.devices.config import DelegateConfig


@pytest.fixture(scope="module")
def stand_in_delegate():
    from sdk.devices.runners.delegates import edgesdk_delegate

    try:
        return edgesdk_delegate("x86_64")
    except Exception as exc:  # not built in this checkout
        pytest.skip(f"the edgesdk delegate (the stand-in NPU delegate) is not built: {exc}")


def _board(emulated_board, delegate):
    return emulated_board.device_config(delegates=(
        DelegateConfig(path=str(delegate), name="stand-in-npu"),))


def test_profile_reports_the_nodes_the_delegate_claimed(emulated_board, stand_in_delegate,
                                                        tmp_path) -> None:
    float_model = build_classifier(tmp_path / "m.tflite")
    int8 = sdk.export(float_model, "int8", calibration=images(),
                      output=tmp_path / "m_int8.tflite", report=False, per_layer=False)
    profile = sdk.profile(int8.path, _board(emulated_board, stand_in_delegate), runs=2,
                          warmup=0)
    notes = [n for n in profile.notes if " claimed " in n]
    assert len(notes) == 1, profile.notes
    # the stand-in takes the int8 CONV_2D and FULLY_CONNECTED; the rest stays on the CPU
    assert "claimed 2 of 6 nodes (CONV_2D#1, FULLY_CONNECTED#3)" in notes[0], notes
    assert "on the CPU: QUANTIZE#0, RESHAPE#2, SOFTMAX#4, DEQUANTIZE#5" in notes[0], notes
    assert not any(n.startswith("warning:") for n in profile.notes), profile.notes
    # compile / warm-up (init, first run) apart from the steady state
    assert profile.init_ms is not None and profile.first_run_ms is not None
    assert profile.latency.runs == 2


def test_a_delegate_that_claims_nothing_is_a_warning(emulated_board, stand_in_delegate,
                                                     tmp_path) -> None:
    float_model = build_classifier(tmp_path / "m.tflite")
    profile = sdk.profile(float_model, _board(emulated_board, stand_in_delegate), runs=2,
                          warmup=0)
    # the stand-in claims no float32 op: the model ran entirely on the CPU, and the profile
    # says so instead of implying the NPU ran it
    assert any(n.startswith("warning: the delegate(s)") and "claimed none of the model's 4 "
               "nodes" in n for n in profile.notes), profile.notes
    assert any("claimed 0 of 4 nodes" in n for n in profile.notes), profile.notes
