# The low-bit kernels (issue 3): edge_kernels, their C++ tests and Python bindings. Included from
# native/CMakeLists.txt after the core targets exist.
#
# edge_kernels: packing, plans (FullyConnected, Conv2D, DepthwiseConv2D), thread pool, ISA
# dispatch. Public headers: include/edge/{thread_pool.h,aligned_buffer.h,kernels/*.h,packing/*.h}.
# Static and position-independent, so the .edge runtime, the TFLite delegate (a shared library)
# and the Python extension all link it. Each SIMD back end is its own translation unit compiled
# with that ISA's flags only; run-time dispatch (src/kernels/isa.cc) picks one.
set(_k ${CMAKE_CURRENT_LIST_DIR}/..)
add_library(edge_kernels STATIC
  ${_k}/src/thread_pool.cc
  ${_k}/src/packing/packing.cc
  ${_k}/src/kernels/isa.cc
  ${_k}/src/kernels/requant.cc
  ${_k}/src/kernels/gemm_plan.cc
  ${_k}/src/kernels/fully_connected.cc
  ${_k}/src/kernels/conv2d.cc
  ${_k}/src/kernels/layer_builder.cc
  ${_k}/src/kernels/depthwise_conv2d.cc
  ${_k}/src/kernels/scalar.cc
  ${_k}/src/kernels/memory_bandwidth.cc
  ${_k}/src/kernels/quantize.cc
  ${_k}/src/kernels/quantize_scalar.cc
  ${_k}/src/kernels/elementwise.cc
)
target_include_directories(edge_kernels PUBLIC ${_k}/include PRIVATE ${_k}/src)
target_link_libraries(edge_kernels PUBLIC edge_core)
# Float epilogues (per-group scales) must round identically everywhere: no FMA contraction.
target_compile_options(edge_kernels PRIVATE -ffp-contract=off)

set(EDGE_KERNEL_ISAS "scalar")
function(edge_kernel_isa name define flags)
  set(sources ${ARGN})
  target_sources(edge_kernels PRIVATE ${sources})
  set_source_files_properties(${sources} PROPERTIES COMPILE_OPTIONS "${flags}")
  target_compile_definitions(edge_kernels PRIVATE ${define})
  set(EDGE_KERNEL_ISAS "${EDGE_KERNEL_ISAS};${name}" PARENT_SCOPE)
endfunction()
include(CheckCXXCompilerFlag)
if(EDGE_ARCH STREQUAL "x86")
  edge_kernel_isa(avx2 EDGE_HAVE_AVX2 "-mavx2;-mfma" ${_k}/src/kernels/x86/avx2.cc
    ${_k}/src/kernels/x86/quantize_avx2.cc ${_k}/src/kernels/x86/elementwise_avx2.cc)
  edge_kernel_isa(avx512vnni EDGE_HAVE_AVX512VNNI
    "-mavx2;-mfma;-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni" ${_k}/src/kernels/x86/avx512vnni.cc
    ${_k}/src/kernels/x86/quantize_avx512.cc ${_k}/src/kernels/x86/elementwise_avx512.cc)
  # AVX-VNNI (VEX vpdpbusd on ymm): GCC 11+, clang 12+. No AVX-512 flag on this file.
  check_cxx_compiler_flag(-mavxvnni EDGE_CXX_HAS_MAVXVNNI)
  if(EDGE_CXX_HAS_MAVXVNNI)
    edge_kernel_isa(avxvnni EDGE_HAVE_AVXVNNI "-mavx2;-mfma;-mavxvnni"
      ${_k}/src/kernels/x86/avxvnni.cc)
  endif()
  # AMX-INT8 tiles (GCC 11+, clang 12+), over the AVX-512 VNNI kernels.
  check_cxx_compiler_flag("-mamx-tile -mamx-int8" EDGE_CXX_HAS_MAMX)
  if(EDGE_CXX_HAS_MAMX)
    edge_kernel_isa(avx512amx EDGE_HAVE_AVX512AMX
      "-mavx2;-mfma;-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni;-mamx-tile;-mamx-int8"
      ${_k}/src/kernels/x86/avx512amx.cc)
  endif()
