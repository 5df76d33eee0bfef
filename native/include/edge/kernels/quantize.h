// Run-time (dynamic) quantisation of float activations to int8, TFLite's dynamic-range
// ("hybrid") scheme: what LiteRT's hybrid FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D do to
// their float input before an int8 x int8 GEMM with quantised weights.
//
// Each row of `cols` floats gets its own scale (FULLY_CONNECTED: one row per batch row; convs:
// one row per image):
//
//   symmetric   range = max(|min|, |max|); range == 0: q = 0, scale = 1;
//               else scale = range / 127 and q = clamp(round(x * (127 / range)), -127, 127)
//               (zero_point 0; both factors computed in float, as TFLite does).
//   asymmetric  rmin = min(0, min), rmax = max(0, max); rmin == rmax: q = 0, scale = 1, zp = 0;
//               else scale = (rmax - rmin) / 255 (in double, stored as float), the zero point is
//               the one of -128 - rmin / scale and 127 - rmax / scale with the smaller error
//               (|qmin| + |rmin / scale| vs |qmax| + |rmax / scale|), nudged into [-128, 127]
//               and rounded; q = clamp(round(zp + x * float(1.0 / scale)), -128, 127).
//               real x ~= scale * (q - zp).
//
// round() is half away from zero (TfLiteRound). The multiply and the add are separate float
// operations (no FMA), so every ISA gives the same bytes as the scalar reference: only the
// min/max reduction and the element loop are vectorised, and both are exact. Inputs must be
// finite (an infinity or NaN has no int8 image; the result is then unspecified). A row whose
// range is subnormal (1 / scale overflows float, where TFLite would compute 0 * inf) is
// quantised in double: q = clamp(round(zp + x / scale)), the same on every ISA.
#pragma once

#include <cstdint>
#include <optional>

#include "edge/kernels/isa.h"

namespace edge {

enum class InputQuantization { kSymmetric, kAsymmetric };

// Quantises `rows` rows of `cols` (>= 1) floats: q[r * cols + i], scales[r], zero_points[r]
// (zero_points may be null for kSymmetric; it is filled with 0 otherwise). `isa` as isa.h.
void quantize_rows(const float* input, int32_t rows, int32_t cols, InputQuantization mode,
                   int8_t* q, float* scales, int32_t* zero_points,
                   std::optional<Isa> isa = std::nullopt);

// The micro-kernel quantize_rows uses on `isa` (e.g. "f32_qs8_quantize_32x__avx2").
const char* quantize_kernel_name(Isa isa);

}  // namespace edge
