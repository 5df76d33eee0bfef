// pybind11 bindings of the low-bit kernels (issue 3): packing, plans, thread pool, ISA choice.
// numpy in, numpy out. The typed Python face is sdk/kernels.py; this stays thin.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edge/kernels/conv2d.h"
#include "edge/kernels/depthwise_conv2d.h"
#include "edge/kernels/fully_connected.h"
#include "edge/kernels/isa.h"
#include "edge/kernels/memory_bandwidth.h"
#include "edge/kernels/requant.h"
#include "edge/packing/int2.h"
#include "edge/packing/int4.h"
#include "edge/packing/ternary.h"
#include "edge/runtime/interpreter.h"
#include "edge/thread_pool.h"

namespace py = pybind11;

namespace {

template <typename T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::optional<edge::Isa> isa_arg(const std::optional<std::string>& name) {
  if (!name) return std::nullopt;
  return edge::parse_isa(*name);
}

edge::OutputType output_type_arg(const std::string& name) {
  if (name == "int8") return edge::OutputType::kInt8;
  if (name == "float32") return edge::OutputType::kFloat32;
  if (name == "int32") return edge::OutputType::kInt32;
  throw std::invalid_argument("output_type must be 'int8', 'float32' or 'int32', got '" + name +
                              "'");
}

const char* output_type_name(edge::OutputType t) {
  switch (t) {
    case edge::OutputType::kInt8: return "int8";
    case edge::OutputType::kFloat32: return "float32";
    case edge::OutputType::kInt32: return "int32";
  }
  return "?";
}

edge::Rounding rounding_arg(const std::string& name) {
  if (name == "upward") return edge::Rounding::kUpward;
  if (name == "away_from_zero") return edge::Rounding::kAwayFromZero;
  if (name == "single") return edge::Rounding::kSingle;
  throw std::invalid_argument("rounding must be 'upward', 'away_from_zero' or 'single', got '" +
                              name + "'");
}

// Everything LayerOptions holds, in Python-friendly form; the arrays are kept alive here
// because LayerOptions points at them only until the plan has copied them.
struct LayerArgs {
  edge::LayerOptions options;
  std::vector<int32_t> bias;
  std::vector<edge::QuantizedMultiplier> multipliers;
};

LayerArgs layer_args(float input_scale, int32_t input_zero_point, float output_scale,
                     int32_t output_zero_point, const std::string& activation,
                     const std::optional<Array<int32_t>>& bias, const std::string& output_type,
                     const std::string& rounding, const std::optional<std::string>& isa,
                     const std::optional<std::pair<int32_t, int32_t>>& clamp,
                     const std::optional<std::pair<Array<int32_t>, Array<int32_t>>>& multipliers,
                     int32_t channels) {
  LayerArgs a;
  a.options.input = {input_scale, input_zero_point};
  a.options.output = {output_scale, output_zero_point};
  a.options.activation = edge::parse_activation(activation.c_str());
  a.options.output_type = output_type_arg(output_type);
  a.options.rounding = rounding_arg(rounding);
  a.options.isa = isa_arg(isa);
  if (clamp) a.options.clamp = edge::ClampRange{clamp->first, clamp->second};
  if (bias) {
    if (bias->ndim() != 1 || bias->shape(0) != channels) {
      throw std::invalid_argument("bias must have shape [" + std::to_string(channels) + "]");
    }
    a.bias.assign(bias->data(), bias->data() + channels);
    a.options.bias = a.bias.data();
  }
  if (multipliers) {
    const auto& [m, s] = *multipliers;
    if (m.size() != s.size() || (m.size() != 1 && m.size() != channels)) {
      throw std::invalid_argument("multipliers and shifts must both have 1 or " +
                                  std::to_string(channels) + " entries");
    }
    for (py::ssize_t i = 0; i < m.size(); ++i) a.multipliers.push_back({m.data()[i], s.data()[i]});
    a.options.multipliers = a.multipliers.data();
  }
  return a;
}

// A numpy array viewing memory owned by `owner` (kept alive through the array's base).
template <typename T>
py::array view_of(const T* data, std::vector<py::ssize_t> shape, py::handle owner) {
  py::array arr(py::dtype::of<T>(), shape, data, owner);
  py::detail::array_proxy(arr.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return arr;
}

edge::PackedWeights pack_from_values(const Array<int8_t>& values, const std::string& type,
                                     const Array<float>& scales,
                                     const std::optional<Array<int32_t>>& zero_points,
                                     int32_t group_size,
                                     const std::optional<Array<float>>& group_scales) {
  if (values.ndim() != 2) throw std::invalid_argument("weights must be a 2-D [n, k] array");
  const int32_t n = static_cast<int32_t>(values.shape(0)), k = static_cast<int32_t>(values.shape(1));
  if (zero_points && zero_points->size() != n) {
    throw std::invalid_argument("zero_points must have " + std::to_string(n) + " entries");
  }
  edge::PackedWeights w = edge::pack_weights(edge::parse_weight_type(type), values.data(), n, k,
                                             scales.data(), static_cast<int32_t>(scales.size()),
                                             zero_points ? zero_points->data() : nullptr);
  if (group_size > 0) {
    if (!group_scales) throw std::invalid_argument("group_size needs group_scales");
    const int64_t groups = (k + group_size - 1) / group_size;
    if (group_scales->size() != static_cast<py::ssize_t>(n * groups)) {
      throw std::invalid_argument("group_scales must have shape [" + std::to_string(n) + ", " +
                                  std::to_string(groups) + "]");
    }
    w.set_group_scales(group_size, group_scales->data());
  }
  return w;
}

// Allocates the output array for `type` and calls fn(dst) without the GIL.
template <typename F>
py::array run_plan(edge::OutputType type, const std::vector<py::ssize_t>& shape, const F& fn) {
  py::array out;
  switch (type) {
    case edge::OutputType::kInt8: out = py::array_t<int8_t>(shape); break;
    case edge::OutputType::kFloat32: out = py::array_t<float>(shape); break;
    case edge::OutputType::kInt32: out = py::array_t<int32_t>(shape); break;
  }
  void* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    fn(dst);
  }
  return out;
}

template <typename Plan>
void dispatch_run(Plan& plan, edge::OutputType type, const int8_t* in, void* out,
                  edge::ThreadPool* pool) {
  switch (type) {
    case edge::OutputType::kInt8: plan.run(in, static_cast<int8_t*>(out), pool); break;
    case edge::OutputType::kFloat32: plan.run(in, static_cast<float*>(out), pool); break;
    case edge::OutputType::kInt32: plan.run(in, static_cast<int32_t*>(out), pool); break;
  }
}

void dispatch_run_fc(edge::FullyConnected& p, const int8_t* in, int32_t m, void* out,
                     edge::ThreadPool* pool) {
  switch (p.output_type()) {
    case edge::OutputType::kInt8: p.run(in, m, static_cast<int8_t*>(out), pool); break;
    case edge::OutputType::kFloat32: p.run(in, m, static_cast<float*>(out), pool); break;
    case edge::OutputType::kInt32: p.run(in, m, static_cast<int32_t*>(out), pool); break;
  }
}

// Runs fn `iterations` times without the GIL and returns the seconds each run took.
template <typename F>
std::vector<double> time_runs(int iterations, const F& fn) {
  std::vector<double> times;
  times.reserve(static_cast<std::size_t>(std::max(iterations, 0)));
  py::gil_scoped_release release;
  for (int i = 0; i < iterations; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return times;
}

edge::ConvGeometry geometry_arg(const std::vector<int32_t>& input_shape,
                                const std::pair<int32_t, int32_t>& kernel,
                                const std::pair<int32_t, int32_t>& strides,
                                const std::pair<int32_t, int32_t>& dilations,
                                const py::object& padding) {
  if (input_shape.size() != 4) throw std::invalid_argument("input_shape must be (n, h, w, c)");
  edge::ConvGeometry g;
  g.batch = input_shape[0];
  g.input_height = input_shape[1];
  g.input_width = input_shape[2];
  g.input_channels = input_shape[3];
  g.kernel_height = kernel.first;
  g.kernel_width = kernel.second;
  g.stride_height = strides.first;
  g.stride_width = strides.second;
  g.dilation_height = dilations.first;
  g.dilation_width = dilations.second;
  if (py::isinstance<py::str>(padding)) {
    const std::string p = padding.cast<std::string>();
    if (p == "same" || p == "SAME") g.padding = edge::Padding::kSame;
    else if (p == "valid" || p == "VALID") g.padding = edge::Padding::kValid;
    else throw std::invalid_argument("padding must be 'same', 'valid' or (top, bottom, left, right)");
  } else {
    const auto pads = padding.cast<std::vector<int32_t>>();
    if (pads.size() != 4) throw std::invalid_argument("explicit padding is (top, bottom, left, right)");
    g.padding = edge::Padding::kExplicit;
    g.pad_top = pads[0];
    g.pad_bottom = pads[1];
    g.pad_left = pads[2];
    g.pad_right = pads[3];
  }
  return g;
}

// Python-side plan objects: the C++ plan plus what the Python caller needs to see.
struct PyFullyConnected {
  std::shared_ptr<edge::PackedWeights> weights;  // keeps the packed data alive
  std::unique_ptr<edge::FullyConnected> plan;
};

struct PyConv2D {
  std::shared_ptr<edge::PackedWeights> weights;
  std::unique_ptr<edge::Conv2D> plan;
  int32_t batch, in_h, in_w, in_c;
};

struct PyDepthwise {
  std::unique_ptr<edge::DepthwiseConv2D> plan;
  int32_t batch, in_h, in_w, in_c;
};

// ISA choice and the kernel names
void bind_isa(py::module_& m) {
  m.def("available_isas", [] {
    std::vector<std::string> out;
    for (edge::Isa isa : edge::available_isas()) out.emplace_back(edge::isa_name(isa));
    return out;
  }, "Kernel ISAs this binary carries and this CPU runs, scalar first, best last.");
  m.def("kernel_names", [] {
    std::vector<std::string> out = edge::kernel_names();
    for (std::string& name : edge::runtime::op_kernel_names()) out.push_back(std::move(name));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }, "Every kernel name this binary can report in a profile (each a function's symbol).");
  m.def("built_isas", [] {
    std::vector<std::string> out;
    for (const char* name : {"scalar", "avx2", "avxvnni", "avx512vnni", "avx512amx", "neon",
                             "dotprod", "i8mm"}) {
      if (edge::isa_built(edge::parse_isa(name))) out.emplace_back(name);
    }
    return out;
  }, "Kernel ISAs compiled into this binary.");
  m.def("best_isa", [] { return std::string(edge::isa_name(edge::best_isa())); });
  m.def("resolve_isa", [](const std::optional<std::string>& name) {
    return std::string(edge::isa_name(edge::resolve_isa(isa_arg(name))));
  }, py::arg("isa") = py::none(),
     "The ISA a plan would use: the name given, else $EDGE_KERNEL_ISA, else the best.");
}

// TFLite requantisation
void bind_requantisation(py::module_& m) {
  m.def("quantize_multiplier", [](double real) {
    const edge::QuantizedMultiplier q = edge::quantize_multiplier(real);
    return std::make_pair(q.multiplier, q.shift);
  }, py::arg("real_multiplier"), "TFLite's QuantizeMultiplier: (Q31 significand, exponent).");
  m.def("requantize", [](const Array<int32_t>& acc, const Array<int32_t>& multiplier,
                         const Array<int32_t>& shift, int32_t zero_point, int32_t qmin,
                         int32_t qmax, const std::string& rounding, int32_t axis_size) {
    // Reference requantisation (scalar), per channel along the last axis when multiplier has
    // more than one entry.
    const edge::Rounding r = rounding_arg(rounding);
    py::array_t<int8_t> out(std::vector<py::ssize_t>(acc.shape(), acc.shape() + acc.ndim()));
    const py::ssize_t count = acc.size();
    const py::ssize_t channels = multiplier.size();
    if (channels != shift.size() || (channels != 1 && channels != axis_size)) {
      throw std::invalid_argument("multiplier and shift must have 1 entry or one per channel");
    }
    int8_t* dst = out.mutable_data();
    for (py::ssize_t i = 0; i < count; ++i) {
      const py::ssize_t c = channels == 1 ? 0 : i % channels;
      dst[i] = edge::requantize_one(acc.data()[i], multiplier.data()[c], shift.data()[c],
                                    zero_point, qmin, qmax, r);
    }
    return out;
  }, py::arg("acc"), py::arg("multiplier"), py::arg("shift"), py::arg("zero_point"),
     py::arg("qmin") = -128, py::arg("qmax") = 127, py::arg("rounding") = "upward",
     py::arg("axis_size") = 1);
  m.def("activation_range", [](const std::string& activation, float scale, int32_t zero_point) {
    const edge::ClampRange r = edge::activation_range(edge::parse_activation(activation.c_str()),
                                                      {scale, zero_point});
    return std::make_pair(r.min, r.max);
  });
}

// weight packing
void bind_packing(py::module_& m) {
  py::class_<edge::PackedWeights, std::shared_ptr<edge::PackedWeights>>(
      m, "PackedWeights", "Weights packed in the kernels' tiled layout (packing/layout.h).")
      .def_property_readonly("weight_type", [](const edge::PackedWeights& w) {
        return std::string(edge::weight_type_name(w.type()));
      })
      .def_property_readonly("n", &edge::PackedWeights::n)
      .def_property_readonly("k", &edge::PackedWeights::k)
      .def_property_readonly("group_size", &edge::PackedWeights::group_size)
      .def_property_readonly("nbytes", [](const edge::PackedWeights& w) { return w.data().size(); })
      .def_property_readonly("data", [](py::object self) {
        const auto& w = self.cast<const edge::PackedWeights&>();
        return view_of(w.data().data(), {static_cast<py::ssize_t>(w.data().size())}, self);
      }, "The packed bytes (read-only view).")
      .def_property_readonly("zero_points", [](const edge::PackedWeights& w) {
        return py::array_t<int32_t>(static_cast<py::ssize_t>(w.zero_points().size()),
                                    w.zero_points().data());
      }, "Per-channel zero points in the code domain (value = code - zero_point).")
      .def_property_readonly("scales", [](const edge::PackedWeights& w) {
        return py::array_t<float>(static_cast<py::ssize_t>(w.scales().size()), w.scales().data());
      })
      .def_property_readonly("group_scales", [](const edge::PackedWeights& w) -> py::object {
        if (w.group_size() == 0) return py::none();
        const py::ssize_t groups = (w.k() + w.group_size() - 1) / w.group_size();
        py::array_t<float> out({static_cast<py::ssize_t>(w.n()), groups});
        std::memcpy(out.mutable_data(), w.group_scales().data(), w.group_scales().size() * 4);
        return std::move(out);
      })
      .def("code", [](const edge::PackedWeights& w, int32_t n, int32_t k) {
        if (n < 0 || n >= w.n() || k < 0 || k >= w.k()) throw py::index_error("(n, k) out of range");
        return static_cast<int>(w.view().code(n, k));
      })
      .def("unpack", [](const edge::PackedWeights& w) {
        py::array_t<int8_t> values({static_cast<py::ssize_t>(w.n()), static_cast<py::ssize_t>(w.k())});
        py::array_t<int32_t> zps(static_cast<py::ssize_t>(w.n()));
        edge::unpack_weights(w.view(), values.mutable_data(), zps.mutable_data());
        return std::make_pair(values, zps);
      }, "(values [n, k] int8 in TFLite's q domain, zero points [n] in the q domain)");

  m.def("pack_weights", [](const Array<int8_t>& values, const std::string& type,
                           const Array<float>& scales, const std::optional<Array<int32_t>>& zps,
                           int32_t group_size, const std::optional<Array<float>>& group_scales) {
    return std::make_shared<edge::PackedWeights>(
        pack_from_values(values, type, scales, zps, group_size, group_scales));
  }, py::arg("values"), py::arg("weight_type"), py::arg("scales"),
     py::arg("zero_points") = py::none(), py::arg("group_size") = 0,
     py::arg("group_scales") = py::none());
  m.def("pack_codes", [](const Array<uint8_t>& codes, const std::string& type,
                         const Array<float>& scales, const std::optional<Array<int32_t>>& zps) {
    if (codes.ndim() != 2) throw std::invalid_argument("codes must be a 2-D [n, k] array");
    return std::make_shared<edge::PackedWeights>(edge::pack_codes(
        edge::parse_weight_type(type), codes.data(), static_cast<int32_t>(codes.shape(0)),
        static_cast<int32_t>(codes.shape(1)), scales.data(), static_cast<int32_t>(scales.size()),
        zps ? zps->data() : nullptr));
  }, py::arg("codes"), py::arg("weight_type"), py::arg("scales"),
     py::arg("code_zero_points") = py::none());
  m.def("pack_tflite", [](const Array<uint8_t>& buffer, const std::string& type, int32_t n,
                          int32_t k, const Array<float>& scales,
                          const std::optional<Array<int32_t>>& zps) {
    const edge::WeightType t = edge::parse_weight_type(type);
    const int32_t* z = zps ? zps->data() : nullptr;
    const auto size = static_cast<std::size_t>(buffer.size());
    const int32_t ns = static_cast<int32_t>(scales.size());
    switch (t) {
      case edge::WeightType::kInt4:
        return std::make_shared<edge::PackedWeights>(
            edge::pack_int4_tflite(buffer.data(), size, n, k, scales.data(), ns, z));
      case edge::WeightType::kInt2:
      case edge::WeightType::kTernary:
        return std::make_shared<edge::PackedWeights>(edge::pack_int2_tflite(
            buffer.data(), size, n, k, scales.data(), ns, z, t == edge::WeightType::kTernary));
      case edge::WeightType::kInt8:
        break;
    }
    throw std::invalid_argument("pack_tflite converts INT4 or INT2 buffers; use pack_weights for int8");
  }, py::arg("buffer"), py::arg("weight_type"), py::arg("n"), py::arg("k"), py::arg("scales"),
     py::arg("zero_points") = py::none());
  m.def("encode_base3", [](const Array<int8_t>& values) {
    const auto count = static_cast<std::size_t>(values.size());
    py::array_t<uint8_t> out(static_cast<py::ssize_t>(edge::base3_bytes(count)));
    edge::encode_base3(values.data(), count, out.mutable_data());
    return out;
  }, py::arg("values"));
  m.def("decode_base3", [](const Array<uint8_t>& bytes, std::size_t count) {
    if (static_cast<std::size_t>(bytes.size()) < edge::base3_bytes(count)) {
      throw std::invalid_argument(std::to_string(count) + " trits need " +
                                  std::to_string(edge::base3_bytes(count)) + " bytes, got " +
                                  std::to_string(bytes.size()));
    }
    py::array_t<int8_t> out(static_cast<py::ssize_t>(count));
    edge::decode_base3(bytes.data(), count, out.mutable_data());
    return out;
  }, py::arg("data"), py::arg("count"));
  m.def("pack_ternary_base3", [](const Array<uint8_t>& bytes, int32_t n, int32_t k,
                                 const Array<float>& scales) {
    return std::make_shared<edge::PackedWeights>(edge::pack_ternary_base3(
        bytes.data(), static_cast<std::size_t>(bytes.size()), n, k, scales.data(),
        static_cast<int32_t>(scales.size())));
  }, py::arg("data"), py::arg("n"), py::arg("k"), py::arg("scales"));

  m.def("read_bandwidth_gbps", [](std::size_t bytes, int repeats,
                                  std::shared_ptr<edge::ThreadPool> pool) {
    py::gil_scoped_release release;
    return edge::read_bandwidth_gbps(bytes, repeats, pool.get());
  }, py::arg("nbytes"), py::arg("repeats") = 5, py::arg("pool") = nullptr,
     "Best read bandwidth over `repeats` passes of an nbytes buffer, in GB/s.");
}

// the thread pool
void bind_threads(py::module_& m) {
  py::class_<edge::ThreadPool, std::shared_ptr<edge::ThreadPool>>(m, "ThreadPool")
      .def(py::init<int>(), py::arg("num_threads") = 0,
           "A pool of num_threads threads (0: one per physical core); the caller is thread 0.")
      .def_property_readonly("num_threads", &edge::ThreadPool::num_threads);
}

// FullyConnected
void bind_fully_connected(py::module_& m) {
  py::class_<PyFullyConnected>(m, "FullyConnected")
      .def(py::init([](std::shared_ptr<edge::PackedWeights> w, float input_scale,
                       int32_t input_zero_point, float output_scale, int32_t output_zero_point,
                       const std::string& activation, const std::optional<Array<int32_t>>& bias,
                       const std::string& output_type, const std::string& rounding,
                       const std::optional<std::string>& isa,
                       const std::optional<std::pair<int32_t, int32_t>>& clamp,
                       const std::optional<std::pair<Array<int32_t>, Array<int32_t>>>& mults) {
             LayerArgs a = layer_args(input_scale, input_zero_point, output_scale,
                                      output_zero_point, activation, bias, output_type, rounding,
                                      isa, clamp, mults, w->n());
             auto p = std::make_unique<PyFullyConnected>();
             p->weights = w;
             p->plan = std::make_unique<edge::FullyConnected>(w->view(), a.options);
             return p;
           }),
           py::arg("weights"), py::arg("input_scale"), py::arg("input_zero_point"),
           py::arg("output_scale") = 1.0f, py::arg("output_zero_point") = 0,
           py::arg("activation") = "none", py::arg("bias") = py::none(),
           py::arg("output_type") = "int8", py::arg("rounding") = "upward",
           py::arg("isa") = py::none(), py::arg("clamp") = py::none(),
           py::arg("multipliers") = py::none())
      .def("run", [](PyFullyConnected& self, const Array<int8_t>& x,
                     std::shared_ptr<edge::ThreadPool> pool) {
        const int32_t k = self.plan->k();
        if (x.ndim() < 1 || x.shape(x.ndim() - 1) != k) {
          throw std::invalid_argument("input must have last dimension k = " + std::to_string(k));
        }
        const int32_t m = static_cast<int32_t>(x.size() / k);
        std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
        shape.back() = self.plan->n();
        return run_plan(self.plan->output_type(), shape, [&](void* dst) {
          dispatch_run_fc(*self.plan, x.data(), m, dst, pool.get());
        });
      }, py::arg("x"), py::arg("pool") = nullptr)
      .def("benchmark", [](PyFullyConnected& self, const Array<int8_t>& x, int iterations,
                           std::shared_ptr<edge::ThreadPool> pool) {
        const int32_t k = self.plan->k();
        if (x.size() % k != 0) throw std::invalid_argument("input size is not a multiple of k");
        const int32_t m = static_cast<int32_t>(x.size() / k);
        std::vector<int32_t> out(static_cast<std::size_t>(m) * self.plan->n());
        self.plan->reserve(m, pool ? pool->num_threads() : 1);
        return time_runs(iterations, [&] {
          dispatch_run_fc(*self.plan, x.data(), m, out.data(), pool.get());
        });
      }, py::arg("x"), py::arg("iterations"), py::arg("pool") = nullptr,
         "Seconds per run of `iterations` back-to-back runs timed in C++ (GIL released).")
      .def_property_readonly("n", [](const PyFullyConnected& s) { return s.plan->n(); })
      .def_property_readonly("k", [](const PyFullyConnected& s) { return s.plan->k(); })
      .def_property_readonly("isa", [](const PyFullyConnected& s) {
        return std::string(edge::isa_name(s.plan->isa()));
      })
      .def_property_readonly("output_type", [](const PyFullyConnected& s) {
        return std::string(output_type_name(s.plan->output_type()));
      })
      .def("kernel_name", [](const PyFullyConnected& s, int32_t m) {
        return std::string(s.plan->kernel_name(m));
      }, py::arg("m") = 1);
}

// Conv2D
void bind_conv2d(py::module_& m) {
  py::class_<PyConv2D>(m, "Conv2D")
      .def(py::init([](std::shared_ptr<edge::PackedWeights> w, const std::vector<int32_t>& input_shape,
                       const std::pair<int32_t, int32_t>& kernel,
                       const std::pair<int32_t, int32_t>& strides,
                       const std::pair<int32_t, int32_t>& dilations, const py::object& padding,
                       float input_scale, int32_t input_zero_point, float output_scale,
                       int32_t output_zero_point, const std::string& activation,
                       const std::optional<Array<int32_t>>& bias, const std::string& output_type,
                       const std::string& rounding, const std::optional<std::string>& isa,
                       const std::optional<std::pair<int32_t, int32_t>>& clamp,
                       const std::optional<std::pair<Array<int32_t>, Array<int32_t>>>& mults) {
             LayerArgs a = layer_args(input_scale, input_zero_point, output_scale,
                                      output_zero_point, activation, bias, output_type, rounding,
                                      isa, clamp, mults, w->n());
             edge::Conv2DOptions o;
             static_cast<edge::LayerOptions&>(o) = a.options;
             o.geometry = geometry_arg(input_shape, kernel, strides, dilations, padding);
             auto p = std::make_unique<PyConv2D>();
             p->weights = w;
             p->plan = std::make_unique<edge::Conv2D>(w->view(), o);
             p->batch = o.geometry.batch;
             p->in_h = o.geometry.input_height;
             p->in_w = o.geometry.input_width;
             p->in_c = o.geometry.input_channels;
             return p;
           }),
           py::arg("weights"), py::arg("input_shape"), py::arg("kernel"),
           py::arg("strides") = std::make_pair(1, 1), py::arg("dilations") = std::make_pair(1, 1),
           py::arg("padding") = "valid", py::arg("input_scale"), py::arg("input_zero_point"),
           py::arg("output_scale") = 1.0f, py::arg("output_zero_point") = 0,
           py::arg("activation") = "none", py::arg("bias") = py::none(),
           py::arg("output_type") = "int8", py::arg("rounding") = "upward",
           py::arg("isa") = py::none(), py::arg("clamp") = py::none(),
           py::arg("multipliers") = py::none())
      .def("run", [](PyConv2D& self, const Array<int8_t>& x, std::shared_ptr<edge::ThreadPool> pool) {
        const std::vector<py::ssize_t> want = {self.batch, self.in_h, self.in_w, self.in_c};
        if (x.ndim() != 4 || !std::equal(want.begin(), want.end(), x.shape())) {
          throw std::invalid_argument("Conv2D input must have shape (" + std::to_string(self.batch) +
                                      ", " + std::to_string(self.in_h) + ", " +
                                      std::to_string(self.in_w) + ", " + std::to_string(self.in_c) + ")");
        }
        std::vector<py::ssize_t> shape = {self.batch, self.plan->output_height(),
                                          self.plan->output_width(), self.plan->output_channels()};
        return run_plan(self.plan->output_type(), shape, [&](void* dst) {
          dispatch_run(*self.plan, self.plan->output_type(), x.data(), dst, pool.get());
        });
      }, py::arg("x"), py::arg("pool") = nullptr)
      .def("benchmark", [](PyConv2D& self, const Array<int8_t>& x, int iterations,
                           std::shared_ptr<edge::ThreadPool> pool) {
        std::vector<int32_t> out(static_cast<std::size_t>(self.batch) * self.plan->output_height() *
                                 self.plan->output_width() * self.plan->output_channels());
        self.plan->reserve(pool ? pool->num_threads() : 1);
        return time_runs(iterations, [&] {
          dispatch_run(*self.plan, self.plan->output_type(), x.data(), out.data(), pool.get());
        });
      }, py::arg("x"), py::arg("iterations"), py::arg("pool") = nullptr)
      .def_property_readonly("output_shape", [](const PyConv2D& s) {
        return py::make_tuple(s.batch, s.plan->output_height(), s.plan->output_width(),
                              s.plan->output_channels());
      })
      .def_property_readonly("isa", [](const PyConv2D& s) { return std::string(edge::isa_name(s.plan->isa())); })
      .def_property_readonly("kernel_name", [](const PyConv2D& s) { return std::string(s.plan->kernel_name()); });
}

// DepthwiseConv2D
void bind_depthwise(py::module_& m) {
  py::class_<PyDepthwise>(m, "DepthwiseConv2D")
      .def(py::init([](const Array<int8_t>& filter, const Array<float>& scales,
                       const std::optional<Array<int32_t>>& zero_points,
                       const std::vector<int32_t>& input_shape, int32_t depth_multiplier,
                       const std::pair<int32_t, int32_t>& strides,
                       const std::pair<int32_t, int32_t>& dilations, const py::object& padding,
                       float input_scale, int32_t input_zero_point, float output_scale,
                       int32_t output_zero_point, const std::string& activation,
                       const std::optional<Array<int32_t>>& bias, const std::string& output_type,
                       const std::string& rounding, const std::optional<std::string>& isa,
                       const std::optional<std::pair<int32_t, int32_t>>& clamp,
                       const std::optional<std::pair<Array<int32_t>, Array<int32_t>>>& mults,
                       const std::optional<std::string>& tail_rounding) {
             // filter: [KH, KW, C*m] or TFLite's [1, KH, KW, C*m].
             const py::ssize_t nd = filter.ndim();
             if (!(nd == 3 || (nd == 4 && filter.shape(0) == 1))) {
               throw std::invalid_argument("depthwise filter must be [kh, kw, c*m] or [1, kh, kw, c*m]");
             }
             const int32_t kh = static_cast<int32_t>(filter.shape(nd - 3));
             const int32_t kw = static_cast<int32_t>(filter.shape(nd - 2));
             const int32_t cout = static_cast<int32_t>(filter.shape(nd - 1));
             LayerArgs a = layer_args(input_scale, input_zero_point, output_scale,
                                      output_zero_point, activation, bias, output_type, rounding,
                                      isa, clamp, mults, cout);
             edge::DepthwiseConv2DOptions o;
             static_cast<edge::LayerOptions&>(o) = a.options;
             o.geometry = geometry_arg(input_shape, {kh, kw}, strides, dilations, padding);
             o.depth_multiplier = depth_multiplier;
             if (tail_rounding) o.tail_rounding = rounding_arg(*tail_rounding);
             if (o.geometry.input_channels * depth_multiplier != cout) {
               throw std::invalid_argument("depthwise filter has " + std::to_string(cout) +
                                           " channels, input channels x depth multiplier = " +
                                           std::to_string(o.geometry.input_channels * depth_multiplier));
             }
             if (zero_points && zero_points->size() != cout) {
               throw std::invalid_argument("zero_points must have one entry per output channel");
             }
             auto p = std::make_unique<PyDepthwise>();
             p->plan = std::make_unique<edge::DepthwiseConv2D>(
                 filter.data(), scales.data(), static_cast<int32_t>(scales.size()),
                 zero_points ? zero_points->data() : nullptr, o);
             p->batch = o.geometry.batch;
             p->in_h = o.geometry.input_height;
             p->in_w = o.geometry.input_width;
             p->in_c = o.geometry.input_channels;
             return p;
           }),
           py::arg("filter"), py::arg("scales"), py::arg("zero_points") = py::none(),
           py::arg("input_shape"), py::arg("depth_multiplier") = 1,
           py::arg("strides") = std::make_pair(1, 1), py::arg("dilations") = std::make_pair(1, 1),
           py::arg("padding") = "valid", py::arg("input_scale"), py::arg("input_zero_point"),
           py::arg("output_scale") = 1.0f, py::arg("output_zero_point") = 0,
           py::arg("activation") = "none", py::arg("bias") = py::none(),
           py::arg("output_type") = "int8", py::arg("rounding") = "upward",
           py::arg("isa") = py::none(), py::arg("clamp") = py::none(),
           py::arg("multipliers") = py::none(), py::arg("tail_rounding") = py::none())
      .def("run", [](PyDepthwise& self, const Array<int8_t>& x, std::shared_ptr<edge::ThreadPool> pool) {
        const std::vector<py::ssize_t> want = {self.batch, self.in_h, self.in_w, self.in_c};
        if (x.ndim() != 4 || !std::equal(want.begin(), want.end(), x.shape())) {
          throw std::invalid_argument("DepthwiseConv2D input must have shape (" +
                                      std::to_string(self.batch) + ", " + std::to_string(self.in_h) +
                                      ", " + std::to_string(self.in_w) + ", " +
                                      std::to_string(self.in_c) + ")");
        }
        std::vector<py::ssize_t> shape = {self.batch, self.plan->output_height(),
                                          self.plan->output_width(), self.plan->output_channels()};
        return run_plan(self.plan->output_type(), shape, [&](void* dst) {
          dispatch_run(*self.plan, self.plan->output_type(), x.data(), dst, pool.get());
        });
      }, py::arg("x"), py::arg("pool") = nullptr)
      .def("benchmark", [](PyDepthwise& self, const Array<int8_t>& x, int iterations,
                           std::shared_ptr<edge::ThreadPool> pool) {
        std::vector<int32_t> out(static_cast<std::size_t>(self.batch) * self.plan->output_height() *
                                 self.plan->output_width() * self.plan->output_channels());
        self.plan->reserve(pool ? pool->num_threads() : 1);
        return time_runs(iterations, [&] {
          dispatch_run(*self.plan, self.plan->output_type(), x.data(), out.data(), pool.get());
        });
      }, py::arg("x"), py::arg("iterations"), py::arg("pool") = nullptr)
      .def_property_readonly("output_shape", [](const PyDepthwise& s) {
        return py::make_tuple(s.batch, s.plan->output_height(), s.plan->output_width(),
                              s.plan->output_channels());
      })
      .def_property_readonly("isa", [](const PyDepthwise& s) { return std::string(edge::isa_name(s.plan->isa())); })
      .def_property_readonly("kernel_name", [](const PyDepthwise& s) { return std::string(s.plan->kernel_name()); });
}

}  // namespace

void bind_kernels(py::module_& m) {
  py::register_exception<edge::IsaUnavailableError>(m, "IsaUnavailableError", PyExc_RuntimeError);
  bind_isa(m);
  bind_requantisation(m);
  bind_packing(m);
  bind_threads(m);
  bind_fully_connected(m);
  bind_conv2d(m);
  bind_depthwise(m);
}