elseif(EDGE_ARCH STREQUAL "aarch64")
  edge_kernel_isa(neon EDGE_HAVE_NEON "" ${_k}/src/kernels/arm/neon.cc
    ${_k}/src/kernels/arm/quantize_neon.cc ${_k}/src/kernels/arm/elementwise_neon.cc)
  edge_kernel_isa(dotprod EDGE_HAVE_DOTPROD "-march=armv8.2-a+dotprod" ${_k}/src/kernels/arm/dotprod.cc)
  # Armv8.6 SMMLA (GCC 10+, clang 11+).
  check_cxx_compiler_flag(-march=armv8.2-a+dotprod+i8mm EDGE_CXX_HAS_I8MM)
  if(EDGE_CXX_HAS_I8MM)
    edge_kernel_isa(i8mm EDGE_HAVE_I8MM "-march=armv8.2-a+dotprod+i8mm"
      ${_k}/src/kernels/arm/i8mm.cc)
  endif()
elseif(EDGE_ARCH STREQUAL "armv7")
  # The armv7 toolchain file already builds everything with -mfpu=neon.
  edge_kernel_isa(neon EDGE_HAVE_NEON "" ${_k}/src/kernels/arm/neon.cc
    ${_k}/src/kernels/arm/quantize_neon.cc ${_k}/src/kernels/arm/elementwise_neon.cc)
endif()
message(STATUS "edgesdk: kernel ISAs ${EDGE_KERNEL_ISAS}")

if(EDGE_BUILD_TESTS AND NOT EDGE_BUILD_PYTHON)
  target_sources(edge_native_tests PRIVATE ${_k}/tests/kernel_reference.cc ${_k}/tests/test_kernels.cc
    ${_k}/tests/test_quantize.cc ${_k}/tests/test_elementwise.cc ${_k}/tests/test_isa_tiers.cc
    ${_k}/tests/avxvnni_twin_install.cc)
  target_link_libraries(edge_native_tests PRIVATE edge_kernels)
  # The AVX-VNNI kernels' EVEX twin (tests/avxvnni_evex_twin.cc), for hosts with AVX-512 VNNI and
  # no AVX-VNNI (test_isa_tiers.cc installs it in the VEX table's place there).
  if("avxvnni" IN_LIST EDGE_KERNEL_ISAS)
    set(_twin ${_k}/tests/avxvnni_evex_twin.cc)
    target_sources(edge_native_tests PRIVATE ${_twin})
    set_source_files_properties(${_twin} PROPERTIES COMPILE_OPTIONS
      "-mavx2;-mfma;-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni")
    target_compile_definitions(edge_native_tests PRIVATE EDGE_TEST_AVXVNNI_EVEX_TWIN)
  endif()
  # The kernel tests check micro-kernels directly through the private tables.
  target_include_directories(edge_native_tests PRIVATE ${_k}/src)
endif()

# The measured algorithm alternatives (LUT, bit-serial) of docs/design-notes.md: x86 hosts only.
if(EDGE_BUILD_TESTS AND NOT EDGE_BUILD_PYTHON AND EDGE_ARCH STREQUAL "x86" AND NOT EDGE_SANITIZE)
  add_executable(edge_kernel_alternatives ${_k}/bench/alternatives.cc)
  target_link_libraries(edge_kernel_alternatives PRIVATE edge_kernels)
  target_include_directories(edge_kernel_alternatives PRIVATE ${_k}/src)
  add_executable(edge_conv_bench ${_k}/bench/conv_layers.cc ${_k}/tests/avxvnni_twin_install.cc)
  target_link_libraries(edge_conv_bench PRIVATE edge_kernels)
  # --isa avxvnni on a host without AVX-VNNI times the kernels' EVEX twin (tests/avxvnni_twin.h)
  target_include_directories(edge_conv_bench PRIVATE ${_k}/src ${_k}/tests)
  if("avxvnni" IN_LIST EDGE_KERNEL_ISAS)
    target_sources(edge_conv_bench PRIVATE ${_k}/tests/avxvnni_evex_twin.cc)
    target_compile_definitions(edge_conv_bench PRIVATE EDGE_TEST_AVXVNNI_EVEX_TWIN)
  endif()
endif()

if(EDGE_BUILD_PYTHON)
  target_sources(_native PRIVATE ${_k}/python/kernels_bindings.cc)
  target_link_libraries(_native PRIVATE edge_kernels)
endif()
