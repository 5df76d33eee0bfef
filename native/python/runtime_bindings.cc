// pybind11 bindings of the .edge runtime: sdk._native.EdgeInterpreter. The Python face is
// sdk.run.EdgeModel, which turns the native exceptions registered here into sdk.base.errors.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>

#include "edge/runtime/error.h"
#include "edge/runtime/interpreter.h"
#include "edge/runtime/model.h"

namespace py = pybind11;

namespace edge {
namespace python {
namespace {

using runtime::DType;

const char* numpy_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kInt32: return "int32";
    case DType::kUInt8: return "uint8";
    case DType::kInt64: return "int64";
    case DType::kBool: return "bool";
    case DType::kInt16: return "int16";
    default: return "int8";  // int8 and the sub-byte types, held one value per byte
  }
}

py::dict tensor_details(const runtime::Tensor& t, int index) {
  py::dict d;
  d["name"] = t.name;
  d["index"] = index;
  d["shape"] = py::array_t<int32_t>(static_cast<py::ssize_t>(t.shape.size()), t.shape.data());
  d["shape_signature"] = d["shape"];
  d["dtype"] = py::dtype(numpy_type(t.dtype));
  d["edge_dtype"] = runtime::dtype_name(t.dtype);
  const bool per_tensor = t.quant.scale.size() == 1;
  d["quantization"] = py::make_tuple(per_tensor ? t.quant.scale[0] : 0.0f,
                                     per_tensor ? t.quant.zero_point_at(0) : 0);
  py::dict qp;
  qp["scales"] = py::array_t<float>(static_cast<py::ssize_t>(t.quant.scale.size()),
                                    t.quant.scale.data());
  std::vector<int32_t> zps;
  for (std::size_t i = 0; i < t.quant.scale.size(); ++i) {
    zps.push_back(static_cast<int32_t>(t.quant.zero_point_at(i)));
  }
  qp["zero_points"] = py::array_t<int32_t>(static_cast<py::ssize_t>(zps.size()), zps.data());
  qp["quantized_dimension"] = t.quant.axis;
  d["quantization_parameters"] = qp;
  return d;
}

class PyInterpreter {
 public:
  PyInterpreter(std::shared_ptr<const runtime::Model> model, int threads, const std::string& isa,
                bool profile) {
    runtime::InterpreterOptions opts;
    opts.threads = threads;
    opts.isa = isa;
    opts.profile = profile;
    interp_ = std::make_unique<runtime::Interpreter>(std::move(model), opts);
  }

  py::list input_details() const {
    py::list out;
    for (std::size_t i = 0; i < interp_->input_count(); ++i) {
      out.append(tensor_details(interp_->input_tensor(i), interp_->model().inputs()[i]));
    }
    return out;
  }
  py::list output_details() const {
    py::list out;
    for (std::size_t i = 0; i < interp_->output_count(); ++i) {
      out.append(tensor_details(interp_->output_tensor(i), interp_->model().outputs()[i]));
    }
    return out;
  }

  void set_input(std::size_t i, const py::array& array) {
    if (i >= interp_->input_count()) {
      throw runtime::InputError("input " + std::to_string(i) + " does not exist (the model has " +
                                std::to_string(interp_->input_count()) + ")");
    }
    const runtime::Tensor& t = interp_->input_tensor(i);
    const py::dtype want(numpy_type(t.dtype));
    if (!array.dtype().is(want) && array.dtype().num() != want.num()) {
      throw runtime::InputError("input " + std::to_string(i) + " ('" + t.name + "') needs " +
                                std::string(py::str(want)) + ", got " +
                                std::string(py::str(array.dtype())));
    }
    if (static_cast<std::size_t>(array.ndim()) != t.shape.size()) {
      throw runtime::InputError("input " + std::to_string(i) + " ('" + t.name + "') needs rank " +
                                std::to_string(t.shape.size()) + ", got " +
                                std::to_string(array.ndim()));
    }
    for (py::ssize_t d = 0; d < array.ndim(); ++d) {
      if (array.shape(d) != t.shape[d]) {
        throw runtime::InputError("input " + std::to_string(i) + " ('" + t.name +
                                  "') needs shape " + std::string(py::str(py::cast(t.shape))) +
                                  ", got " + std::string(py::str(array.attr("shape"))));
      }
    }
    py::array contiguous = py::array::ensure(array, py::array::c_style);
    interp_->set_input(i, contiguous.data(), static_cast<std::size_t>(contiguous.nbytes()));
  }

  py::array get_output(std::size_t i) const {
    if (i >= interp_->output_count()) throw py::index_error("no output " + std::to_string(i));
    const runtime::Tensor& t = interp_->output_tensor(i);
    std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
    py::array out(py::dtype(numpy_type(t.dtype)), shape);
    std::memcpy(out.mutable_data(), interp_->output_data(i), t.runtime_bytes());
    return out;
  }

  void run() {
    py::gil_scoped_release release;
    interp_->run();
  }

