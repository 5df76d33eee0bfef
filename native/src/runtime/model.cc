// Loading and checking a .edge file. See model.h for the order of the checks; the rule is that
// nothing reads a field before the flatbuffers Verifier has vouched for the bytes under it, and
// nothing uses a value (index, size, enum) before our own checks have bounded it.
#include "edge/runtime/model.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>
#include <type_traits>
#include <unordered_map>

#include "edge/runtime/error.h"
#include "edge/runtime/limits.h"
#include "edge_generated.h"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define EDGE_HAVE_MMAP 1
#endif
#include <fstream>

namespace edge {
namespace runtime {

// ---------------------------------------------------------------- the schema's enums
// model.h's enums mirror the generated schema's (native/schema/edge.fbs): the loader casts the
// file's values (static_cast<DType>(t->dtype()), ...), so every value must be the same, and the
// schema must have no value more (one added to edge.fbs without one here fails to compile).
#define EDGE_SAME_ENUM(E, ours, theirs)                                                  \
  static_assert(static_cast<int64_t>(E::ours) == static_cast<int64_t>(fmt::E::theirs), \
                #E "::" #ours " must equal the schema's " #E "::" #theirs)
static_assert(std::is_same_v<std::underlying_type_t<DType>,
                             std::underlying_type_t<fmt::DType>>,
              "DType: the schema's underlying type");
static_assert(std::extent_v<std::remove_reference_t<decltype(fmt::EnumValuesDType())>> == 12,
              "DType: the schema has a value this runtime does not name");
EDGE_SAME_ENUM(DType, kFloat32, FLOAT32);
EDGE_SAME_ENUM(DType, kFloat16, FLOAT16);
EDGE_SAME_ENUM(DType, kInt32, INT32);
EDGE_SAME_ENUM(DType, kUInt8, UINT8);
EDGE_SAME_ENUM(DType, kInt64, INT64);
EDGE_SAME_ENUM(DType, kBool, BOOL);
EDGE_SAME_ENUM(DType, kInt16, INT16);
EDGE_SAME_ENUM(DType, kInt8, INT8);
EDGE_SAME_ENUM(DType, kInt4, INT4);
EDGE_SAME_ENUM(DType, kInt2, INT2);
EDGE_SAME_ENUM(DType, kUInt4, UINT4);
EDGE_SAME_ENUM(DType, kTernary, TERNARY);
EDGE_SAME_ENUM(DType, kTernary, MAX);
static_assert(std::is_same_v<std::underlying_type_t<Storage>,
                             std::underlying_type_t<fmt::Storage>>,
              "Storage: the schema's underlying type");
static_assert(std::extent_v<std::remove_reference_t<decltype(fmt::EnumValuesStorage())>> == 2,
              "Storage: the schema has a value this runtime does not name");
EDGE_SAME_ENUM(Storage, kPlain, PLAIN);
EDGE_SAME_ENUM(Storage, kBase3, BASE3);
EDGE_SAME_ENUM(Storage, kBase3, MAX);
static_assert(std::is_same_v<std::underlying_type_t<Activation>,
                             std::underlying_type_t<fmt::Activation>>,
              "Activation: the schema's underlying type");
static_assert(std::extent_v<std::remove_reference_t<decltype(fmt::EnumValuesActivation())>> == 4,
              "Activation: the schema has a value this runtime does not name");
EDGE_SAME_ENUM(Activation, kNone, NONE);
EDGE_SAME_ENUM(Activation, kRelu, RELU);
EDGE_SAME_ENUM(Activation, kReluN1To1, RELU_N1_TO_1);
EDGE_SAME_ENUM(Activation, kRelu6, RELU6);
EDGE_SAME_ENUM(Activation, kRelu6, MAX);
static_assert(std::is_same_v<std::underlying_type_t<OpType>,
                             std::underlying_type_t<fmt::OpType>>,
              "OpType: the schema's underlying type");
static_assert(std::extent_v<std::remove_reference_t<decltype(fmt::EnumValuesOpType())>> == 17,
              "OpType: the schema has a value this runtime does not name");
EDGE_SAME_ENUM(OpType, kAdd, ADD);
EDGE_SAME_ENUM(OpType, kMul, MUL);
EDGE_SAME_ENUM(OpType, kConcatenation, CONCATENATION);
EDGE_SAME_ENUM(OpType, kMaxPool2D, MAX_POOL_2D);
EDGE_SAME_ENUM(OpType, kAveragePool2D, AVERAGE_POOL_2D);
EDGE_SAME_ENUM(OpType, kReshape, RESHAPE);
EDGE_SAME_ENUM(OpType, kSoftmax, SOFTMAX);
EDGE_SAME_ENUM(OpType, kLogistic, LOGISTIC);
EDGE_SAME_ENUM(OpType, kHardSwish, HARD_SWISH);
EDGE_SAME_ENUM(OpType, kQuantize, QUANTIZE);
EDGE_SAME_ENUM(OpType, kDequantize, DEQUANTIZE);
EDGE_SAME_ENUM(OpType, kMean, MEAN);
EDGE_SAME_ENUM(OpType, kPad, PAD);
EDGE_SAME_ENUM(OpType, kFullyConnected, FULLY_CONNECTED);
EDGE_SAME_ENUM(OpType, kConv2D, CONV_2D);
EDGE_SAME_ENUM(OpType, kDepthwiseConv2D, DEPTHWISE_CONV_2D);
EDGE_SAME_ENUM(OpType, kTranspose, TRANSPOSE);
EDGE_SAME_ENUM(OpType, kTranspose, MAX);
#undef EDGE_SAME_ENUM

// ---------------------------------------------------------------- names
const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "FLOAT32";
    case DType::kFloat16: return "FLOAT16";
    case DType::kInt32: return "INT32";
    case DType::kUInt8: return "UINT8";
    case DType::kInt64: return "INT64";
    case DType::kBool: return "BOOL";
    case DType::kInt16: return "INT16";
    case DType::kInt8: return "INT8";
    case DType::kInt4: return "INT4";
    case DType::kInt2: return "INT2";
    case DType::kUInt4: return "UINT4";
    case DType::kTernary: return "TERNARY";
  }
  return "?";
}

int dtype_bits(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: case DType::kInt32: return 32;
    case DType::kFloat16: case DType::kInt16: return 16;
    case DType::kInt64: return 64;
    case DType::kUInt8: case DType::kBool: case DType::kInt8: return 8;
    case DType::kInt4: case DType::kUInt4: return 4;
    case DType::kInt2: case DType::kTernary: return 2;
  }
  return 0;
}

