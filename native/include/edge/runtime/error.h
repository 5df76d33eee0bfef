// Errors of the .edge runtime. Everything that can go wrong with a model file, an input or a
// request is reported by throwing one of these, with a message that names the file, the
// operator or tensor, and what was expected; nothing is reported by crashing.
#pragma once

#include <stdexcept>
#include <string>

namespace edge {
namespace runtime {

class Error : public std::runtime_error {
 public:
  enum class Kind {
    kFormat,       // the .edge file is malformed (truncated, bad identifier, bad index, ...)
    kUnsupported,  // well formed, but uses something this runtime cannot run
    kInput,        // an input array (or .npy file) does not fit the model
    kIo,           // the file system said no
  };
  Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// A malformed model file.
class FormatError : public Error {
 public:
  explicit FormatError(const std::string& message) : Error(Kind::kFormat, message) {}
};

// A well-formed model this runtime cannot run (an op or type combination it lacks).
class UnsupportedError : public Error {
 public:
  explicit UnsupportedError(const std::string& message) : Error(Kind::kUnsupported, message) {}
};

class InputError : public Error {
 public:
  explicit InputError(const std::string& message) : Error(Kind::kInput, message) {}
};

class IoError : public Error {
 public:
  explicit IoError(const std::string& message) : Error(Kind::kIo, message) {}
};

}  // namespace runtime
}  // namespace edge
