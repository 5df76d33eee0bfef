// Writes the seed corpus of fuzz_edge_model: small valid .edge models of every operator family
// the runtime runs (built with the tests' Builder), each checked to load, prepare and run.
//   make_seeds OUT_DIR
// `make fuzz-native` adds the Python writer's seeds (tests/fuzz/seed_models.py) when present.
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "edge/runtime/error.h"
#include "edge/runtime/interpreter.h"
#include "edge/runtime/model.h"
#include "edge_builder.h"

namespace {

namespace fmt = edge::fmt;
using edge_test::Builder;
using edge_test::Quant;

std::vector<uint8_t> pattern(std::size_t n, int mul) {
  std::vector<uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * mul + 3);
  return v;
}

Quant per_channel(int n, int axis, float base) {
  Quant q;
  for (int i = 0; i < n; ++i) q.scale.push_back(base * (1.0f + 0.1f * static_cast<float>(i)));
  q.zero_point = {0};
  q.axis = axis;
  return q;
}

std::vector<uint8_t> bias_bytes(int n) {
  std::vector<uint8_t> b(4 * n);
  for (int i = 0; i < n; ++i) {
    const int32_t v = 100 * (i - n / 2);
    std::memcpy(b.data() + 4 * i, &v, 4);
  }
  return b;
}

// x -> ADD(const) -> MAX_POOL -> RESHAPE -> SOFTMAX (the runtime test's small model).
std::vector<uint8_t> small_model() {
  Builder b;
  const std::vector<uint8_t> c = {10, 250};
  const int x = b.tensor("x", {1, 4, 4, 2}, fmt::DType::INT8, 0.05f, -3);
  const int k = b.tensor("c", {2}, fmt::DType::INT8, 0.02f, 1, &c);
  const int sum = b.tensor("sum", {1, 4, 4, 2}, fmt::DType::INT8, 0.07f, 2);
  const int pooled = b.tensor("pooled", {1, 2, 2, 2}, fmt::DType::INT8, 0.07f, 2);
  const int flat = b.tensor("flat", {1, 8}, fmt::DType::INT8, 0.07f, 2);
  const int probs = b.tensor("probs", {1, 8}, fmt::DType::INT8, 1.0f / 256, -128);
  auto add = fmt::CreateElementwiseOptions(b.fbb(), fmt::Activation::RELU);
  b.op(fmt::OpType::ADD, {x, k}, {sum}, fmt::OpOptions::ElementwiseOptions, add.Union());
  fmt::Padding pad(0, 0, 0, 0);
  auto pool = fmt::CreatePool2DOptions(b.fbb(), &pad, 2, 2, 2, 2);
  b.op(fmt::OpType::MAX_POOL_2D, {sum}, {pooled}, fmt::OpOptions::Pool2DOptions, pool.Union());
  b.op(fmt::OpType::RESHAPE, {pooled}, {flat});
  auto sm = fmt::CreateSoftmaxOptions(b.fbb(), 1.0f);
  b.op(fmt::OpType::SOFTMAX, {flat}, {probs}, fmt::OpOptions::SoftmaxOptions, sm.Union());
  return b.finish({x}, {probs});
}