std::size_t dtype_runtime_bytes(DType dtype) {
  const int bits = dtype_bits(dtype);
  return bits < 8 ? 1 : static_cast<std::size_t>(bits / 8);
}

const char* storage_name(Storage storage) {
  return storage == Storage::kPlain ? "PLAIN" : storage == Storage::kBase3 ? "BASE3" : "?";
}

const char* op_name(OpType op) {
  const char* name = fmt::EnumNameOpType(static_cast<fmt::OpType>(op));
  return (name != nullptr && *name != '\0') ? name : "?";
}

int64_t Tensor::num_elements() const {
  int64_t n = 1;
  for (int32_t d : shape) n *= d;  // bounded by the loader (kMaxTensorBytes)
  return n;
}

// ---------------------------------------------------------------- the file image
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile() {
#ifdef EDGE_HAVE_MMAP
    if (mapped_ != nullptr) munmap(mapped_, size_);
#endif
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  static std::unique_ptr<MappedFile> open(const std::string& path) {
    auto file = std::make_unique<MappedFile>();
#ifdef EDGE_HAVE_MMAP
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw IoError(path + ": cannot stat: " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw IoError(path + ": not a regular file");
    }
    file->size_ = static_cast<std::size_t>(st.st_size);
    if (file->size_ > 0) {
      void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        file->mapped_ = p;
        file->data_ = static_cast<const uint8_t*>(p);
      }
    }
    ::close(fd);
    if (file->data_ != nullptr || file->size_ == 0) return file;
#endif
    // No mmap (or it failed, e.g. on a special file system): read the file into memory.
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw IoError(path + ": cannot open: " + std::strerror(errno));
    const std::streamoff size = in.tellg();
    if (size < 0) throw IoError(path + ": cannot read its size");
    in.seekg(0);
    file->size_ = static_cast<std::size_t>(size);
    file->owned_.reset(new (std::align_val_t(64)) uint8_t[file->size_ + 1]);
    if (file->size_ > 0 && !in.read(reinterpret_cast<char*>(file->owned_.get()), size)) {
      throw IoError(path + ": read failed");
    }
    file->data_ = file->owned_.get();
    return file;
  }

  static std::unique_ptr<MappedFile> copy_of(const uint8_t* data, std::size_t size) {
    auto file = std::make_unique<MappedFile>();
    file->size_ = size;
    file->owned_.reset(new (std::align_val_t(64)) uint8_t[size + 1]);
    if (size > 0) std::memcpy(file->owned_.get(), data, size);
    file->data_ = file->owned_.get();
    return file;
  }

  const uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  struct AlignedDelete {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  const uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  void* mapped_ = nullptr;
  std::unique_ptr<uint8_t[], AlignedDelete> owned_;
};

