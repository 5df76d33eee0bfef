// Times the library's convolution plans on the conv layers of benchmarks/kernels.py (ResNet-18
// 3x3, MobileNet 1x1 and depthwise), the 3-channel stems and the small-K 1x1 layers of
// benchmarks/edge_models.py, every weight type, one ISA and thread count: the quick loop for
// kernel work (benchmarks/kernels.py is the one that compares with XNNPACK).
// Build: part of the host CMake build (target edge_conv_bench, x86 only; not a test).
// Run:   build/host/edge_conv_bench [--isa avx2] [--threads 2] [--only mobilenet] [--ms 300]
//        (--isa avxvnni on a CPU with AVX-512 VNNI and no AVX-VNNI times the EVEX twin of the
//        AVX-VNNI kernels, tests/avxvnni_twin.h: the only way to run that source here)
//        prints one line per layer and weight type: median ms per call over batches, GMAC/s.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "edge/kernels/conv2d.h"
#include "edge/kernels/depthwise_conv2d.h"
#include "edge/kernels/isa.h"
#include "edge/packing/packed_weights.h"
#include "edge/thread_pool.h"
#include "avxvnni_twin.h"
#include "conv_shapes.h"

namespace {

struct Layer {
  const char* name;
  int h, w, cin, cout, k, stride;
  bool depthwise;
};

const Layer kLayers[] = {
    {"resnet_stem_7x7s2_160x160x3_64", 160, 160, 3, 64, 7, 2, false},
    {"mobilenet_stem_3x3s2_160x160x3_32", 160, 160, 3, 32, 3, 2, false},
    {"resnet18_conv2_3x3_56x56x64", 56, 56, 64, 64, 3, 1, false},
    {"resnet18_conv3_3x3_28x28x128", 28, 28, 128, 128, 3, 1, false},
    {"resnet18_conv4_3x3_14x14x256", 14, 14, 256, 256, 3, 1, false},
    {"resnet18_conv5_3x3_7x7x512", 7, 7, 512, 512, 3, 1, false},
    {"resnet18_down_3x3s2_56x56x64_128", 56, 56, 64, 128, 3, 2, false},
    {"mobilenet_pw_112x112x32_64", 112, 112, 32, 64, 1, 1, false},
    {"mobilenet_pw_56x56x24_144", 56, 56, 24, 144, 1, 1, false},
    {"mobilenet_pw_28x28x256_256", 28, 28, 256, 256, 1, 1, false},
    {"mobilenet_pw_7x7x1024_1024", 7, 7, 1024, 1024, 1, 1, false},
    {"mobilenet_dw_3x3_112x112x32", 112, 112, 32, 32, 3, 1, true},
    {"mobilenet_dw_3x3s2_112x112x96", 112, 112, 96, 96, 3, 2, true},
    {"mobilenet_dw_3x3_56x56x144", 56, 56, 144, 144, 3, 1, true},
    {"mobilenet_dw_3x3_14x14x512", 14, 14, 512, 512, 3, 1, true},
    // the small-K 1x1 layers of benchmarks/edge_models.py's MobileNet-like model (160x160 input)
    {"mnl_pw_80x80x32_16", 80, 80, 32, 16, 1, 1, false},
    {"mnl_pw_80x80x16_96", 80, 80, 16, 96, 1, 1, false},
    {"mnl_pw_40x40x96_24", 40, 40, 96, 24, 1, 1, false},
    {"mnl_pw_40x40x24_144", 40, 40, 24, 144, 1, 1, false},
    {"mnl_pw_40x40x144_24", 40, 40, 144, 24, 1, 1, false},
    {"mnl_pw_10x10x64_384", 10, 10, 64, 384, 1, 1, false},
    {"mnl_pw_10x10x384_64", 10, 10, 384, 64, 1, 1, false},
    {"mnl_pw_5x5x160_960", 5, 5, 160, 960, 1, 1, false},
    // and its depthwise layers (int8 at every level; the stride-2 ones SAME here, where the
    // model pads explicitly and runs VALID: the same kernel calls)
    {"mnl_dw_3x3_80x80x32", 80, 80, 32, 32, 3, 1, true},
    {"mnl_dw_3x3s2_80x80x96", 80, 80, 96, 96, 3, 2, true},
    {"mnl_dw_3x3_40x40x144", 40, 40, 144, 144, 3, 1, true},
    {"mnl_dw_3x3_20x20x192", 20, 20, 192, 192, 3, 1, true},
    {"mnl_dw_3x3_10x10x384", 10, 10, 384, 384, 3, 1, true},
    {"mnl_dw_3x3_10x10x576", 10, 10, 576, 576, 3, 1, true},
    {"mnl_dw_3x3_5x5x960", 5, 5, 960, 960, 3, 1, true},
};

template <typename F>
double median_ms(const F& f, double budget_ms) {
  f();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  const double one = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const int per_batch = std::max(1, static_cast<int>(budget_ms / 15.0 / std::max(one, 1e-4)));
  std::vector<double> samples;
  for (int round = 0; round < 15; ++round) {
    const auto a = std::chrono::steady_clock::now();
    for (int i = 0; i < per_batch; ++i) f();
    samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count() /
                      per_batch);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string only, isa_name, types = "int8,int4,ternary,int2";
  int threads = 1;
  double budget = 300.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--isa") isa_name = argv[i + 1];
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--only") only = argv[i + 1];
    else if (a == "--ms") budget = std::atof(argv[i + 1]);
    else if (a == "--types") types = argv[i + 1];
  }
  const edge::Isa isa = isa_name.empty() ? edge::resolve_isa() : edge::parse_isa(isa_name);
  if (isa == edge::Isa::kAvxVnni &&
      edge_test::install_avxvnni_evex_twin() == edge_test::AvxVnniForm::kEvexTwin) {
    std::printf("# avxvnni: no AVX-VNNI on this CPU: timing the kernels' EVEX twin (the same "
                "source, AVX-512 VL encoding of ymm vpdpbusd)\n");
  }
  edge::ThreadPool pool(threads);
  std::mt19937 rng(1);
  for (const Layer& L : kLayers) {
    if (!only.empty() && std::string(L.name).find(only) == std::string::npos) continue;
    const edge::ConvGeometry g = edge_test::square_same_geometry(L.h, L.w, L.cin, L.k, L.stride);
    std::vector<int8_t> x(static_cast<std::size_t>(L.h) * L.w * L.cin);
    for (auto& v : x) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
    const int oh = edge_test::same_out(L.h, L.stride), ow = edge_test::same_out(L.w, L.stride);
    std::vector<int8_t> y(static_cast<std::size_t>(oh) * ow * L.cout);
    std::vector<int32_t> bias(static_cast<std::size_t>(L.cout));
    for (auto& b : bias) b = static_cast<int32_t>(rng() % 2000) - 1000;
    std::vector<float> scales(static_cast<std::size_t>(L.cout), 0.01f);
    if (L.depthwise) {
      edge::DepthwiseConv2DOptions o;
      o.geometry = g;
      o.input = {0.05f, 3};
      o.output = {0.2f, -4};
      o.bias = bias.data();
      o.isa = isa;
      o.tail_rounding = edge::Rounding::kAwayFromZero;
      std::vector<int8_t> f(static_cast<std::size_t>(L.k) * L.k * L.cin);
      for (auto& v : f) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
      edge::DepthwiseConv2D dw(f.data(), scales.data(), L.cout, nullptr, o);
      dw.reserve(threads);
      const double ms = median_ms([&] { dw.run(x.data(), y.data(), &pool); }, budget);
      const double macs = static_cast<double>(oh) * ow * L.cout * L.k * L.k;
      std::printf("%-34s %-8s %-40s %8.4f ms %7.1f GMAC/s\n", L.name, "int8", dw.kernel_name(),
                  ms, macs / ms / 1e6);
      continue;
    }
    const int32_t k = L.k * L.k * L.cin;
    for (const char* tn : {"int8", "int4", "ternary", "int2"}) {
      if (types.find(tn) == std::string::npos) continue;
      const edge::WeightType type = edge::parse_weight_type(tn);
      std::vector<int8_t> w(static_cast<std::size_t>(L.cout) * k);
      const int lo = edge::min_value(type), hi = edge::max_value(type);
      for (auto& v : w) v = static_cast<int8_t>(lo + static_cast<int>(rng() % (hi - lo + 1)));
      edge::PackedWeights pw = edge::pack_weights(type, w.data(), L.cout, k, scales.data(), L.cout);
      edge::Conv2DOptions o;
      o.geometry = g;
      o.input = {0.05f, 3};
      o.output = {0.2f, -4};
      o.bias = bias.data();
      o.isa = isa;
      edge::Conv2D conv(pw.view(), o);
      conv.reserve(threads);
      const double ms = median_ms([&] { conv.run(x.data(), y.data(), &pool); }, budget);
      const double macs = static_cast<double>(oh) * ow * L.cout * k;
      std::printf("%-34s %-8s %-40s %8.4f ms %7.1f GMAC/s\n", L.name, tn, conv.kernel_name(), ms,
                  macs / ms / 1e6);
    }
  }
  return 0;
}
