# The libFuzzer harness of the .edge runtime (EDGE_FUZZ=ON; clang only) and the program that
# writes its seed corpus. Built by `make fuzz-native` in build/fuzz; every target of the tree is
# compiled with -fsanitize=fuzzer-no-link,address,undefined there (native/CMakeLists.txt), so the
# loader, the operators and the kernels are all instrumented.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "edgesdk: EDGE_FUZZ needs clang (libFuzzer); configure with "
                      "-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
endif()
add_executable(fuzz_edge_model ${CMAKE_CURRENT_LIST_DIR}/../fuzz/fuzz_edge_model.cc)
target_link_libraries(fuzz_edge_model PRIVATE edge_runtime)
target_link_options(fuzz_edge_model PRIVATE -fsanitize=fuzzer)

add_executable(edge_fuzz_seeds ${CMAKE_CURRENT_LIST_DIR}/../fuzz/make_seeds.cc)
target_link_libraries(edge_fuzz_seeds PRIVATE edge_runtime)
target_include_directories(edge_fuzz_seeds PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../tests
                           ${CMAKE_CURRENT_LIST_DIR}/../schema/generated)
target_include_directories(edge_fuzz_seeds SYSTEM PRIVATE "${CMAKE_BINARY_DIR}/flatbuffers-include")
