// A loaded and checked .edge model: its tensors, operators and metadata as plain C++ values.
//
// Loading maps the file (mmap where the platform has it, a read into memory otherwise), then
// checks it completely before anything else looks at it:
//   1. size, file identifier ("EDG1") and the flatbuffers Verifier (every offset, vector and
//      string lies inside the file);
//   2. our own rules: known format version, enum values, dtype/storage pairs; shapes with
//      non-negative dimensions and bounded sizes; buffer indices in range and buffer sizes equal
//      to what dtype x shape x storage needs; quantisation parameter counts; operator arity and
//      options type; tensor indices in range; every operator input produced before it is read.
// Any violation is a FormatError naming the file and the offending tensor or operator. The
// operators' own shape rules (conv output size, broadcast shapes, ...) are checked when the
// Interpreter prepares them, with the same kind of error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace edge {
namespace runtime {

// Element types, numbered as in the schema (and TFLite).
enum class DType : int8_t {
  kFloat32 = 0,
  kFloat16 = 1,
  kInt32 = 2,
  kUInt8 = 3,
  kInt64 = 4,
  kBool = 6,
  kInt16 = 7,
  kInt8 = 9,
  kInt4 = 17,
  kInt2 = 19,
  kUInt4 = 20,
  kTernary = 32,
};
const char* dtype_name(DType dtype);
// Bits per element as stored (TERNARY: 2 in PLAIN storage).
int dtype_bits(DType dtype);
// Bytes per element in memory at run time (sub-byte types are unpacked to one byte).
std::size_t dtype_runtime_bytes(DType dtype);

enum class Storage : int8_t { kPlain = 0, kBase3 = 1 };
const char* storage_name(Storage storage);

enum class OpType : uint16_t {
  kAdd = 0,
  kMul = 1,
  kConcatenation = 2,
  kMaxPool2D = 3,
  kAveragePool2D = 4,
  kReshape = 5,
  kSoftmax = 6,
  kLogistic = 7,
  kHardSwish = 8,
  kQuantize = 9,
  kDequantize = 10,
  kMean = 11,
  kPad = 12,
  kFullyConnected = 13,
  kConv2D = 14,
  kDepthwiseConv2D = 15,
  kTranspose = 16,
};
const char* op_name(OpType op);

enum class Activation : int8_t { kNone = 0, kRelu = 1, kReluN1To1 = 2, kRelu6 = 3 };

struct Quantization {
  std::vector<float> scale;
  std::vector<int64_t> zero_point;  // empty, one shared value, or one per scale
  int axis = 0;
  int block_size = 0;
  bool present() const { return !scale.empty(); }
  bool per_tensor() const { return scale.size() == 1 && block_size == 0; }
  int64_t zero_point_at(std::size_t i) const {
    return zero_point.empty() ? 0 : zero_point.size() == 1 ? zero_point[0] : zero_point[i];
  }
};

struct Tensor {
  std::string name;
  std::vector<int32_t> shape;
  DType dtype = DType::kFloat32;
  Storage storage = Storage::kPlain;
  Quantization quant;
  // Constant data as stored in the file (packed for sub-byte types); null for run-time tensors.
  const uint8_t* data = nullptr;
  std::size_t data_bytes = 0;