// ---------------------------------------------------------------- loading
Model::Model() = default;
Model::~Model() = default;

std::size_t Model::file_bytes() const { return file_ ? file_->size() : 0; }

std::size_t Model::constant_bytes() const {
  std::size_t total = 0;
  for (const Tensor& t : tensors_) total += t.data_bytes;
  return total;
}

std::shared_ptr<const Model> Model::load(const std::string& path, uint64_t memory_budget) {
  std::shared_ptr<Model> model(new Model());
  model->path_ = path;
  model->memory_budget_ = resolve_memory_budget(memory_budget);
  model->file_ = MappedFile::open(path);
  model->parse();
  return model;
}

std::shared_ptr<const Model> Model::from_bytes(const uint8_t* data, std::size_t size,
                                               const std::string& name, uint64_t memory_budget) {
  std::shared_ptr<Model> model(new Model());
  model->path_ = name;
  model->memory_budget_ = resolve_memory_budget(memory_budget);
  model->file_ = MappedFile::copy_of(data, size);
  model->parse();
  return model;
}

namespace {

template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

bool known_dtype(int8_t v) {
  switch (v) {
    case 0: case 1: case 2: case 3: case 4: case 6: case 7: case 9: case 17: case 19: case 20:
    case 32:
      return true;
    default:
      return false;
  }
}

std::string shape_text(const std::vector<int32_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

// Bytes a buffer must hold for `count` values of `dtype` in `storage`.
uint64_t stored_bytes(DType dtype, Storage storage, uint64_t count) {
  if (storage == Storage::kBase3) return (count + 4) / 5;
  return (count * static_cast<uint64_t>(dtype_bits(dtype)) + 7) / 8;
}

// Arity rules: [min_inputs, max_inputs], outputs, and the options table it must carry
// (NONE: none allowed; the union type must match otherwise).
struct Arity {
  int min_in, max_in, outputs;
  fmt::OpOptions options;
  bool options_required;
};

Arity arity_of(OpType op) {
  using O = fmt::OpOptions;
  switch (op) {
    case OpType::kAdd: case OpType::kMul: return {2, 2, 1, O::ElementwiseOptions, false};
    case OpType::kConcatenation: return {1, 1 << 16, 1, O::ConcatenationOptions, false};
    case OpType::kMaxPool2D: case OpType::kAveragePool2D: return {1, 1, 1, O::Pool2DOptions, true};
    case OpType::kReshape: return {1, 1, 1, O::NONE, false};
    case OpType::kSoftmax: return {1, 1, 1, O::SoftmaxOptions, false};
    case OpType::kLogistic: case OpType::kHardSwish: case OpType::kQuantize:
    case OpType::kDequantize:
      return {1, 1, 1, O::NONE, false};
    case OpType::kMean: return {1, 2, 1, O::ReducerOptions, false};
    case OpType::kPad: return {1, 2, 1, O::PadOptions, false};
    case OpType::kFullyConnected: return {2, 3, 1, O::FullyConnectedOptions, false};
    case OpType::kConv2D: return {2, 3, 1, O::Conv2DOptions, true};
    case OpType::kDepthwiseConv2D: return {2, 3, 1, O::DepthwiseConv2DOptions, true};
    case OpType::kTranspose: return {1, 2, 1, O::TransposeOptions, false};
  }
  return {0, 0, 0, O::NONE, false};
}

Activation activation_of(fmt::Activation a, const std::string& where) {
  switch (a) {
    case fmt::Activation::NONE: return Activation::kNone;
    case fmt::Activation::RELU: return Activation::kRelu;
    case fmt::Activation::RELU_N1_TO_1: return Activation::kReluN1To1;
    case fmt::Activation::RELU6: return Activation::kRelu6;
  }
  throw FormatError(cat(where, ": unknown fused activation ", static_cast<int>(a)));
}

Padding padding_of(const fmt::Padding* p) {
  Padding out;
  if (p != nullptr) {
    out.top = p->top();
    out.left = p->left();
    out.bottom = p->bottom();
    out.right = p->right();
  }
  return out;
}

// The fields CONV_2D and DEPTHWISE_CONV_2D options share (two tables of the schema with the
// same field names).
template <typename ConvOptionsTable>
void read_conv_options(const ConvOptionsTable& c, const std::string& where, OpOptions* o) {
  o->padding = padding_of(c.padding());
  o->stride_h = c.stride_h();
  o->stride_w = c.stride_w();
  o->dilation_h = c.dilation_h();
  o->dilation_w = c.dilation_w();
  o->activation = activation_of(c.activation(), where);
}

// A vector of scalars copied out with memcpy: the Verifier only checks that a vector is 4-byte
// aligned, so the elements of an int64 vector (zero points) may sit at 4 mod 8, where reading
// them as int64_t would be a misaligned load. (Every target we build for is little-endian, the
// byte order flatbuffers stores.)
static_assert(FLATBUFFERS_LITTLEENDIAN, "the .edge runtime reads flatbuffers in place");
template <typename T>
std::vector<T> vec(const flatbuffers::Vector<T>* v) {
  if (v == nullptr || v->size() == 0) return std::vector<T>();
  std::vector<T> out(v->size());
  std::memcpy(out.data(), v->Data(), out.size() * sizeof(T));
  return out;
}

// The range of zero points a tensor of `dtype` can carry: the type's own value range for the
// narrow integer types the kernels requantise, and int32 for the rest (a bias or index tensor's
// zero point is not used, but must not be truncated into a different value either).
void zero_point_range(DType dtype, int64_t* lo, int64_t* hi) {
  switch (dtype) {
    case DType::kInt8: *lo = -128; *hi = 127; return;
    case DType::kUInt8: *lo = 0; *hi = 255; return;
    case DType::kInt16: *lo = -32768; *hi = 32767; return;
    case DType::kInt4: *lo = -8; *hi = 7; return;
    case DType::kUInt4: *lo = 0; *hi = 15; return;
    case DType::kInt2: *lo = -2; *hi = 1; return;
    case DType::kTernary: *lo = -1; *hi = 1; return;
    default:
      *lo = std::numeric_limits<int32_t>::min();
      *hi = std::numeric_limits<int32_t>::max();
      return;
  }
}

// Names come from the file: keep valid UTF-8 (minus control characters) as it is and write
// anything else as \xNN, so that messages, JSON reports and Python strings stay well formed
// whatever bytes a damaged file holds.
std::string str(const flatbuffers::String* s) {
  if (s == nullptr) return std::string();
  static const char* hex = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s->data());
  const std::size_t n = s->size();
  std::string out;
  out.reserve(n);
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    const std::size_t len = c < 0x80            ? 1
                            : (c >> 5) == 0x6   ? 2
                            : (c >> 4) == 0xe   ? 3
                            : (c >> 3) == 0x1e  ? 4
                                                : 0;
    bool ok = len != 0 && i + len <= n && !(len == 1 && (c < 0x20 || c == 0x7f));
    for (std::size_t k = 1; ok && k < len; ++k) ok = (p[i + k] >> 6) == 0x2;
    if (ok && len == 2) ok = c >= 0xc2;  // no overlong forms
    if (ok) {
      out.append(reinterpret_cast<const char*>(p + i), len);
      i += len;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
    }
  }
  return out;
}