// x -> CONV_2D 3x3 (per-channel INT8, bias, RELU) -> AVERAGE_POOL -> PAD -> MUL(x2) -> HARD_SWISH
std::vector<uint8_t> conv_model(fmt::DType wtype, int bits) {
  Builder b;
  const int x = b.tensor("x", {1, 6, 6, 4}, fmt::DType::INT8, 0.05f, 1);
  const std::size_t wcount = 3 * 3 * 3 * 4;
  const int w = b.tensor_on("w", {3, 3, 3, 4}, wtype,
                            b.add_buffer(pattern((wcount * bits + 7) / 8, 29)),
                            per_channel(3, 0, 0.01f));
  Quant bq = per_channel(3, 0, 0.0005f);
  const int bias = b.tensor_on("b", {3}, fmt::DType::INT32, b.add_buffer(bias_bytes(3)), bq);
  const int c = b.tensor("conv", {1, 4, 4, 3}, fmt::DType::INT8, 0.1f, -2);
  fmt::Padding zero(0, 0, 0, 0);
  auto conv = fmt::CreateConv2DOptions(b.fbb(), &zero, 1, 1, 1, 1, fmt::Activation::RELU);
  b.op(fmt::OpType::CONV_2D, {x, w, bias}, {c}, fmt::OpOptions::Conv2DOptions, conv.Union());
  const int p = b.tensor("pool", {1, 2, 2, 3}, fmt::DType::INT8, 0.1f, -2);
  auto pool = fmt::CreatePool2DOptions(b.fbb(), &zero, 2, 2, 2, 2);
  b.op(fmt::OpType::AVERAGE_POOL_2D, {c}, {p}, fmt::OpOptions::Pool2DOptions, pool.Union());
  const int padded = b.tensor("padded", {1, 3, 3, 3}, fmt::DType::INT8, 0.1f, -2);
  std::vector<int32_t> pads = {0, 0, 1, 0, 0, 1, 0, 0};
  auto po = fmt::CreatePadOptionsDirect(b.fbb(), &pads);
  b.op(fmt::OpType::PAD, {p}, {padded}, fmt::OpOptions::PadOptions, po.Union());
  const int m = b.tensor("mul", {1, 3, 3, 3}, fmt::DType::INT8, 0.2f, 0);
  b.op(fmt::OpType::MUL, {padded, padded}, {m});
  const int hs = b.tensor("hswish", {1, 3, 3, 3}, fmt::DType::INT8, 0.1f, -5);
  b.op(fmt::OpType::HARD_SWISH, {m}, {hs});
  return b.finish({x}, {hs});
}

// x -> DEPTHWISE_CONV_2D 3x3 (dm 2, INT8 or TERNARY BASE3) -> MEAN -> FULLY_CONNECTED -> LOGISTIC
std::vector<uint8_t> depthwise_model(bool base3) {
  Builder b;
  const int x = b.tensor("x", {1, 5, 5, 3}, fmt::DType::INT8, 0.05f, 0);
  int w;
  if (base3) {
    std::vector<uint8_t> data((3 * 3 * 6 + 4) / 5);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 53) % 243);
    w = b.tensor_on("dw", {1, 3, 3, 6}, fmt::DType::TERNARY, b.add_buffer(data),
                    per_channel(6, 3, 0.02f), fmt::Storage::BASE3);
  } else {
    w = b.tensor_on("dw", {1, 3, 3, 6}, fmt::DType::INT8, b.add_buffer(pattern(54, 17)),
                    per_channel(6, 3, 0.02f));
  }
  const int d = b.tensor("dwout", {1, 3, 3, 6}, fmt::DType::INT8, 0.1f, 3);
  fmt::Padding zero(0, 0, 0, 0);
  auto dw = fmt::CreateDepthwiseConv2DOptions(b.fbb(), &zero, 1, 1, 1, 1, 2,
                                              fmt::Activation::RELU6);
  b.op(fmt::OpType::DEPTHWISE_CONV_2D, {x, w}, {d}, fmt::OpOptions::DepthwiseConv2DOptions,
       dw.Union());
  const std::vector<uint8_t> axes = {1, 0, 0, 0, 2, 0, 0, 0};
  const int ax = b.tensor_on("axes", {2}, fmt::DType::INT32, b.add_buffer(axes), Quant());
  const int mean = b.tensor("mean", {1, 6}, fmt::DType::INT8, 0.1f, 3);
  auto ro = fmt::CreateReducerOptions(b.fbb(), 0, false);
  b.op(fmt::OpType::MEAN, {d, ax}, {mean}, fmt::OpOptions::ReducerOptions, ro.Union());
  const int fw = b.tensor_on("fc_w", {4, 6}, fmt::DType::INT4, b.add_buffer(pattern(12, 13)),
                             per_channel(4, 0, 0.05f));
  const int fc = b.tensor("fc", {1, 4}, fmt::DType::INT8, 0.2f, 0);
  auto fo = fmt::CreateFullyConnectedOptions(b.fbb(), fmt::Activation::NONE, false);
  b.op(fmt::OpType::FULLY_CONNECTED, {mean, fw}, {fc}, fmt::OpOptions::FullyConnectedOptions,
       fo.Union());
  const int lg = b.tensor("sigmoid", {1, 4}, fmt::DType::INT8, 1.0f / 256, -128);
  b.op(fmt::OpType::LOGISTIC, {fc}, {lg});
  return b.finish({x}, {lg});
}