  bool is_constant() const { return data != nullptr || buffer_index != 0; }
  int64_t num_elements() const;
  // Bytes the tensor occupies in memory at run time (sub-byte types unpacked).
  std::size_t runtime_bytes() const { return static_cast<std::size_t>(num_elements()) *
                                             dtype_runtime_bytes(dtype); }
  uint32_t buffer_index = 0;
};

struct Padding {
  int32_t top = 0, left = 0, bottom = 0, right = 0;
};

// The options of every op type in one struct; each op reads the fields that apply to it.
struct OpOptions {
  Padding padding;
  int32_t stride_h = 1, stride_w = 1;
  int32_t dilation_h = 1, dilation_w = 1;
  int32_t filter_h = 0, filter_w = 0;
  int32_t depth_multiplier = 1;
  Activation activation = Activation::kNone;
  bool keep_num_dims = false;  // FULLY_CONNECTED
  int32_t axis = 0;            // CONCATENATION
  float beta = 1.0f;           // SOFTMAX
  std::vector<int32_t> axes;   // MEAN
  bool keep_dims = false;      // MEAN
  std::vector<int32_t> paddings;  // PAD: [rank][2]
  std::vector<int32_t> perm;      // TRANSPOSE
  bool has_axes = false, has_paddings = false, has_perm = false;
};

struct Operator {
  OpType type = OpType::kAdd;
  std::vector<int32_t> inputs;  // -1: absent optional input
  std::vector<int32_t> outputs;
  OpOptions options;
  std::string name;
  // "operator 3 (CONV_2D 'name')": how errors and profiles refer to it.
  std::string label;
};

struct LayerInfo {
  uint32_t op_index = 0;
  std::string name;
  DType weight_dtype = DType::kInt8;
  int weight_bits = 0;
  int activation_bits = 0;
};

struct Metadata {
  std::string producer;
  std::string source_model_sha256;
  std::string source_model_name;
  std::string quantization_recipe;
  std::vector<LayerInfo> layers;
  std::vector<std::pair<std::string, std::string>> extra;
};

// Limits that keep a hostile file from making us allocate absurd amounts of memory. A tensor
// larger than this is reported as an absurd shape, not attempted (whatever the memory budget:
// element counts stay within int32-indexable sizes); below it, the memory budget applies.
constexpr int kMaxRank = 8;
constexpr int64_t kMaxTensorBytes = int64_t{1} << 31;

class MappedFile;

class Model {
 public:
  // Maps and checks a .edge file. Throws IoError (cannot open/read) or FormatError.
  // `memory_budget` (bytes; 0: $EDGESDK_MEMORY_BUDGET or 2 GiB, see limits.h) bounds every
  // run-time tensor here and, by default, what an Interpreter of this model may allocate.
  static std::shared_ptr<const Model> load(const std::string& path, uint64_t memory_budget = 0);
  // Checks a .edge image already in memory (copied; `name` is used in messages).
  static std::shared_ptr<const Model> from_bytes(const uint8_t* data, std::size_t size,
                                                 const std::string& name = "<memory>",
                                                 uint64_t memory_budget = 0);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& path() const { return path_; }
  std::size_t file_bytes() const;
  int version_major() const { return version_major_; }
  int version_minor() const { return version_minor_; }
  const std::string& description() const { return description_; }
  const std::string& graph_name() const { return graph_name_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const std::vector<Operator>& operators() const { return operators_; }
  const std::vector<int32_t>& inputs() const { return inputs_; }
  const std::vector<int32_t>& outputs() const { return outputs_; }
  const Metadata& metadata() const { return metadata_; }
  // Bytes of constant data (weights, biases) stored in the file.
  std::size_t constant_bytes() const;
  // "<path>: " for messages.
  std::string where() const { return path_ + ": "; }
  // The memory budget this model was loaded with (bytes, resolved: never 0).
  uint64_t memory_budget() const { return memory_budget_; }
  // Bytes of constants copied at load because the file did not align them (one copy per buffer,
  // however many tensors share it: at most the file's size).
  std::size_t aligned_copy_bytes() const { return aligned_copy_bytes_; }

 private:
  Model();
  void parse();
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  int version_major_ = 0, version_minor_ = 0;
  std::string description_, graph_name_;
  std::vector<Tensor> tensors_;
  std::vector<Operator> operators_;
  std::vector<int32_t> inputs_, outputs_;
  Metadata metadata_;
  uint64_t memory_budget_ = 0;
  // Constants whose bytes were not suitably aligned in the file, copied here: one copy per
  // buffer (tensors sharing a buffer share its copy).
  std::vector<std::unique_ptr<uint64_t[]>> aligned_copies_;
  std::size_t aligned_copy_bytes_ = 0;
};

// The format version this runtime reads (any minor of this major).
constexpr int kFormatVersionMajor = 1;
constexpr int kFormatVersionMinor = 1;

}  // namespace runtime
}  // namespace edge
