// The edgesdk TFLite external delegate: runs FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D
// nodes with INT8, INT4 and INT2 (ternary or 2-bit) weights, and the edgesdk custom ops
// EDGE_CONV_INT2 / EDGE_DWCONV_INT2, with the native kernels (edge/kernels/*.h), multi-threaded.
// Everything else stays with LiteRT (XNNPACK or its builtin kernels).
//
// Loading: a shared library exporting the two functions LiteRT's external-delegate loader looks
// for (`ai_edge_litert.interpreter.load_delegate(path, options)`, or `sdk.run.Interpreter`,
// which does it for you):
//     TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n,
//                                                   void (*report_error)(const char*));
//     void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate);
//
// Options (string keys and values):
//   precisions   comma-separated weight types to claim: int8,int4,int2 (default: all three;
//                "int2" covers ternary), and/or the activation kinds to claim: static (int8
//                activations) and dynamic (float activations: dynamic-range, "hybrid" nodes);
//                default: both kinds. E.g. "int4,int2,dynamic" or "static". Custom ops are
//                always claimed: nothing else runs them.
//   ops          comma-separated ops to claim: fully_connected,conv_2d,depthwise_conv_2d
//                (default: all).
//   num_threads  threads for the kernels (default: the interpreter's num_threads, else one per
//                physical core it may run on).
//   isa          force a kernel ISA (scalar, avx2, avxvnni, avx512vnni, neon, dotprod, i8mm);
//                default: the best this CPU runs.
//   rounding     upward (default: LiteRT's optimised builtin kernels, bit for bit, including
//                their depthwise tail channels), away_from_zero (TFLite's reference CONV_2D /
//                DEPTHWISE_CONV_2D) or single (its reference FULLY_CONNECTED); requant.h.
//   claim        faster (default): claim a node only where our kernel is faster than what LiteRT
//                would run for it on this host (XNNPACK, its builtin kernels, or nothing:
//                src/delegate/cost_rule.h has the rule and its calibrated cost table), so that
//                loading the delegate never makes a model slower; all: every node the other
//                options allow (the bit-exactness tests, comparisons).
//   litert_kernels  xnnpack (default) or builtin: what LiteRT runs for the nodes left to it
//                (sdk.run.Interpreter passes builtin when XNNPACK is off).
//   report       a file path: after claiming nodes the delegate writes there, as JSON, what it
//                read through the TFLite ABI (every tensor and node) and what it claimed or
//                skipped and why (the claim rule's reason per node), with the kernel each
//                claimed node runs.
//
// Claimed nodes: int8 activations (per-tensor scale and zero point), constant weights with
// per-channel (or per-tensor) affine quantisation, constant INT32 bias, fused NONE / RELU /
// RELU_N1_TO_1 / RELU6. Dynamic-range nodes (float32 input and output, INT8 / INT4 / INT2
// weights, FLOAT32 bias): the input is quantised to int8 at run time exactly as LiteRT's hybrid
// kernels do (edge/kernels/quantize.h: per batch row for FULLY_CONNECTED, symmetric unless its
// asymmetric_quantize_inputs option is set; per image for convs, asymmetric with per-channel
// weights as LiteRT's hybrid CONV_2D / DEPTHWISE_CONV_2D), the plans compute the int32 sums and
// the result is dequantised in float: y = act(acc * input_scale * weight_scale[n] + bias[n]),
// acc corrected by the input zero point. Weights are packed once, when the delegate kernel is created. Each
// claimed node becomes its own delegate kernel, so every tensor stays visible to LiteRT.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "edge/delegate/tflite_abi.h"
#include "edge/kernels/isa.h"
#include "edge/kernels/requant.h"

namespace edge {
namespace delegate {

enum class ClaimPolicy { kFaster, kAll };

struct Options {
  bool int8 = true;
  bool int4 = true;
  bool int2 = true;
  bool static_nodes = true;   // int8 activations
  bool dynamic_nodes = true;  // float activations (dynamic-range weights)
  bool fully_connected = true;
  bool conv_2d = true;
  bool depthwise_conv_2d = true;
  int num_threads = 0;  // <= 0: the interpreter's, else usable_core_count()
  std::optional<Isa> isa;
  Rounding rounding = Rounding::kUpward;
  ClaimPolicy claim = ClaimPolicy::kFaster;
  bool litert_xnnpack = true;  // LiteRT applies XNNPACK to the nodes left to it
  std::string report;
};

// Parses the key/value options above; throws std::invalid_argument naming the bad key or value.
Options parse_options(const char* const* keys, const char* const* values, std::size_t count);

// Creates a delegate (owned by the caller; free with destroy_delegate).
tflite_abi::TfLiteDelegate* create_delegate(const Options& options);
void destroy_delegate(tflite_abi::TfLiteDelegate* delegate);

}  // namespace delegate
}  // namespace edge

extern "C" {
// The external-delegate plugin entry points. On a bad option, report_error (when given) receives
// the message and the function returns null.
__attribute__((visibility("default"))) edge::tflite_abi::TfLiteDelegate*
tflite_plugin_create_delegate(char** keys, char** values, std::size_t count,
                              void (*report_error)(const char*));
__attribute__((visibility("default"))) void tflite_plugin_destroy_delegate(
    edge::tflite_abi::TfLiteDelegate* delegate);
// The delegate library's version string (edgesdk version and the LiteRT ABI it targets).
__attribute__((visibility("default"))) const char* edge_delegate_version();
}