// ---------------------------------------------------------------- Model::parse, in parts
// The file's header and flatbuffer structure (every offset, vector and string inside the file).
const fmt::Model* verified_model(const uint8_t* buf, std::size_t size, const std::string& p) {
  if (size < 8) {
    throw FormatError(cat(p, ": file is ", size,
                          " bytes, too short for a .edge model (the header alone is 8 bytes)"));
  }
  if (!fmt::ModelBufferHasIdentifier(buf)) {
    std::string got;
    for (int i = 4; i < 8; ++i) {
      const char c = static_cast<char>(buf[i]);
      static const char* hex = "0123456789abcdef";
      got += (c >= 32 && c < 127) ? std::string(1, c)
                                  : std::string("\\x") + hex[buf[i] >> 4] + hex[buf[i] & 15];
    }
    throw FormatError(cat(p, ": not a .edge model: file identifier (bytes 4-7) is \"", got,
                          "\", expected \"", fmt::ModelIdentifier(), "\""));
  }
  if (size >= FLATBUFFERS_MAX_BUFFER_SIZE) {
    throw FormatError(cat(p, ": file is ", size, " bytes, larger than a flatbuffer can be"));
  }
  flatbuffers::Verifier::Options vopts;
  vopts.max_depth = 32;
  vopts.max_tables = 4000000;
  vopts.check_alignment = true;
  flatbuffers::Verifier verifier(buf, size, vopts);
  if (!fmt::VerifyModelBuffer(verifier)) {
    throw FormatError(cat(p, ": corrupt or truncated .edge file (", size,
                          " bytes): the flatbuffer structure check failed (an offset, vector or "
                          "string points outside the file or is misaligned)"));
  }
  return fmt::GetModel(buf);
}

