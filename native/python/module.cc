// pybind11 bindings: sdk._native. Thin by design; the logic lives in edge_core.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "edge/cpu_features.h"

namespace py = pybind11;

namespace edge::python {
void bind_runtime(py::module_& m);  // runtime_bindings.cc: the .edge runtime
}
// Low-bit kernels (issue 3): native/python/kernels_bindings.cc
void bind_kernels(py::module_& m);

PYBIND11_MODULE(_native, m) {
  m.doc() = "edgesdk native core: CPU feature detection and low-bit kernels";

  m.def(
      "cpu_features",
      [] {
        const edge::CpuFeatures& f = edge::cpu_features();
        py::dict d;
        d["arch"] = f.arch;
        d["sse4.1"] = f.sse41;
        d["avx2"] = f.avx2;
        d["fma"] = f.fma;
        d["avx512f"] = f.avx512f;
        d["avx512bw"] = f.avx512bw;
        d["avx512vl"] = f.avx512vl;
        d["avx512vnni"] = f.avx512vnni;
        d["avxvnni"] = f.avxvnni;
        d["amx_int8"] = f.amx_int8;
        d["neon"] = f.neon;
        d["dotprod"] = f.dotprod;
        d["i8mm"] = f.i8mm;
        return d;
      },
      "Features of the CPU this process runs on, as a dict of name -> bool (plus 'arch').");
  m.def("physical_core_count", &edge::physical_core_count,
        "Physical cores (SMT siblings counted once).");
  m.def("usable_core_count", &edge::usable_core_count,
        "Physical cores among the CPUs the calling thread may run on (taskset, cpuset): the "
        "runtime's default thread count.");
  edge::python::bind_runtime(m);

  bind_kernels(m);
}
