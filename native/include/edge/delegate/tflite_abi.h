// The few TensorFlow Lite C ABI structs the edgesdk delegate uses, declared by us.
//
// Why our own declarations: the ai-edge-litert wheels ship no TFLite C headers and export no
// TfLite* symbols (see /work/shared/notes/litert-facts.md), so a delegate cannot include or link
// against TFLite. It does not need to: the interpreter hands a classic `TfLiteDelegate` a
// `TfLiteContext` whose function pointers (GetExecutionPlan, GetNodeAndRegistration,
// ReplaceNodeSubsetsWithDelegateKernels, ResizeTensorExplicit, ...) do all the work. What the
// delegate must get right is the memory layout of the structs it reads and writes.
//
// Layout source: the "classic" delegate ABI of the LiteRT version we pin (ai-edge-litert 2.3.0,
// TFLite's common.h of that era: fields are only ever appended). Only what we use is declared in
// full; a struct we only receive by pointer is declared up to the last field we read, except
// where we index arrays of it (TfLiteTensor: full size) or pass it by value (TfLiteRegistration:
// full size) or allocate it (TfLiteDelegate: full size plus zeroed spare room).
//
// Tests that fail when the layout drifts: the static_asserts below pin every offset we rely on
// (LP64: x86-64 / aarch64; ILP32: armv7), and tests/test_delegate_abi.py has the delegate report
// what it reads through these structs for every tensor and node of real models (names, types,
// shapes, byte sizes, quantisation, opcodes) and compares it with what LiteRT's Python API says.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edge {
namespace tflite_abi {

// ---------------------------------------------------------------- enums (values are ABI)
enum TfLiteStatus : int {
  kTfLiteOk = 0,
  kTfLiteError = 1,
  kTfLiteDelegateError = 2,
};

// C tensor types. NOTE: these differ from the flatbuffer schema's TensorType numbering
// (schema INT4 = 17, INT2 = 19; here Int4 = 18, Int2 = 20).
enum TfLiteType : int {
  kTfLiteNoType = 0,
  kTfLiteFloat32 = 1,
  kTfLiteInt32 = 2,
  kTfLiteUInt8 = 3,
  kTfLiteInt64 = 4,
  kTfLiteString = 5,
  kTfLiteBool = 6,
  kTfLiteInt16 = 7,
  kTfLiteComplex64 = 8,
  kTfLiteInt8 = 9,
  kTfLiteFloat16 = 10,
  kTfLiteFloat64 = 11,
  kTfLiteComplex128 = 12,
  kTfLiteUInt64 = 13,
  kTfLiteResource = 14,
  kTfLiteVariant = 15,
  kTfLiteUInt32 = 16,
  kTfLiteUInt16 = 17,
  kTfLiteInt4 = 18,
  kTfLiteBFloat16 = 19,
  kTfLiteInt2 = 20,
  kTfLiteUInt4 = 21,
};

enum TfLiteQuantizationType : int {
  kTfLiteNoQuantization = 0,
  kTfLiteAffineQuantization = 1,
  kTfLiteBlockwiseQuantization = 2,
};

enum TfLiteAllocationType : int {
  kTfLiteMemNone = 0,
  kTfLiteMmapRo = 1,
  kTfLiteArenaRw = 2,
  kTfLiteArenaRwPersistent = 3,
  kTfLiteDynamic = 4,
  kTfLitePersistentRo = 5,
  kTfLiteCustom = 6,
};

enum TfLiteDelegateFlags : int64_t {
  kTfLiteDelegateFlagsNone = 0,
  kTfLiteDelegateFlagsAllowDynamicTensors = 1,
};

// builtin_op_data.h
enum TfLitePadding : int { kTfLitePaddingUnknown = 0, kTfLitePaddingSame = 1, kTfLitePaddingValid = 2 };
enum TfLiteFusedActivation : int {
  kTfLiteActNone = 0,
  kTfLiteActRelu = 1,
  kTfLiteActReluN1To1 = 2,
  kTfLiteActRelu6 = 3,
  kTfLiteActTanh = 4,
  kTfLiteActSignBit = 5,
  kTfLiteActSigmoid = 6,
};

// The schema's BuiltinOperator codes we look at (TfLiteRegistration::builtin_code).
enum BuiltinOperator : int32_t {
  kBuiltinConv2D = 3,
  kBuiltinDepthwiseConv2D = 4,
  kBuiltinFullyConnected = 9,
  kBuiltinCustom = 32,
  kBuiltinDelegate = 51,
};

// ---------------------------------------------------------------- arrays
struct TfLiteIntArray {
  int size;
  int data[1];  // really `size` entries (a flexible array member in C)
};

struct TfLiteFloatArray {
  int size;
  float data[1];  // really `size` entries
};

// ---------------------------------------------------------------- quantisation
struct TfLiteQuantizationParams {
  float scale;
  int32_t zero_point;
};

struct TfLiteQuantization {
  TfLiteQuantizationType type;
  void* params;  // TfLiteAffineQuantization* or TfLiteBlockwiseQuantization*
};

struct TfLiteAffineQuantization {
  TfLiteFloatArray* scale;
  TfLiteIntArray* zero_point;
  int32_t quantized_dimension;
};

struct TfLiteBlockwiseQuantization {
  int32_t scale;       // index of the tensor holding the scales
  int32_t zero_point;  // index of the tensor holding the zero points (-1: none)
  int32_t blocksize;
  int32_t quantized_dimension;
};

// ---------------------------------------------------------------- tensors and nodes
struct TfLiteDelegate;
struct TfLiteContext;
struct TfLiteRegistration;

struct TfLiteTensor {
  TfLiteType type;
  void* data;  // TfLitePtrUnion: every member is a pointer
  TfLiteIntArray* dims;
  TfLiteQuantizationParams params;
  TfLiteAllocationType allocation_type;
  std::size_t bytes;
  const void* allocation;
  const char* name;
  TfLiteDelegate* delegate;
  int buffer_handle;
  bool data_is_stale;
  bool is_variable;
  TfLiteQuantization quantization;
  void* sparsity;
  const TfLiteIntArray* dims_signature;
};

struct TfLiteNode {
  TfLiteIntArray* inputs;
  TfLiteIntArray* outputs;
  TfLiteIntArray* intermediates;
  TfLiteIntArray* temporaries;
  void* user_data;
  void* builtin_data;
  const void* custom_initial_data;
  int custom_initial_data_size;
  TfLiteDelegate* delegate;
  bool might_have_side_effect;
};

// Builtin options (node->builtin_data) of the ops we claim.
struct TfLiteConvParams {
  TfLitePadding padding;
  int stride_width;
  int stride_height;
  TfLiteFusedActivation activation;
  int dilation_width_factor;
  int dilation_height_factor;
  TfLiteType quantized_bias_type;
};

struct TfLiteDepthwiseConvParams {
  TfLitePadding padding;
  int stride_width;
  int stride_height;
  int depth_multiplier;
  TfLiteFusedActivation activation;
  int dilation_width_factor;
  int dilation_height_factor;
};

struct TfLiteFullyConnectedParams {
  TfLiteFusedActivation activation;
  int weights_format;  // 0: default; 1: shuffled 4x16 int8 (we do not claim it)
  bool keep_num_dims;
  bool asymmetric_quantize_inputs;
  TfLiteType quantized_bias_type;
};

// What a delegate kernel's init() receives as `buffer` (cast from const char*).
struct TfLiteDelegateParams {
  TfLiteDelegate* delegate;
  TfLiteIntArray* nodes_to_replace;
  TfLiteIntArray* input_tensors;
  TfLiteIntArray* output_tensors;
};

// ---------------------------------------------------------------- registration and context
struct TfLiteRegistration {
  void* (*init)(TfLiteContext* context, const char* buffer, std::size_t length);
  void (*free)(TfLiteContext* context, void* buffer);
  TfLiteStatus (*prepare)(TfLiteContext* context, TfLiteNode* node);
  TfLiteStatus (*invoke)(TfLiteContext* context, TfLiteNode* node);
  const char* (*profiling_string)(const TfLiteContext* context, const TfLiteNode* node);
  int32_t builtin_code;
  const char* custom_name;
  int version;
  void* registration_external;
  void* (*async_kernel)(TfLiteContext* context, TfLiteNode* node);
  uint64_t inplace_operator;
};

struct TfLiteContext {
  std::size_t tensors_size;
  TfLiteStatus (*GetExecutionPlan)(TfLiteContext* context, TfLiteIntArray** execution_plan);
  TfLiteTensor* tensors;
  void* impl_;
  TfLiteStatus (*ResizeTensor)(TfLiteContext* context, TfLiteTensor* tensor,
                               TfLiteIntArray* new_size);
  void (*ReportError)(TfLiteContext* context, const char* msg, ...);
  TfLiteStatus (*AddTensors)(TfLiteContext* context, int tensors_to_add,
                             int* first_new_tensor_index);
  TfLiteStatus (*GetNodeAndRegistration)(TfLiteContext* context, int node_index,
                                         TfLiteNode** node, TfLiteRegistration** registration);
  TfLiteStatus (*ReplaceNodeSubsetsWithDelegateKernels)(TfLiteContext* context,
                                                        TfLiteRegistration registration,
                                                        const TfLiteIntArray* nodes_to_replace,
                                                        TfLiteDelegate* delegate);
  int recommended_num_threads;
  void* (*GetExternalContext)(TfLiteContext* context, int type);
  void (*SetExternalContext)(TfLiteContext* context, int type, void* external);
  bool allow_fp32_relax_to_fp16;
  void* profiler;
  void* (*AllocatePersistentBuffer)(TfLiteContext* ctx, std::size_t bytes);
  TfLiteStatus (*AllocateBufferForEval)(TfLiteContext* ctx, std::size_t bytes, void** ptr);
  TfLiteStatus (*RequestScratchBufferInArena)(TfLiteContext* ctx, std::size_t bytes,
                                              int* buffer_idx);
  void* (*GetScratchBuffer)(TfLiteContext* ctx, int buffer_idx);
  // Null in LiteRT's interpreter (a TFLite Micro API): we use ResizeTensor.
  TfLiteStatus (*ResizeTensorExplicit)(TfLiteContext* ctx, TfLiteTensor* tensor, int dims,
                                       const int* shape);
  // (more function pointers follow in TFLite; we never read them)
};

struct TfLiteDelegate {
  void* data_;
  TfLiteStatus (*Prepare)(TfLiteContext* context, TfLiteDelegate* delegate);
  TfLiteStatus (*CopyFromBufferHandle)(TfLiteContext* context, TfLiteDelegate* delegate,
                                       int buffer_handle, TfLiteTensor* tensor);
  TfLiteStatus (*CopyToBufferHandle)(TfLiteContext* context, TfLiteDelegate* delegate,
                                     int buffer_handle, TfLiteTensor* tensor);
  void (*FreeBufferHandle)(TfLiteContext* context, TfLiteDelegate* delegate, int* handle);
  int64_t flags;
  void* opaque_delegate_builder;  // must stay null: we are a classic delegate
};

// The signature of the error reporter load_delegate passes to tflite_plugin_create_delegate.
using ErrorReporter = void (*)(const char* message);

// ---------------------------------------------------------------- pinned layouts
// Offsets of everything the delegate touches, for the two data models we build for.
#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu  // LP64: x86-64, aarch64
static_assert(sizeof(TfLiteTensor) == 112, "TfLiteTensor size");
static_assert(offsetof(TfLiteTensor, data) == 8 && offsetof(TfLiteTensor, dims) == 16 &&
                  offsetof(TfLiteTensor, params) == 24 &&
                  offsetof(TfLiteTensor, allocation_type) == 32 &&
                  offsetof(TfLiteTensor, bytes) == 40 && offsetof(TfLiteTensor, name) == 56 &&
                  offsetof(TfLiteTensor, quantization) == 80,
              "TfLiteTensor layout");
static_assert(offsetof(TfLiteNode, builtin_data) == 40 &&
                  offsetof(TfLiteNode, custom_initial_data) == 48 &&
                  offsetof(TfLiteNode, custom_initial_data_size) == 56,
              "TfLiteNode layout");
static_assert(sizeof(TfLiteRegistration) == 88 &&
                  offsetof(TfLiteRegistration, builtin_code) == 40 &&
                  offsetof(TfLiteRegistration, custom_name) == 48 &&
                  offsetof(TfLiteRegistration, version) == 56,
              "TfLiteRegistration layout");
static_assert(offsetof(TfLiteContext, tensors) == 16 &&
                  offsetof(TfLiteContext, GetNodeAndRegistration) == 56 &&
                  offsetof(TfLiteContext, ReplaceNodeSubsetsWithDelegateKernels) == 64 &&
                  offsetof(TfLiteContext, recommended_num_threads) == 72 &&
                  offsetof(TfLiteContext, ResizeTensorExplicit) == 144,
              "TfLiteContext layout");
static_assert(sizeof(TfLiteDelegate) == 56 && offsetof(TfLiteDelegate, flags) == 40,
              "TfLiteDelegate layout");
#elif UINTPTR_MAX == 0xFFFFFFFFu  // ILP32: armv7 (8-byte alignment of 64-bit fields)
static_assert(sizeof(TfLiteTensor) == 64, "TfLiteTensor size");
static_assert(offsetof(TfLiteTensor, data) == 4 && offsetof(TfLiteTensor, dims) == 8 &&
                  offsetof(TfLiteTensor, params) == 12 &&
                  offsetof(TfLiteTensor, allocation_type) == 20 &&
                  offsetof(TfLiteTensor, bytes) == 24 && offsetof(TfLiteTensor, name) == 32 &&
                  offsetof(TfLiteTensor, quantization) == 48,
              "TfLiteTensor layout");
static_assert(sizeof(TfLiteRegistration) == 48 &&
                  offsetof(TfLiteRegistration, builtin_code) == 20 &&
                  offsetof(TfLiteRegistration, inplace_operator) == 40,
              "TfLiteRegistration layout");
static_assert(offsetof(TfLiteContext, ReplaceNodeSubsetsWithDelegateKernels) == 32 &&
                  offsetof(TfLiteContext, recommended_num_threads) == 36,
              "TfLiteContext layout");
static_assert(sizeof(TfLiteDelegate) == 40 && offsetof(TfLiteDelegate, flags) == 24,
              "TfLiteDelegate layout");
#endif

}  // namespace tflite_abi
}  // namespace edge
