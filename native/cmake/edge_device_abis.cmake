# The device-side artefacts a wheel ships (issue 16): edge-run and the TFLite delegate for every
# ABI edgesdk supports, static (edge-run fully, the delegate with libstdc++/libgcc inside), so one
# file runs on Android and on any Linux board of that architecture. Installed as
#   sdk/bin/<abi>/edge-run, sdk/bin/<abi>/libedgesdk_delegate.so, sdk/bin/manifest.json
# and found at run time by sdk.base.artifacts (the one lookup).
#
# Each ABI is a separate configure of this same source tree (ExternalProject), with the
# toolchain files of native/cmake for the cross ones, in this build's own folder (a wheel build's
# folder is a temporary one: nothing is left in the source tree). An ABI whose cross compiler is
# missing is left out with a warning, and the manifest says which compiler (Debian package) it
# lacked; EDGE_REQUIRE_DEVICE_ABIS=ON (what `make wheel` passes) makes that an error instead.
#
# Included from native/CMakeLists.txt when EDGE_BUILD_PYTHON and EDGE_BUNDLE_DEVICE_ABIS are on.

include(ExternalProject)

option(EDGE_REQUIRE_DEVICE_ABIS "Fail when a device ABI cannot be built (no cross compiler)" OFF)

# abi | CMAKE_SYSTEM_PROCESSOR pattern of a host that builds it natively | toolchain file |
# cross C++ compiler | Debian package of that compiler
set(_edge_abis arm64-v8a armeabi-v7a x86_64)
set(_edge_abi_arm64-v8a_native "^(aarch64|arm64|ARM64)$")
set(_edge_abi_arm64-v8a_toolchain "${CMAKE_CURRENT_LIST_DIR}/aarch64-linux-gnu.cmake")
set(_edge_abi_arm64-v8a_cxx aarch64-linux-gnu-g++)
set(_edge_abi_arm64-v8a_package g++-aarch64-linux-gnu)
set(_edge_abi_armeabi-v7a_native "^(armv7|armv7l|armv7-a)$")
set(_edge_abi_armeabi-v7a_toolchain "${CMAKE_CURRENT_LIST_DIR}/arm-linux-gnueabihf.cmake")
set(_edge_abi_armeabi-v7a_cxx arm-linux-gnueabihf-g++)
set(_edge_abi_armeabi-v7a_package g++-arm-linux-gnueabihf)
set(_edge_abi_x86_64_native "^(x86_64|AMD64|amd64)$")
set(_edge_abi_x86_64_toolchain "${CMAKE_CURRENT_LIST_DIR}/x86_64-linux-gnu.cmake")
set(_edge_abi_x86_64_cxx x86_64-linux-gnu-g++)
set(_edge_abi_x86_64_package g++-x86-64-linux-gnu)

set(_edge_manifest_entries "")
set(_edge_missing "")
foreach(_abi IN LISTS _edge_abis)
  set(_dir "${CMAKE_BINARY_DIR}/device-${_abi}")
  set(_args
    -DCMAKE_BUILD_TYPE=Release
    -DEDGE_STATIC=ON
    -DEDGE_BUILD_TESTS=OFF
    -DEDGE_BUILD_PYTHON=OFF
    "-DEDGE_FLATBUFFERS_INCLUDE_DIR=${EDGE_FLATBUFFERS_INCLUDE_DIR}")
  if(CMAKE_MAKE_PROGRAM)
    list(APPEND _args "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
  endif()
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "${_edge_abi_${_abi}_native}")
    # the wheel's own architecture: this build's compilers (its toolchain file when the wheel
    # itself is cross-built, e.g. an aarch64 wheel on an x86-64 machine)
    set(_how "native")
    if(CMAKE_TOOLCHAIN_FILE)
      set(_how "cross")
      list(APPEND _args "-DCMAKE_TOOLCHAIN_FILE=${CMAKE_TOOLCHAIN_FILE}")
    else()
      list(APPEND _args "-DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}"
                        "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}")
    endif()
  else()
    set(_how "cross")
    find_program(_edge_cxx_${_abi} ${_edge_abi_${_abi}_cxx})
    if(NOT _edge_cxx_${_abi})
      set(_why "no ${_edge_abi_${_abi}_cxx} (Debian: apt-get install ${_edge_abi_${_abi}_package})")
      list(APPEND _edge_missing "${_abi}: ${_why}")
      string(APPEND _edge_manifest_entries
             "    \"${_abi}\": {\"built\": false, \"reason\": \"${_why}\"},\n")
      continue()
    endif()
    list(APPEND _args "-DCMAKE_TOOLCHAIN_FILE=${_edge_abi_${_abi}_toolchain}")
  endif()
  ExternalProject_Add(edge_device_${_abi}
    SOURCE_DIR "${CMAKE_SOURCE_DIR}"
    BINARY_DIR "${_dir}"
    PREFIX "${CMAKE_BINARY_DIR}/device-${_abi}-ep"
    CMAKE_ARGS ${_args}
    BUILD_COMMAND ${CMAKE_COMMAND} --build "${_dir}" --target edge-run edge_tflite_delegate
    BUILD_BYPRODUCTS "${_dir}/edge-run" "${_dir}/libedgesdk_delegate.so"
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON)
  # (an ExternalProject target is part of ALL: built beside the extension, in parallel)
  install(PROGRAMS "${_dir}/edge-run" DESTINATION sdk/bin/${_abi})
  install(FILES "${_dir}/libedgesdk_delegate.so" DESTINATION sdk/bin/${_abi})
  string(APPEND _edge_manifest_entries
         "    \"${_abi}\": {\"built\": true, \"how\": \"${_how}\", "
         "\"files\": [\"edge-run\", \"libedgesdk_delegate.so\"]},\n")
endforeach()

if(_edge_missing)
  string(REPLACE ";" "\n  " _lines "${_edge_missing}")
  if(EDGE_REQUIRE_DEVICE_ABIS)
    message(FATAL_ERROR "edgesdk: device ABIs cannot be built:\n  ${_lines}")
  endif()
  message(WARNING "edgesdk: this wheel leaves out device ABIs (deploying to them will say so):"
                  "\n  ${_lines}")
endif()

string(REGEX REPLACE ",\n$" "\n" _edge_manifest_entries "${_edge_manifest_entries}")
file(WRITE "${CMAKE_BINARY_DIR}/device-manifest.json"
     "{\n  \"format\": 1,\n  \"host_processor\": \"${CMAKE_SYSTEM_PROCESSOR}\",\n"
     "  \"abis\": {\n${_edge_manifest_entries}  }\n}\n")
install(FILES "${CMAKE_BINARY_DIR}/device-manifest.json" DESTINATION sdk/bin
        RENAME manifest.json)
