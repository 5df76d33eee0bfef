#include "edge/runtime/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "edge/runtime/error.h"

namespace edge {
namespace runtime {

int64_t NpyArray::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

constexpr std::size_t kMaxHeader = 1 << 20;

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw InputError(name + ": not a usable .npy file: " + what);
}

// Value of `key` in the header dict: the text after "'key':" up to the next top-level comma.
std::string dict_value(const std::string& header, const std::string& key,
                       const std::string& name) {
  const std::string quoted1 = "'" + key + "'", quoted2 = "\"" + key + "\"";
  std::size_t at = header.find(quoted1);
  std::size_t len = quoted1.size();
  if (at == std::string::npos) {
    at = header.find(quoted2);
    len = quoted2.size();
  }
  if (at == std::string::npos) fail(name, "header has no '" + key + "'");
  std::size_t pos = header.find(':', at + len);
  if (pos == std::string::npos) fail(name, "header entry '" + key + "' has no value");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  std::size_t end = pos;
  int depth = 0;
  while (end < header.size()) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if ((c == ',' || c == '}') && depth <= 0) break;
    ++end;
    if (depth < 0) break;
  }
  return header.substr(pos, end - pos);
}

DType dtype_of(const std::string& descr, const std::string& name) {
  std::string d = descr;
  if (d.size() >= 2 && (d.front() == '\'' || d.front() == '"')) d = d.substr(1, d.size() - 2);
  if (d.size() < 2) fail(name, "dtype '" + d + "' is not understood");
  const char order = d[0];
  const std::string kind = d.substr(1);
  if (order == '>' && kind != "i1" && kind != "u1" && kind != "b1") {
    fail(name, "big-endian data ('" + d + "') is not supported");
  }
  if (order != '<' && order != '|' && order != '=' && order != '>') {
    fail(name, "dtype '" + d + "' is not understood");
  }
  if (kind == "f4") return DType::kFloat32;
  if (kind == "f2") return DType::kFloat16;
  if (kind == "i1") return DType::kInt8;
  if (kind == "u1") return DType::kUInt8;
  if (kind == "b1") return DType::kBool;
  if (kind == "i2") return DType::kInt16;
  if (kind == "i4") return DType::kInt32;
  if (kind == "i8") return DType::kInt64;
  fail(name, "dtype '" + d + "' is not supported (bool, int8/16/32/64, uint8, float16/32)");
}

}  // namespace

NpyArray parse_npy(const uint8_t* bytes, std::size_t size, const std::string& name) {
  static const uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || std::memcmp(bytes, kMagic, 6) != 0) fail(name, "missing the \\x93NUMPY magic");
  const int major = bytes[6];
  std::size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = bytes[8] | (static_cast<std::size_t>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) fail(name, "truncated header");
    header_len = bytes[8] | (static_cast<std::size_t>(bytes[9]) << 8) |
                 (static_cast<std::size_t>(bytes[10]) << 16) |
                 (static_cast<std::size_t>(bytes[11]) << 24);
    offset = 12;
  } else {
    fail(name, "format version " + std::to_string(major) + " is not supported");
  }
  if (header_len > kMaxHeader || offset + header_len > size) fail(name, "truncated header");
  const std::string header(reinterpret_cast<const char*>(bytes + offset), header_len);
  NpyArray a;
  a.dtype = dtype_of(dict_value(header, "descr", name), name);
  const std::string fortran = dict_value(header, "fortran_order", name);
  if (fortran.find("True") != std::string::npos) {
    fail(name, "Fortran-order arrays are not supported");
  }
  const std::string shape = dict_value(header, "shape", name);
  if (shape.empty() || shape.front() != '(') fail(name, "shape '" + shape + "' is not a tuple");
  int64_t count = 1;
  std::size_t pos = 1;
  while (pos < shape.size()) {
    while (pos < shape.size() && (shape[pos] == ' ' || shape[pos] == ',')) ++pos;
    if (pos >= shape.size() || shape[pos] == ')') break;
    int64_t v = 0;
    bool digits = false;
    while (pos < shape.size() && shape[pos] >= '0' && shape[pos] <= '9') {
      v = v * 10 + (shape[pos] - '0');
      if (v > (int64_t{1} << 40)) fail(name, "absurd dimension in shape " + shape);
      digits = true;
      ++pos;
    }
    if (!digits) fail(name, "shape '" + shape + "' is not a tuple of integers");
    a.shape.push_back(v);
    if (v != 0 && count > (int64_t{1} << 40) / v) fail(name, "absurd shape " + shape);
    count *= v;
    if (a.shape.size() > 32) fail(name, "more than 32 dimensions");
  }
  const std::size_t elem = dtype_runtime_bytes(a.dtype);
  const uint64_t need = static_cast<uint64_t>(count) * elem;
  const std::size_t have = size - offset - header_len;
  if (have != need) {
    std::ostringstream os;
    os << "shape " << shape << " of " << dtype_name(a.dtype) << " needs " << need
       << " data bytes, the file has " << have;
    fail(name, os.str());
  }
  a.data.assign(bytes + offset + header_len, bytes + size);
  return a;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  return parse_npy(bytes.data(), bytes.size(), path);
}

std::string npy_descr(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "<f4";
    case DType::kFloat16: return "<f2";
    case DType::kInt8: return "|i1";
    case DType::kUInt8: return "|u1";
    case DType::kBool: return "|b1";
    case DType::kInt16: return "<i2";
    case DType::kInt32: return "<i4";
    case DType::kInt64: return "<i8";
    default: break;
  }
  throw InputError(std::string("no .npy type for ") + dtype_name(dtype));
}

std::vector<uint8_t> encode_npy(DType dtype, const std::vector<int64_t>& shape, const void* data,
                                std::size_t bytes) {
  std::ostringstream h;
  h << "{'descr': '" << npy_descr(dtype) << "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) h << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) h << ",";  // a one-element tuple
  h << "), }";
  std::string header = h.str();
  // Pad with spaces so that the data starts on a 64-byte boundary; end with a newline.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  static const uint8_t kPrefix[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  std::vector<uint8_t> out(10 + header.size() + bytes);
  std::memcpy(out.data(), kPrefix, 8);
  out[8] = static_cast<uint8_t>(header.size() & 0xff);
  out[9] = static_cast<uint8_t>(header.size() >> 8);
  std::memcpy(out.data() + 10, header.data(), header.size());
  if (bytes != 0) std::memcpy(out.data() + 10 + header.size(), data, bytes);
  return out;
}

void write_npy(const std::string& path, DType dtype, const std::vector<int64_t>& shape,
               const void* data, std::size_t bytes) {
  const std::vector<uint8_t> encoded = encode_npy(dtype, shape, data, bytes);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(path + ": cannot write: " + std::strerror(errno));
    out.write(reinterpret_cast<const char*>(encoded.data()),
              static_cast<std::streamsize>(encoded.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw IoError(path + ": write failed: " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw IoError(path + ": cannot rename the written file into place: " + std::strerror(err));
  }
}

}  // namespace runtime
}  // namespace edge