// A tensor's dtype, storage and shape: known values, rank and size within the limits, its run-time
// bytes within the memory budget. Returns its element count.
int64_t read_tensor_type(const fmt::Tensor& tensor, const std::string& what, uint64_t memory_budget,
                         Tensor* out) {
  const fmt::Tensor* ft = &tensor;
  Tensor& t = *out;
  const int8_t dt = static_cast<int8_t>(ft->dtype());
  if (!known_dtype(dt)) throw FormatError(cat(what, " has unknown dtype ", +dt));
  t.dtype = static_cast<DType>(dt);
  const int8_t st = static_cast<int8_t>(ft->storage());
  if (st != 0 && st != 1) throw FormatError(cat(what, " has unknown storage ", +st));
  t.storage = static_cast<Storage>(st);
  if (t.storage == Storage::kBase3 && t.dtype != DType::kTernary) {
    throw FormatError(cat(what, ": BASE3 storage is only for TERNARY tensors, not ",
                          dtype_name(t.dtype)));
  }
  t.shape = vec(ft->shape());
  if (t.shape.size() > static_cast<std::size_t>(kMaxRank)) {
    throw FormatError(cat(what, " has rank ", t.shape.size(), "; at most ", kMaxRank,
                          " is supported"));
  }
  int64_t count = 1;
  for (int32_t d : t.shape) {
    if (d < 0) throw FormatError(cat(what, " has a negative dimension in shape ",
                                     shape_text(t.shape)));
    // Bounded multiplication: stop as soon as the byte count passes the limit.
    if (d != 0 && count > kMaxTensorBytes / d) {
      throw FormatError(cat(what, " has an absurd shape ", shape_text(t.shape),
                            " (more than ", kMaxTensorBytes, " bytes)"));
    }
    count *= d;
  }
  const int64_t runtime_bytes = count * static_cast<int64_t>(dtype_runtime_bytes(t.dtype));
  if (runtime_bytes > kMaxTensorBytes) {
    throw FormatError(cat(what, " has an absurd shape ", shape_text(t.shape), " (more than ",
                          kMaxTensorBytes, " bytes)"));
  }
  if (static_cast<uint64_t>(runtime_bytes) > memory_budget) {
    throw FormatError(cat(what, ", ", dtype_name(t.dtype), " ", shape_text(t.shape), ", needs ",
                          runtime_bytes, " bytes, over the memory budget of ", memory_budget,
                          " bytes", budget_hint()));
  }
  return count;
}

// BASE3 bytes hold five trits: 3^5 = 243 codes, so a byte above 242 is not ternary data.
void check_base3(const uint8_t* ptr, std::size_t have, const std::string& what,
                 uint32_t buffer_index) {
  for (std::size_t b = 0; b < have; ++b) {
    if (ptr[b] > 242) {
      throw FormatError(cat(what, ": BASE3 byte ", +ptr[b], " at offset ", b, " of buffer ",
                            buffer_index, " is not base-3 data (bytes hold 5 trits: at most 242)"));
    }
  }
}

// A tensor's quantisation: scales finite and >= 0, zero points in the dtype's range, per-channel
// and per-group counts that fit the shape.
void read_quantization(const fmt::Quantization& quant, const std::string& what, Tensor* tensor) {
  const fmt::Quantization* q = &quant;
  Tensor& t = *tensor;
  t.quant.scale = vec(q->scale());
  t.quant.zero_point = vec(q->zero_point());
  t.quant.axis = q->axis();
  t.quant.block_size = q->block_size();
  const std::size_t ns = t.quant.scale.size(), nz = t.quant.zero_point.size();
  if (ns == 0 && nz != 0) throw FormatError(cat(what, ": zero points without scales"));
  if (nz > 1 && nz != ns) {
    throw FormatError(cat(what, ": ", ns, " scales but ", nz, " zero points"));
  }
  for (float s : t.quant.scale) {
    if (!std::isfinite(s) || s < 0.0f) {
      throw FormatError(cat(what, ": quantisation scale ", s, " is not a finite value >= 0"));
    }
  }
  // Zero points outside the type's range would overflow int32 in requantisation and the
  // element-wise ops (and a truncating cast would silently change them): refused here.
  int64_t zp_lo = 0, zp_hi = 0;
  zero_point_range(t.dtype, &zp_lo, &zp_hi);
  for (std::size_t z = 0; z < nz; ++z) {
    const int64_t zp = t.quant.zero_point[z];
    if (zp < zp_lo || zp > zp_hi) {
      throw FormatError(cat(what, ": zero point ", zp, nz > 1 ? cat(" (index ", z, ")") : "",
                            " is outside [", zp_lo, ", ", zp_hi, "] for ",
                            dtype_name(t.dtype)));
    }
  }
  if (ns > 1 || t.quant.block_size != 0) {
    const int rank = static_cast<int>(t.shape.size());
    if (t.quant.axis < 0 || t.quant.axis >= rank) {
      throw FormatError(cat(what, ": quantisation axis ", t.quant.axis,
                            " is out of range for shape ", shape_text(t.shape)));
    }
    int64_t expect = t.shape[t.quant.axis];
    if (t.quant.block_size != 0) {
      if (t.quant.block_size < 0 || rank == 0) {
        throw FormatError(cat(what, ": invalid block size ", t.quant.block_size));
      }
      const int64_t k = t.shape[rank - 1];
      expect *= (k + t.quant.block_size - 1) / t.quant.block_size;
    }
    if (static_cast<int64_t>(ns) != expect) {
      throw FormatError(cat(what, ": ", ns, " quantisation scales do not fit shape ",
                            shape_text(t.shape), " (axis ", t.quant.axis, ", block size ",
                            t.quant.block_size, ": expected ", expect, ")"));
    }
  }
}

