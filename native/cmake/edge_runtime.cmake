# The .edge runtime (edge_runtime), the on-device runner edge-run, their C++ tests and the
# Python bindings of the runtime (issue 5). Included from native/CMakeLists.txt after the core
# targets exist.
#
# FlatBuffers: the runtime is header-only on FlatBuffers, so cross builds take the headers of the
# build machine (Debian's libflatbuffers-dev). They are staged into the build tree under their
# own folder, so that a cross compiler never sees the rest of /usr/include. The generated code
# (native/schema/generated/edge_generated.h) asserts at compile time that those headers are the
# FlatBuffers version flatc generated it with; here we also compare them with flatc itself.

set(EDGE_FLATBUFFERS_INCLUDE_DIR "" CACHE PATH "Folder holding flatbuffers/flatbuffers.h")
if(NOT EDGE_FLATBUFFERS_INCLUDE_DIR)
  find_path(EDGE_FLATBUFFERS_FOUND_DIR flatbuffers/flatbuffers.h
            HINTS ENV FLATBUFFERS_INCLUDE
            PATHS /usr/include /usr/local/include /opt/homebrew/include
            NO_CMAKE_FIND_ROOT_PATH)
  set(EDGE_FLATBUFFERS_INCLUDE_DIR "${EDGE_FLATBUFFERS_FOUND_DIR}")
endif()
if(NOT EDGE_FLATBUFFERS_INCLUDE_DIR OR NOT EXISTS "${EDGE_FLATBUFFERS_INCLUDE_DIR}/flatbuffers/base.h")
  message(FATAL_ERROR "edgesdk: FlatBuffers C++ headers not found. Install them "
                      "(Debian: apt-get install libflatbuffers-dev flatbuffers-compiler; "
                      "`make` does this) or pass -DEDGE_FLATBUFFERS_INCLUDE_DIR=...")
endif()
file(STRINGS "${EDGE_FLATBUFFERS_INCLUDE_DIR}/flatbuffers/base.h" _fb_version_lines
     REGEX "#define FLATBUFFERS_VERSION_(MAJOR|MINOR|REVISION) ")
foreach(_line IN LISTS _fb_version_lines)
  string(REGEX MATCH "(MAJOR|MINOR|REVISION) +([0-9]+)" _m "${_line}")
  set(_fb_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
endforeach()
set(EDGE_FLATBUFFERS_VERSION "${_fb_MAJOR}.${_fb_MINOR}.${_fb_REVISION}")
find_program(EDGE_FLATC flatc NO_CMAKE_FIND_ROOT_PATH)
if(EDGE_FLATC)
  execute_process(COMMAND "${EDGE_FLATC}" --version OUTPUT_VARIABLE _flatc_out
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" _flatc_version "${_flatc_out}")
  if(NOT _flatc_version STREQUAL EDGE_FLATBUFFERS_VERSION)
    message(FATAL_ERROR "edgesdk: flatc is ${_flatc_version} but the FlatBuffers headers in "
                        "${EDGE_FLATBUFFERS_INCLUDE_DIR} are ${EDGE_FLATBUFFERS_VERSION}; "
                        "install matching versions")
  endif()
endif()
message(STATUS "edgesdk: FlatBuffers ${EDGE_FLATBUFFERS_VERSION} headers in ${EDGE_FLATBUFFERS_INCLUDE_DIR}")
set(_fb_stage "${CMAKE_BINARY_DIR}/flatbuffers-include")
file(MAKE_DIRECTORY "${_fb_stage}")
if(NOT EXISTS "${_fb_stage}/flatbuffers")
  file(CREATE_LINK "${EDGE_FLATBUFFERS_INCLUDE_DIR}/flatbuffers" "${_fb_stage}/flatbuffers"
       SYMBOLIC)
endif()

add_library(edge_runtime STATIC
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/model.cc
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/limits.cc
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/arena_plan.cc
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/interpreter.cc
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/npy.cc
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/ops_common.cc
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/ops_elementwise.cc
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/ops_pool.cc
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/ops_misc.cc
  ${CMAKE_CURRENT_LIST_DIR}/../src/runtime/ops_conv.cc
)
target_include_directories(edge_runtime PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../include)
target_include_directories(edge_runtime SYSTEM PRIVATE "${_fb_stage}")
target_include_directories(edge_runtime PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../schema/generated)
target_link_libraries(edge_runtime PUBLIC edge_core edge_kernels)
# Float expressions must round exactly as written on every target (the runtime reproduces
# LiteRT's float steps bit for bit): no fused multiply-add contraction, no fast-math.
target_compile_options(edge_runtime PRIVATE -ffp-contract=off -fno-fast-math)

# edge-run: static wherever the toolchain allows it (not with the sanitizers, which need the
# dynamic runtime), so one file runs on any Linux/Android device of its architecture.
add_executable(edge-run ${CMAKE_CURRENT_LIST_DIR}/../tools/edge_run.cc)
target_link_libraries(edge-run PRIVATE edge_runtime)
if(NOT EDGE_SANITIZE AND NOT EDGE_FUZZ AND NOT APPLE)
  target_link_options(edge-run PRIVATE -static)
endif()

if(EDGE_BUILD_TESTS AND NOT EDGE_BUILD_PYTHON)
  target_sources(edge_native_tests PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/../tests/test_runtime.cc
    ${CMAKE_CURRENT_LIST_DIR}/../tests/test_npy.cc
    ${CMAKE_CURRENT_LIST_DIR}/../tests/test_hardening.cc
  )
  target_link_libraries(edge_native_tests PRIVATE edge_runtime)
  target_include_directories(edge_native_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../src/runtime
                             ${CMAKE_CURRENT_LIST_DIR}/../schema/generated)
  target_include_directories(edge_native_tests SYSTEM PRIVATE "${_fb_stage}")
endif()

if(EDGE_BUILD_PYTHON)
  target_sources(_native PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../python/runtime_bindings.cc)
  target_link_libraries(_native PRIVATE edge_runtime)
  # A wheel carries edge-run as sdk/bin/<abi>/edge-run (sdk.base.artifacts): every ABI's from
  # cmake/edge_device_abis.cmake when EDGE_BUNDLE_DEVICE_ABIS is on, else this host's.
  if(EDGE_BUNDLE_DEVICE_ABIS)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    install(TARGETS edge-run RUNTIME DESTINATION sdk/bin/x86_64)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    install(TARGETS edge-run RUNTIME DESTINATION sdk/bin/arm64-v8a)
  endif()
endif()
