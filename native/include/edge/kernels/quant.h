// Quantisation parameters shared by every kernel plan: per-tensor activations, fused activation
// clamps and the output type.
//
// Activations are int8, per-tensor asymmetric, as in TFLite: real = scale * (q - zero_point).
#pragma once

#include <cstdint>

namespace edge {

// Per-tensor quantisation of an int8 activation tensor.
struct TensorQuant {
  float scale = 1.0f;
  int32_t zero_point = 0;  // in [-128, 127]
};

// TFLite's fused activation functions that integer kernels implement as a clamp.
enum class Activation { kNone, kRelu, kReluN1To1, kRelu6 };

// The int8 clamp [min, max] of a fused activation, computed exactly as TFLite's
// CalculateActivationRangeQuantized does: quantize(f) = zero_point + round(f / scale) with
// f / scale in float and round() half away from zero, intersected with [-128, 127].
struct ClampRange {
  int32_t min = -128;
  int32_t max = 127;
};
ClampRange activation_range(Activation activation, const TensorQuant& output);

// What a plan writes.
enum class OutputType {
  kInt8,     // requantised int8 (TFLite semantics)
  kFloat32,  // dequantised: real value of the accumulator, (acc) * input_scale * weight_scale
  kInt32,    // the int32 accumulator itself, bias included, before requantisation (for tests
             // and for callers with their own epilogue)
};

// "none", "relu", "relu_n1_to_1", "relu6" (TFLite's names in lower case).
const char* activation_name(Activation activation);
// Parses those names (and TFLite's upper-case spellings); throws std::invalid_argument.
Activation parse_activation(const char* name);

}  // namespace edge