// An operator's options: the table its op type takes (OpType -> options in arity_of), read into
// OpOptions, one case per options table.
void read_op_options(const fmt::Operator& op, const Arity& ar, const std::string& where,
                     OpOptions* options) {
  const fmt::Operator* fo = &op;
  const fmt::OpOptions otype = fo->options_type();
  if (otype != fmt::OpOptions::NONE && otype != ar.options) {
    throw FormatError(cat(where, " carries ", fmt::EnumNameOpOptions(otype),
                          ", expected ", fmt::EnumNameOpOptions(ar.options)));
  }
  if (ar.options_required && otype == fmt::OpOptions::NONE) {
    throw FormatError(cat(where, " has no ", fmt::EnumNameOpOptions(ar.options)));
  }
  // The Verifier accepts a union type with no table behind it; we do not.
  if (otype != fmt::OpOptions::NONE && fo->options() == nullptr) {
    throw FormatError(cat(where, " declares ", fmt::EnumNameOpOptions(otype),
                          " but carries no options table"));
  }
  OpOptions& o = *options;
  switch (otype) {
    case fmt::OpOptions::Conv2DOptions:
      read_conv_options(*fo->options_as_Conv2DOptions(), where, &o);
      break;
    case fmt::OpOptions::DepthwiseConv2DOptions: {
      const auto* c = fo->options_as_DepthwiseConv2DOptions();
      read_conv_options(*c, where, &o);
      o.depth_multiplier = c->depth_multiplier();
      break;
    }
    case fmt::OpOptions::FullyConnectedOptions: {
      const auto* c = fo->options_as_FullyConnectedOptions();
      o.activation = activation_of(c->activation(), where);
      o.keep_num_dims = c->keep_num_dims();
      break;
    }
    case fmt::OpOptions::Pool2DOptions: {
      const auto* c = fo->options_as_Pool2DOptions();
      o.padding = padding_of(c->padding());
      o.stride_h = c->stride_h();
      o.stride_w = c->stride_w();
      o.filter_h = c->filter_h();
      o.filter_w = c->filter_w();
      o.activation = activation_of(c->activation(), where);
      break;
    }
    case fmt::OpOptions::ElementwiseOptions:
      o.activation = activation_of(fo->options_as_ElementwiseOptions()->activation(), where);
      break;
    case fmt::OpOptions::ConcatenationOptions: {
      const auto* c = fo->options_as_ConcatenationOptions();
      o.axis = c->axis();
      o.activation = activation_of(c->activation(), where);
      break;
    }
    case fmt::OpOptions::SoftmaxOptions:
      o.beta = fo->options_as_SoftmaxOptions()->beta();
      break;
    case fmt::OpOptions::ReducerOptions: {
      const auto* c = fo->options_as_ReducerOptions();
      o.has_axes = c->axes() != nullptr;
      o.axes = vec(c->axes());
      o.keep_dims = c->keep_dims();
      break;
    }
    case fmt::OpOptions::PadOptions: {
      const auto* c = fo->options_as_PadOptions();
      o.has_paddings = c->paddings() != nullptr;
      o.paddings = vec(c->paddings());
      break;
    }
    case fmt::OpOptions::TransposeOptions: {
      const auto* c = fo->options_as_TransposeOptions();
      o.has_perm = c->perm() != nullptr;
      o.perm = vec(c->perm());
      break;
    }
    case fmt::OpOptions::NONE:
      break;
  }
  if (o.stride_h < 1 || o.stride_w < 1 || o.dilation_h < 1 || o.dilation_w < 1) {
    throw FormatError(cat(where, ": strides and dilations must be >= 1 (got stride ",
                          o.stride_h, "x", o.stride_w, ", dilation ", o.dilation_h, "x",
                          o.dilation_w, ")"));
  }
}

