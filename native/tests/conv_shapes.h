// The square, SAME-padded convolution layers that the layer benchmark (bench/conv_layers.cc)
// and the thread tests (tests/test_thread_pool.cc) describe as (height, width, channels,
// kernel size, stride): their geometry and output size in one place.
#pragma once

#include <cstddef>
#include <cstdint>

#include "edge/kernels/conv2d.h"

namespace edge_test {

// A k x k window, the same stride on both axes, SAME padding, batch 1.
inline edge::ConvGeometry square_same_geometry(int32_t h, int32_t w, int32_t cin, int32_t k,
                                               int32_t stride) {
  edge::ConvGeometry g;
  g.input_height = h;
  g.input_width = w;
  g.input_channels = cin;
  g.kernel_height = g.kernel_width = k;
  g.stride_height = g.stride_width = stride;
  g.padding = edge::Padding::kSame;
  return g;
}

// The output height (or width) of SAME padding: ceil(size / stride).
inline int32_t same_out(int32_t size, int32_t stride) { return (size + stride - 1) / stride; }

}  // namespace edge_test