// float x -> QUANTIZE -> CONCATENATION(with itself) -> TRANSPOSE -> FC (INT2, per-group) ->
// DEQUANTIZE
std::vector<uint8_t> float_model() {
  Builder b;
  const int x = b.tensor("x", {2, 8}, fmt::DType::FLOAT32, 0, 0);
  const int q = b.tensor("q", {2, 8}, fmt::DType::INT8, 0.05f, 2);
  b.op(fmt::OpType::QUANTIZE, {x}, {q});
  const int cat = b.tensor("cat", {4, 8}, fmt::DType::INT8, 0.05f, 2);
  auto co = fmt::CreateConcatenationOptions(b.fbb(), 0);
  b.op(fmt::OpType::CONCATENATION, {q, q}, {cat}, fmt::OpOptions::ConcatenationOptions,
       co.Union());
  const int tr = b.tensor("tr", {8, 4}, fmt::DType::INT8, 0.05f, 2);
  std::vector<int32_t> perm = {1, 0};
  auto to = fmt::CreateTransposeOptionsDirect(b.fbb(), &perm);
  b.op(fmt::OpType::TRANSPOSE, {cat}, {tr}, fmt::OpOptions::TransposeOptions, to.Union());
  Quant gq;
  gq.scale.assign(3 * 1, 0.03f);
  gq.zero_point = {0};
  gq.block_size = 16;
  const int fw = b.tensor_on("fc_w", {3, 4}, fmt::DType::INT2, b.add_buffer(pattern(3, 7)),
                             per_channel(3, 0, 0.03f));
  const int fc = b.tensor("fc", {8, 3}, fmt::DType::INT8, 0.1f, -1);
  b.op(fmt::OpType::FULLY_CONNECTED, {tr, fw}, {fc});
  const int y = b.tensor("y", {8, 3}, fmt::DType::FLOAT32, 0, 0);
  b.op(fmt::OpType::DEQUANTIZE, {fc}, {y});
  return b.finish({x}, {y});
}

// x -> FC with per-group scales (INT8, block 16 over K = 32).
std::vector<uint8_t> grouped_fc_model() {
  Builder b;
  const int x = b.tensor("x", {1, 32}, fmt::DType::INT8, 0.05f, 0);
  Quant gq;
  gq.scale.assign(4 * 2, 0.02f);
  gq.zero_point = {0};
  gq.block_size = 16;
  const int fw = b.tensor_on("fc_w", {4, 32}, fmt::DType::INT8, b.add_buffer(pattern(128, 11)),
                             gq);
  const int y = b.tensor("y", {1, 4}, fmt::DType::INT8, 0.3f, 0);
  b.op(fmt::OpType::FULLY_CONNECTED, {x, fw}, {y});
  return b.finish({x}, {y});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 2;
  }
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds = {
      {"small", small_model()},
      {"conv_int8", conv_model(fmt::DType::INT8, 8)},
      {"conv_int4", conv_model(fmt::DType::INT4, 4)},
      {"depthwise_int8", depthwise_model(false)},
      {"depthwise_base3", depthwise_model(true)},
      {"float_io", float_model()},
      {"grouped_fc", grouped_fc_model()},
  };
  int failed = 0;
  for (const auto& [name, bytes] : seeds) {
    const std::string path = std::string(argv[1]) + "/native_" + name + ".edge";
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    try {
      auto model = edge::runtime::Model::from_bytes(bytes.data(), bytes.size(), path);
      edge::runtime::Interpreter interp(model);
      interp.run();
      std::printf("seed %s: %zu bytes, %zu operators, runs\n", path.c_str(), bytes.size(),
                  model->operators().size());
    } catch (const edge::runtime::Error& e) {
      std::printf("seed %s: %zu bytes, does not run: %s\n", path.c_str(), bytes.size(), e.what());
      ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}