// The metadata table (informational; checked only for being readable).
Metadata read_metadata(const fmt::Metadata& meta) {
  const fmt::Metadata* md = &meta;
  Metadata out;
  out.producer = str(md->producer());
  out.source_model_sha256 = str(md->source_model_sha256());
  out.source_model_name = str(md->source_model_name());
  out.quantization_recipe = str(md->quantization_recipe());
  if (const auto* layers = md->layers()) {
    for (const fmt::LayerInfo* li : *layers) {
      LayerInfo info;
      info.op_index = li->operator_();
      info.name = str(li->name());
      info.weight_dtype = known_dtype(static_cast<int8_t>(li->weight_dtype()))
                              ? static_cast<DType>(li->weight_dtype())
                              : DType::kInt8;
      info.weight_bits = li->weight_bits();
      info.activation_bits = li->activation_bits();
      out.layers.push_back(std::move(info));
    }
  }
  if (const auto* extra = md->extra()) {
    for (const fmt::KeyValue* kv : *extra) out.extra.emplace_back(kv->key()->str(),
                                                                        str(kv->value()));
  }
  return out;
}

}  // namespace

void Model::parse() {
  const uint8_t* buf = file_->data();
  const std::size_t size = file_->size();
  const std::string& p = path_;
  const fmt::Model* m = verified_model(buf, size, p);

  // ---- version
  version_major_ = m->version_major();
  version_minor_ = m->version_minor();
  if (version_major_ == 0) throw FormatError(cat(p, ": the file has no format version"));
  if (version_major_ != kFormatVersionMajor) {
    throw FormatError(cat(p, ": format version ", version_major_, ".", version_minor_,
                          " is not supported (this runtime reads ", kFormatVersionMajor, ".x)"));
  }
  description_ = str(m->description());

  // ---- subgraph
  const auto* subgraphs = m->subgraphs();
  const uint32_t n_sub = subgraphs == nullptr ? 0 : subgraphs->size();
  if (n_sub != 1) throw FormatError(cat(p, ": expected exactly one subgraph, found ", n_sub));
  const fmt::SubGraph* sg = subgraphs->Get(0);
  graph_name_ = str(sg->name());
  const auto* buffers = m->buffers();
  const uint32_t n_buffers = buffers == nullptr ? 0 : buffers->size();

  // ---- tensors
  const auto* ftensors = sg->tensors();
  const uint32_t n_tensors = ftensors == nullptr ? 0 : ftensors->size();
  tensors_.resize(n_tensors);
  std::unordered_map<uint32_t, const uint8_t*> aligned_copy_of;  // buffer -> its aligned copy
  for (uint32_t i = 0; i < n_tensors; ++i) {
    const fmt::Tensor* ft = ftensors->Get(i);
    Tensor& t = tensors_[i];
    t.name = str(ft->name());
    const std::string what = cat(p, ": tensor ", i, " ('", t.name, "')");
    const int64_t count = read_tensor_type(*ft, what, memory_budget_, &t);
    t.buffer_index = ft->buffer();
    if (t.buffer_index != 0) {
      if (t.buffer_index >= n_buffers) {
        throw FormatError(cat(what, " refers to buffer ", t.buffer_index, ", but the file has ",
                              n_buffers, " buffers"));
      }
      const fmt::Buffer* fb = buffers->Get(t.buffer_index);
      const auto* data = fb->data();
      const std::size_t have = data == nullptr ? 0 : data->size();
      const uint64_t need = stored_bytes(t.dtype, t.storage, static_cast<uint64_t>(count));
      if (have != need) {
        throw FormatError(cat(what, ": buffer ", t.buffer_index, " holds ", have, " bytes, but ",
                              count, " ", dtype_name(t.dtype), " values in ",
                              storage_name(t.storage), " storage need ", need));
      }
      t.data_bytes = have;
      const uint8_t* ptr = have ? data->data() : nullptr;
      if (t.storage == Storage::kBase3) check_base3(ptr, have, what, t.buffer_index);
      const std::size_t align = dtype_runtime_bytes(t.dtype);
      if (ptr != nullptr && align > 1 && reinterpret_cast<uintptr_t>(ptr) % align != 0) {
        // Legal flatbuffer, but the writer did not align it: copy rather than misread. One copy
        // per buffer, shared by every tensor on it (2,000 tensors on one misaligned 1 MB buffer
        // cost 1 MB, not 2 GB); a uint64_t array is aligned for every element type.
        auto found = aligned_copy_of.find(t.buffer_index);
        if (found == aligned_copy_of.end()) {
          aligned_copies_.emplace_back(new uint64_t[(have + 7) / 8]);
          std::memcpy(aligned_copies_.back().get(), ptr, have);
          aligned_copy_bytes_ += have;
          found = aligned_copy_of
                      .emplace(t.buffer_index,
                               reinterpret_cast<const uint8_t*>(aligned_copies_.back().get()))
                      .first;
        }
        ptr = found->second;
      }
      t.data = ptr;
    }
    if (const fmt::Quantization* q = ft->quantization()) read_quantization(*q, what, &t);
  }

  auto check_index = [&](int32_t index, const std::string& what, bool optional) {
    if (optional && index == -1) return;
    if (index < 0 || static_cast<uint32_t>(index) >= n_tensors) {
      throw FormatError(cat(p, ": ", what, " refers to tensor ", index, ", but the graph has ",
                            n_tensors, " tensors"));
    }
  };

  // ---- graph inputs / outputs
  inputs_ = vec(sg->inputs());
  outputs_ = vec(sg->outputs());
  std::vector<char> available(n_tensors, 0);  // constant, graph input or already produced
  std::vector<char> produced(n_tensors, 0);
  for (uint32_t i = 0; i < n_tensors; ++i) available[i] = tensors_[i].is_constant();
  for (int32_t idx : inputs_) {
    check_index(idx, "graph input", false);
    if (tensors_[idx].is_constant()) {
      throw FormatError(cat(p, ": graph input tensor ", idx, " ('", tensors_[idx].name,
                            "') is a constant"));
    }
    if (produced[idx]) {
      throw FormatError(cat(p, ": tensor ", idx, " is listed twice as a graph input"));
    }
    available[idx] = 1;
    produced[idx] = 1;
  }
  if (outputs_.empty()) throw FormatError(cat(p, ": the graph has no outputs"));
  for (int32_t idx : outputs_) check_index(idx, "graph output", false);

  // ---- operators
  const auto* fops = sg->operators();
  const uint32_t n_ops = fops == nullptr ? 0 : fops->size();
  operators_.resize(n_ops);
  for (uint32_t oi = 0; oi < n_ops; ++oi) {
    const fmt::Operator* fo = fops->Get(oi);
    Operator& op = operators_[oi];
    const uint16_t raw_type = static_cast<uint16_t>(fo->op());
    if (raw_type > static_cast<uint16_t>(fmt::OpType::MAX)) {
      throw FormatError(cat(p, ": operator ", oi, " has unknown op type ", raw_type));
    }
    op.type = static_cast<OpType>(raw_type);
    op.name = str(fo->name());
    op.label = cat("operator ", oi, " (", op_name(op.type),
                   op.name.empty() ? "" : " '", op.name, op.name.empty() ? "" : "'", ")");
    const std::string where = cat(p, ": ", op.label);
    op.inputs = vec(fo->inputs());
    op.outputs = vec(fo->outputs());
    const Arity ar = arity_of(op.type);
    const int nin = static_cast<int>(op.inputs.size());
    if (nin < ar.min_in || nin > ar.max_in) {
      throw FormatError(cat(where, " has ", nin, " inputs; it takes ",
                            ar.min_in == ar.max_in ? cat(ar.min_in)
                                                   : cat(ar.min_in, " to ", ar.max_in)));
    }
    if (static_cast<int>(op.outputs.size()) != ar.outputs) {
      throw FormatError(cat(where, " has ", op.outputs.size(), " outputs; it has ", ar.outputs));
    }
    for (int k = 0; k < nin; ++k) {
      // Only the optional trailing inputs (bias) may be absent.
      const bool optional = k >= ar.min_in;
      check_index(op.inputs[k], cat(op.label, " input ", k), optional);
      if (op.inputs[k] >= 0 && !available[op.inputs[k]]) {
        throw FormatError(cat(where, " reads tensor ", op.inputs[k], " ('",
                              tensors_[op.inputs[k]].name,
                              "') before any operator produces it (operators must be in "
                              "execution order)"));
      }
    }
    for (int32_t out : op.outputs) {
      check_index(out, cat(op.label, " output"), false);
      if (tensors_[out].is_constant()) {
        throw FormatError(cat(where, " writes tensor ", out, " ('", tensors_[out].name,
                              "'), which is a constant"));
      }
      if (produced[out]) {
        throw FormatError(cat(where, " writes tensor ", out, " ('", tensors_[out].name,
                              "'), which is already a graph input or another operator's output"));
      }
      produced[out] = 1;
      available[out] = 1;
    }

    read_op_options(*fo, ar, where, &op.options);
  }
  for (int32_t idx : outputs_) {
    if (!available[idx]) {
      throw FormatError(cat(p, ": graph output tensor ", idx, " ('", tensors_[idx].name,
                            "') is never produced"));
    }
  }

  // ---- metadata (informational; checked only for being readable)
  if (const fmt::Metadata* md = m->metadata()) metadata_ = read_metadata(*md);
}

}  // namespace runtime
}  // namespace edge
