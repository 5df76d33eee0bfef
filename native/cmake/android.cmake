# Cross-compile for Android with the NDK: a thin wrapper around the NDK's own toolchain file,
# with edgesdk's defaults (API level 24, static C++ runtime). Used by `make android`:
#   cmake -S native -B build/android-arm64-v8a -DANDROID_ABI=arm64-v8a \
#         -DCMAKE_TOOLCHAIN_FILE=native/cmake/android.cmake -DEDGE_STATIC=ON
# The NDK is found through $ANDROID_NDK (or $ANDROID_NDK_HOME, $ANDROID_NDK_ROOT).
foreach(_var ANDROID_NDK ANDROID_NDK_HOME ANDROID_NDK_ROOT)
  if(NOT EDGE_ANDROID_NDK AND DEFINED ENV{${_var}})
    set(EDGE_ANDROID_NDK "$ENV{${_var}}")
  endif()
endforeach()
if(NOT EDGE_ANDROID_NDK OR NOT EXISTS "${EDGE_ANDROID_NDK}/build/cmake/android.toolchain.cmake")
  message(FATAL_ERROR "edgesdk: set ANDROID_NDK to an Android NDK folder (one that has "
                      "build/cmake/android.toolchain.cmake)")
endif()
if(NOT ANDROID_ABI)
  set(ANDROID_ABI arm64-v8a)
endif()
if(NOT ANDROID_PLATFORM)
  set(ANDROID_PLATFORM android-24)
endif()
set(ANDROID_STL c++_static)
include("${EDGE_ANDROID_NDK}/build/cmake/android.toolchain.cmake")