  py::list layer_stats() const {
    py::list out;
    for (const auto& s : interp_->layer_stats()) {
      py::dict d;
      d["index"] = s.op_index;
      d["op"] = s.op;
      d["label"] = s.label;
      d["kernel"] = s.kernel;
      d["runs"] = s.runs;
      d["total_ms"] = s.total_ms;
      d["mean_ms"] = s.runs ? s.total_ms / static_cast<double>(s.runs) : 0.0;
      d["min_ms"] = s.min_ms;
      d["threads"] = s.threads(interp_->threads());
      d["threads_why"] = s.threads_why(interp_->threads());
      out.append(d);
    }
    return out;
  }

  py::dict metadata() const {
    const runtime::Model& m = interp_->model();
    const runtime::Metadata& md = m.metadata();
    py::dict d;
    d["format_version"] = py::make_tuple(m.version_major(), m.version_minor());
    d["producer"] = md.producer;
    d["source_model_sha256"] = md.source_model_sha256;
    d["source_model_name"] = md.source_model_name;
    d["quantization_recipe"] = md.quantization_recipe;
    py::list layers;
    for (const auto& l : md.layers) {
      py::dict li;
      li["operator"] = l.op_index;
      li["name"] = l.name;
      li["weight_dtype"] = runtime::dtype_name(l.weight_dtype);
      li["weight_bits"] = l.weight_bits;
      li["activation_bits"] = l.activation_bits;
      layers.append(li);
    }
    d["layers"] = layers;
    py::dict extra;
    for (const auto& kv : md.extra) extra[py::str(kv.first)] = kv.second;
    d["extra"] = extra;
    return d;
  }

  runtime::Interpreter& interp() { return *interp_; }

 private:
  std::unique_ptr<runtime::Interpreter> interp_;
};

}  // namespace

void bind_runtime(py::module_& m) {
  static py::exception<runtime::Error> base(m, "EdgeRuntimeError", PyExc_RuntimeError);
  static py::exception<runtime::FormatError> format(m, "EdgeFormatError", base.ptr());
  static py::exception<runtime::UnsupportedError> unsupported(m, "EdgeUnsupportedError",
                                                              base.ptr());
  static py::exception<runtime::InputError> input(m, "EdgeInputError", base.ptr());
  static py::exception<runtime::IoError> io(m, "EdgeIoError", base.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const runtime::FormatError& e) {
      PyErr_SetString(format.ptr(), e.what());
    } catch (const runtime::UnsupportedError& e) {
      PyErr_SetString(unsupported.ptr(), e.what());
    } catch (const runtime::InputError& e) {
      PyErr_SetString(input.ptr(), e.what());
    } catch (const runtime::IoError& e) {
      PyErr_SetString(io.ptr(), e.what());
    } catch (const runtime::Error& e) {
      PyErr_SetString(base.ptr(), e.what());
    }
  });

  py::class_<PyInterpreter>(m, "EdgeInterpreter",
                            "A loaded .edge model ready to run (see sdk.run.EdgeModel).")
      .def(py::init([](const std::string& path, int threads, const std::string& isa,
                       bool profile) {
             std::shared_ptr<const runtime::Model> model;
             {
               py::gil_scoped_release release;
               model = runtime::Model::load(path);
             }
             return std::make_unique<PyInterpreter>(std::move(model), threads, isa, profile);
           }),
           py::arg("path"), py::arg("threads") = 0, py::arg("isa") = "",
           py::arg("profile") = false)
      .def_static(
          "from_bytes",
          [](const py::bytes& data, int threads, const std::string& isa, bool profile,
             const std::string& name) {
            const std::string raw = data;
            auto model = runtime::Model::from_bytes(
                reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), name);
            return std::make_unique<PyInterpreter>(std::move(model), threads, isa, profile);
          },
          py::arg("data"), py::arg("threads") = 0, py::arg("isa") = "",
          py::arg("profile") = false, py::arg("name") = "<bytes>")
      .def("input_details", &PyInterpreter::input_details)
      .def("output_details", &PyInterpreter::output_details)
      .def("set_input", &PyInterpreter::set_input, py::arg("index"), py::arg("array"))
      .def("get_output", &PyInterpreter::get_output, py::arg("index"))
      .def("run", &PyInterpreter::run)
      .def("layer_stats", &PyInterpreter::layer_stats)
      .def("metadata", &PyInterpreter::metadata)
      .def("set_profiling", [](PyInterpreter& self, bool on) { self.interp().set_profiling(on); })
      .def_property_readonly("arena_bytes",
                             [](PyInterpreter& self) { return self.interp().arena_bytes(); })
      .def_property_readonly("scratch_bytes",
                             [](PyInterpreter& self) { return self.interp().scratch_bytes(); })
      .def_property_readonly(
          "unshared_activation_bytes",
          [](PyInterpreter& self) { return self.interp().unshared_activation_bytes(); })
      .def_property_readonly(
          "prepared_weight_bytes",
          [](PyInterpreter& self) { return self.interp().prepared_weight_bytes(); })
      .def_property_readonly("threads", [](PyInterpreter& self) { return self.interp().threads(); })
      .def_property_readonly("model_bytes",
                             [](PyInterpreter& self) { return self.interp().model().file_bytes(); });
}

}  // namespace python
}  // namespace edge
