# The edgesdk TFLite external delegate (issue 4): a shared library that LiteRT loads with
# load_delegate(path) and that runs FC / conv / depthwise nodes with int8, int4 and 2-bit weights
# (and our custom ops) on the native kernels. Sources: src/delegate; our declarations of the
# TFLite C ABI: include/edge/delegate/tflite_abi.h (no TFLite headers or libraries are needed).
add_library(edge_tflite_delegate SHARED
  src/delegate/delegate.cc
  src/delegate/node_kernels.cc
  src/delegate/cost_rule.cc
)
target_include_directories(edge_tflite_delegate PRIVATE include src/delegate)
target_link_libraries(edge_tflite_delegate PRIVATE edge_kernels)
set_target_properties(edge_tflite_delegate PROPERTIES
  OUTPUT_NAME edgesdk_delegate
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON)
# Export only the plugin entry points: the kernels linked in stay private to the library, and
# every symbol must resolve inside it (LiteRT exports nothing we could link against).
target_link_options(edge_tflite_delegate PRIVATE -Wl,--exclude-libs,ALL -Wl,--no-undefined)
if(EDGE_STATIC)
  # Devices: no dependency on the board's libstdc++ version.
  target_link_options(edge_tflite_delegate PRIVATE -static-libstdc++ -static-libgcc)
endif()
if(EDGE_BUILD_PYTHON)
  install(TARGETS edge_tflite_delegate LIBRARY DESTINATION sdk)
endif()

# The delegate against a fake LiteRT context, in the native test binaries (x86, ASan, Arm under
# qemu): the sources are compiled into the test executable.
if(TARGET edge_native_tests)
  target_sources(edge_native_tests PRIVATE
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/test_delegate.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/src/delegate/delegate.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/src/delegate/node_kernels.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/src/delegate/cost_rule.cc)
  target_include_directories(edge_native_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/delegate)
endif()
