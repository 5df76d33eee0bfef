// The TFLite delegate against a fake LiteRT context: the classic-delegate protocol (Prepare ->
// ReplaceNodeSubsetsWithDelegateKernels -> kernel init / prepare / invoke, ResizeTensor) driven
// the way LiteRT drives it, on every ISA this binary runs (x86, ASan, Arm under qemu). Outputs
// must equal the kernel plans called directly. (Against real LiteRT: tests/test_delegate*.py.)
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "cost_rule.h"
#include "custom_options.h"
#include "edge/cpu_features.h"
#include "edge/delegate/delegate.h"
#include "edge/kernels/conv2d.h"
#include "edge/kernels/depthwise_conv2d.h"
#include "edge/kernels/fully_connected.h"
#include "edge/kernels/quantize.h"
#include "edge/packing/packed_weights.h"
#include "test_main.h"
#include "thread_choice.h"

namespace {

using namespace edge::tflite_abi;  // NOLINT

// An int array laid out as TfLiteIntArray {size, data[size]}.
struct IntArray {
  std::vector<int> storage;
  explicit IntArray(std::vector<int> values) {
    storage.push_back(static_cast<int>(values.size()));
    storage.insert(storage.end(), values.begin(), values.end());
  }
  TfLiteIntArray* get() { return reinterpret_cast<TfLiteIntArray*>(storage.data()); }
};

struct FakeTensor {
  std::unique_ptr<IntArray> dims;
  std::vector<uint8_t> data;
  std::vector<float> scales;
  std::vector<int> zero_points_storage;
  std::unique_ptr<IntArray> zero_points;
  std::vector<unsigned char> scale_array;  // TfLiteFloatArray bytes
  TfLiteAffineQuantization affine{};
  TfLiteIntArray* resized = nullptr;       // owned (malloc) once ResizeTensor was called
};

struct FakeNode {
  TfLiteNode node{};
  TfLiteRegistration reg{};
  std::unique_ptr<IntArray> inputs, outputs;
  std::vector<unsigned char> options;
  TfLiteFullyConnectedParams fc{};
  TfLiteDepthwiseConvParams dw{};
  TfLiteConvParams conv{};
};

struct DelegateNode {
  TfLiteNode node{};
  TfLiteRegistration reg{};
  std::vector<unsigned char> params;  // TfLiteDelegateParams + one-element node array
};

struct Fake {
  TfLiteContext context{};
  std::vector<TfLiteTensor> tensors;
  std::vector<FakeTensor> extra;
  std::vector<std::unique_ptr<FakeNode>> nodes;
  std::vector<std::unique_ptr<DelegateNode>> delegated;
  std::vector<int> plan;
  std::unique_ptr<IntArray> plan_array;
  std::string errors;
};

Fake* g_fake = nullptr;

TfLiteStatus get_plan(TfLiteContext*, TfLiteIntArray** out) {
  g_fake->plan_array = std::make_unique<IntArray>(g_fake->plan);
  *out = g_fake->plan_array->get();
  return kTfLiteOk;
}

TfLiteStatus get_node(TfLiteContext*, int index, TfLiteNode** node, TfLiteRegistration** reg) {
  if (index < 0 || index >= static_cast<int>(g_fake->nodes.size())) return kTfLiteError;
  *node = &g_fake->nodes[static_cast<std::size_t>(index)]->node;
  *reg = &g_fake->nodes[static_cast<std::size_t>(index)]->reg;
  return kTfLiteOk;
}

TfLiteStatus replace(TfLiteContext* context, TfLiteRegistration reg, const TfLiteIntArray* nodes,
                     TfLiteDelegate* delegate) {
  for (int i = 0; i < nodes->size; ++i) {
    auto d = std::make_unique<DelegateNode>();
    d->reg = reg;
    d->params.resize(sizeof(TfLiteDelegateParams) + 2 * sizeof(int));
    auto* p = reinterpret_cast<TfLiteDelegateParams*>(d->params.data());
    auto* arr = reinterpret_cast<TfLiteIntArray*>(d->params.data() + sizeof(TfLiteDelegateParams));
    arr->size = 1;
    arr->data[0] = nodes->data[i];
    p->delegate = delegate;
    p->nodes_to_replace = arr;
    d->node.user_data = reg.init(context, reinterpret_cast<const char*>(p), 0);
    g_fake->delegated.push_back(std::move(d));
  }
  return kTfLiteOk;
}

TfLiteStatus resize(TfLiteContext*, TfLiteTensor* tensor, TfLiteIntArray* dims) {
  for (std::size_t i = 0; i < g_fake->tensors.size(); ++i) {
    if (&g_fake->tensors[i] == tensor) {
      std::free(g_fake->extra[i].resized);  // LiteRT frees the old array the same way
      g_fake->extra[i].resized = dims;
      tensor->dims = dims;
      std::size_t n = 1;
      for (int d = 0; d < dims->size; ++d) n *= static_cast<std::size_t>(dims->data[d]);
      g_fake->extra[i].data.resize(n);
      tensor->data = g_fake->extra[i].data.data();
      tensor->bytes = n;
      return kTfLiteOk;
    }
  }
  return kTfLiteError;
}

void report_error(TfLiteContext*, const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  g_fake->errors += buf;
  g_fake->errors += "\n";
}

void add_tensor(Fake& f) {
  f.tensors.emplace_back();
  f.extra.emplace_back();
}

// Fills tensor `i` (after all tensors exist, so pointers into `extra` stay valid).
void set_tensor(Fake& f, int i, TfLiteType type, std::vector<int> dims, std::vector<uint8_t> data,
                std::vector<float> scales, bool constant, int zero_point = 0) {
  FakeTensor& e = f.extra[static_cast<std::size_t>(i)];
  TfLiteTensor& t = f.tensors[static_cast<std::size_t>(i)];
  e.dims = std::make_unique<IntArray>(dims);
  e.data = std::move(data);
  e.scales = std::move(scales);
  t.type = type;
  t.dims = e.dims->get();
  t.data = e.data.data();
  t.bytes = e.data.size();
  t.allocation_type = constant ? kTfLiteMmapRo : kTfLiteArenaRw;
  t.name = "t";
  if (!e.scales.empty()) {
    t.params = {e.scales[0], zero_point};
    e.scale_array.resize(sizeof(int) + sizeof(float) * e.scales.size());
    const int n = static_cast<int>(e.scales.size());
    std::memcpy(e.scale_array.data(), &n, sizeof(int));
    std::memcpy(e.scale_array.data() + sizeof(int), e.scales.data(), sizeof(float) * e.scales.size());
    e.zero_points_storage.assign(e.scales.size(), zero_point);
    e.zero_points = std::make_unique<IntArray>(e.zero_points_storage);
    e.affine.scale = reinterpret_cast<TfLiteFloatArray*>(e.scale_array.data());
    e.affine.zero_point = e.zero_points->get();
    e.affine.quantized_dimension = 0;
    t.quantization = {kTfLiteAffineQuantization, &e.affine};
  }
}

// n weight codes lo, lo + 1, ..., lo + span - 1, at random.
std::vector<int8_t> random_codes(std::mt19937& rng, std::size_t n, int lo, int span) {
  std::vector<int8_t> q(n);
  for (auto& v : q) v = static_cast<int8_t>(lo + static_cast<int>(rng() % span));
  return q;
}

std::vector<uint8_t> random_int8(std::mt19937& rng, std::size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(rng() & 0xFF);
  return v;
}

// TFLite packing of q values (2 or 4 bits each, first value in the low bits).
std::vector<uint8_t> pack_tflite(const std::vector<int8_t>& q, int bits) {
  const int per = 8 / bits;
  std::vector<uint8_t> out((q.size() + per - 1) / per, 0);
  for (std::size_t i = 0; i < q.size(); ++i) {
    const unsigned code = static_cast<unsigned>(q[i]) & ((1u << bits) - 1u);
    out[i / per] |= static_cast<uint8_t>(code << (bits * (i % per)));
  }
  return out;
}

std::vector<unsigned char> conv_options(int stride, int activation, int dm, int kind) {
  std::vector<unsigned char> o(40, 0);
  std::memcpy(o.data(), "EDGE", 4);
  o[4] = 1;
  o[6] = 40;
  const int32_t fields[8] = {stride, stride, 1, 1, 0, activation, dm, kind};
  std::memcpy(o.data() + 8, fields, sizeof fields);
  return o;
}

// Completes a fake graph whose tensors and nodes are built: each node's TfLiteNode points at its
// index arrays, and the context has LiteRT's callbacks, the execution plan and the thread hint.
void wire_context(Fake& f, std::vector<int> plan, int threads) {
  for (auto& n : f.nodes) {
    n->node.inputs = n->inputs->get();
    n->node.outputs = n->outputs->get();
  }
  f.plan = std::move(plan);
  f.context.tensors_size = f.tensors.size();
  f.context.tensors = f.tensors.data();
  f.context.GetExecutionPlan = get_plan;
  f.context.GetNodeAndRegistration = get_node;
  f.context.ReplaceNodeSubsetsWithDelegateKernels = replace;
  f.context.ResizeTensor = resize;
  f.context.ReportError = report_error;
  f.context.recommended_num_threads = threads;
}

}  // namespace

EDGE_TEST(delegate_options_parse_and_reject) {
  const char* keys[] = {"precisions", "ops", "num_threads", "rounding", "isa"};
  const char* values[] = {"int4, int2", "fully_connected", "2", "single", "scalar"};
  const edge::delegate::Options o = edge::delegate::parse_options(keys, values, 5);
  EDGE_CHECK(!o.int8 && o.int4 && o.int2);
  EDGE_CHECK(o.fully_connected && !o.conv_2d && !o.depthwise_conv_2d);
  EDGE_CHECK(o.num_threads == 2 && o.rounding == edge::Rounding::kSingle);
  EDGE_CHECK(o.isa.has_value() && *o.isa == edge::Isa::kScalar);
  static std::string reported;
  char* bad_keys[] = {const_cast<char*>("colour")};
  char* bad_values[] = {const_cast<char*>("blue")};
  TfLiteDelegate* d = tflite_plugin_create_delegate(
      bad_keys, bad_values, 1, [](const char* m) { reported = m; });
  EDGE_CHECK(d == nullptr && reported.find("unknown option 'colour'") != std::string::npos);
  edge::delegate::ConvCustomOptions c;
  const std::vector<unsigned char> raw = conv_options(2, 3, 1, 1);
  EDGE_CHECK(edge::delegate::parse_custom_options(raw.data(), 40, &c).empty());
  EDGE_CHECK(c.stride_h == 2 && c.activation == 3 && c.weight_kind == 1 && !c.padding_valid);
  EDGE_CHECK(!edge::delegate::parse_custom_options(raw.data(), 20, &c).empty());
  std::vector<unsigned char> bad = raw;
  bad[0] = 'X';
  EDGE_CHECK(!edge::delegate::parse_custom_options(bad.data(), 40, &c).empty());
}

EDGE_TEST(delegate_runs_fc_custom_conv_and_depthwise_like_the_plans) {
  Fake f;
  g_fake = &f;
  std::mt19937 rng(7);
  // tensors: 0 fc in [3,40], 1 fc w INT4 [20,40], 2 fc bias [20], 3 fc out [2,20] (wrong batch:
  // the delegate resizes it), 4 conv in [1,5,5,8], 5 conv w INT2 [6,3,3,8], 6 conv out [1,5,5,6],
  // 7 dw w INT2 [1,3,3,6], 8 dw out [1,3,3,6]
  for (int i = 0; i < 9; ++i) add_tensor(f);
  std::vector<int8_t> fc_q(20 * 40), conv_q(6 * 72), dw_q(54);
  for (auto& q : fc_q) q = static_cast<int8_t>(static_cast<int>(rng() % 16) - 8);
  for (auto& q : conv_q) q = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);  // ternary
  for (auto& q : dw_q) q = static_cast<int8_t>(static_cast<int>(rng() % 4) - 2);    // 2-bit
  std::vector<float> fc_s(20), conv_s(6), dw_s(6);
  for (auto* v : {&fc_s, &conv_s, &dw_s}) {
    for (auto& s : *v) s = 0.01f + 0.001f * static_cast<float>(rng() % 50);
  }
  std::vector<int32_t> bias(20);
  for (auto& b : bias) b = static_cast<int32_t>(rng() % 2001) - 1000;
  std::vector<uint8_t> bias_bytes(80);
  std::memcpy(bias_bytes.data(), bias.data(), 80);
  set_tensor(f, 0, kTfLiteInt8, {3, 40}, random_int8(rng, 120), {0.05f}, false, 3);
  set_tensor(f, 1, kTfLiteInt4, {20, 40}, pack_tflite(fc_q, 4), fc_s, true);
  set_tensor(f, 2, kTfLiteInt32, {20}, bias_bytes, {}, true);
  set_tensor(f, 3, kTfLiteInt8, {2, 20}, std::vector<uint8_t>(40), {0.2f}, false, -5);
  set_tensor(f, 4, kTfLiteInt8, {1, 5, 5, 8}, random_int8(rng, 200), {0.03f}, false, -2);
  set_tensor(f, 5, kTfLiteInt2, {6, 3, 3, 8}, pack_tflite(conv_q, 2), conv_s, true);
  set_tensor(f, 6, kTfLiteInt8, {1, 5, 5, 6}, std::vector<uint8_t>(150), {0.1f}, false, 4);
  set_tensor(f, 7, kTfLiteInt2, {1, 3, 3, 6}, pack_tflite(dw_q, 2), dw_s, true);
  set_tensor(f, 8, kTfLiteInt8, {1, 3, 3, 6}, std::vector<uint8_t>(54), {0.08f}, false, 0);
  f.extra[7].affine.quantized_dimension = 3;
  // nodes: 0 FC, 1 EDGE_CONV_INT2 (SAME, stride 1, RELU6), 2 DEPTHWISE (VALID, stride 1, RELU)
  for (int i = 0; i < 3; ++i) f.nodes.push_back(std::make_unique<FakeNode>());
  FakeNode& fc = *f.nodes[0];
  fc.inputs = std::make_unique<IntArray>(std::vector<int>{0, 1, 2});
  fc.outputs = std::make_unique<IntArray>(std::vector<int>{3});
  fc.fc.activation = kTfLiteActRelu;
  fc.node.builtin_data = &fc.fc;
  fc.reg.builtin_code = kBuiltinFullyConnected;
  FakeNode& conv = *f.nodes[1];
  conv.inputs = std::make_unique<IntArray>(std::vector<int>{4, 5, -1});
  conv.outputs = std::make_unique<IntArray>(std::vector<int>{6});
  conv.options = conv_options(1, 3, 1, 1);
  conv.node.custom_initial_data = conv.options.data();
  conv.node.custom_initial_data_size = 40;
  conv.reg.builtin_code = kBuiltinCustom;
  conv.reg.custom_name = "EDGE_CONV_INT2";
  FakeNode& dw = *f.nodes[2];
  dw.inputs = std::make_unique<IntArray>(std::vector<int>{6, 7});
  dw.outputs = std::make_unique<IntArray>(std::vector<int>{8});
  dw.dw = {kTfLitePaddingValid, 1, 1, 1, kTfLiteActRelu, 1, 1};
  dw.node.builtin_data = &dw.dw;
  dw.reg.builtin_code = kBuiltinDepthwiseConv2D;
  wire_context(f, {0, 1, 2}, 2);

  edge::delegate::Options options;
  options.claim = edge::delegate::ClaimPolicy::kAll;  // bit-exactness: every node (cost rule below)
  TfLiteDelegate* delegate = edge::delegate::create_delegate(options);
  EDGE_CHECK(delegate->flags == kTfLiteDelegateFlagsAllowDynamicTensors);
  EDGE_CHECK(delegate->Prepare(&f.context, delegate) == kTfLiteOk);
  EDGE_CHECK(f.delegated.size() == 3);
  for (auto& d : f.delegated) {
    EDGE_CHECK(d->node.user_data != nullptr);
    EDGE_CHECK(d->reg.prepare(&f.context, &d->node) == kTfLiteOk);
    EDGE_CHECK(d->reg.invoke(&f.context, &d->node) == kTfLiteOk);
    EDGE_CHECK(std::string(d->reg.profiling_string(&f.context, &d->node)).rfind("edgesdk:", 0) ==
               0);
  }
  if (!f.errors.empty()) std::fprintf(stderr, "%s", f.errors.c_str());
  EDGE_CHECK(f.errors.empty());
  // the FC output was resized from [2, 20] to the input's batch
  EDGE_CHECK(f.tensors[3].dims->size == 2 && f.tensors[3].dims->data[0] == 3);

  // the same layers on the plans directly
  edge::LayerOptions fo;
  fo.input = {0.05f, 3};
  fo.output = {0.2f, -5};
  fo.activation = edge::Activation::kRelu;
  fo.bias = bias.data();
  edge::FullyConnected fc_plan(edge::pack_weights(edge::WeightType::kInt4, fc_q.data(), 20, 40,
                                                  fc_s.data(), 20),
                               fo);
  std::vector<int8_t> fc_out(60);
  fc_plan.run(reinterpret_cast<const int8_t*>(f.extra[0].data.data()), 3, fc_out.data());
  EDGE_CHECK(std::memcmp(fc_out.data(), f.tensors[3].data, 60) == 0);

  edge::Conv2DOptions co;
  co.input = {0.03f, -2};
  co.output = {0.1f, 4};
  co.activation = edge::Activation::kRelu6;
  co.geometry.input_height = co.geometry.input_width = 5;
  co.geometry.input_channels = 8;
  co.geometry.kernel_height = co.geometry.kernel_width = 3;
  co.geometry.padding = edge::Padding::kSame;
  edge::Conv2D conv_plan(edge::pack_weights(edge::WeightType::kTernary, conv_q.data(), 6, 72,
                                            conv_s.data(), 6),
                         co);
  std::vector<int8_t> conv_out(150);
  conv_plan.run(reinterpret_cast<const int8_t*>(f.extra[4].data.data()), conv_out.data());
  EDGE_CHECK(std::memcmp(conv_out.data(), f.tensors[6].data, 150) == 0);

  edge::DepthwiseConv2DOptions dwo;
  dwo.input = {0.1f, 4};
  dwo.output = {0.08f, 0};
  dwo.activation = edge::Activation::kRelu;
  dwo.tail_rounding = edge::Rounding::kAwayFromZero;
  dwo.geometry.input_height = dwo.geometry.input_width = 5;
  dwo.geometry.input_channels = 6;
  dwo.geometry.kernel_height = dwo.geometry.kernel_width = 3;
  dwo.geometry.padding = edge::Padding::kValid;
  edge::DepthwiseConv2D dw_plan(dw_q.data(), dw_s.data(), 6, nullptr, dwo);
  std::vector<int8_t> dw_out(54);
  dw_plan.run(conv_out.data(), dw_out.data());
  EDGE_CHECK(std::memcmp(dw_out.data(), f.tensors[8].data, 54) == 0);

  for (auto& d : f.delegated) d->reg.free(&f.context, d->node.user_data);
  edge::delegate::destroy_delegate(delegate);
  for (auto& e : f.extra) std::free(e.resized);
  g_fake = nullptr;
}

EDGE_TEST(delegate_precisions_name_activation_kinds) {
  const char* keys[] = {"precisions"};
  const char* dynamic_only[] = {"dynamic"};
  edge::delegate::Options o = edge::delegate::parse_options(keys, dynamic_only, 1);
  EDGE_CHECK(o.dynamic_nodes && !o.static_nodes && o.int8 && o.int4 && o.int2);
  const char* typed[] = {"int2,static"};
  o = edge::delegate::parse_options(keys, typed, 1);
  EDGE_CHECK(!o.dynamic_nodes && o.static_nodes && !o.int8 && !o.int4 && o.int2);
  const char* types_only[] = {"int4"};
  o = edge::delegate::parse_options(keys, types_only, 1);
  EDGE_CHECK(o.dynamic_nodes && o.static_nodes && o.int4 && !o.int8);
}

// A dynamic-range FULLY_CONNECTED (float in and out, ternary INT2 weights, float bias,
// asymmetric input quantisation): the delegate equals the scheme computed here from
// quantize_rows and exact integer sums, in LiteRT's order of float operations.
EDGE_TEST(delegate_runs_dynamic_range_fc) {
  Fake f;
  g_fake = &f;
  std::mt19937 rng(9);
  const int m = 3, n = 20, k = 40;
  for (int i = 0; i < 4; ++i) add_tensor(f);
  std::vector<int8_t> q(static_cast<std::size_t>(n) * k);
  for (auto& v : q) v = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
  std::vector<float> ws(n), bias(n), x(static_cast<std::size_t>(m) * k, 0.0f);
  for (auto& s : ws) s = 0.01f + 0.001f * static_cast<float>(rng() % 50);
  for (auto& b : bias) b = 0.01f * static_cast<float>(static_cast<int>(rng() % 200) - 100);
  // row 0 random, row 1 all zero, row 2 positive only
  for (int i = 0; i < k; ++i) {
    x[static_cast<std::size_t>(i)] =
        0.01f * static_cast<float>(static_cast<int>(rng() % 400) - 150);
    x[static_cast<std::size_t>(2 * k + i)] = 0.02f * static_cast<float>(rng() % 100);
  }
  auto bytes = [](const void* p, std::size_t size) {
    const auto* b = static_cast<const uint8_t*>(p);
    return std::vector<uint8_t>(b, b + size);
  };
  set_tensor(f, 0, kTfLiteFloat32, {m, k}, bytes(x.data(), x.size() * 4), {}, false);
  set_tensor(f, 1, kTfLiteInt2, {n, k}, pack_tflite(q, 2), ws, true);
  set_tensor(f, 2, kTfLiteFloat32, {n}, bytes(bias.data(), bias.size() * 4), {}, true);
  set_tensor(f, 3, kTfLiteFloat32, {m, n},
             std::vector<uint8_t>(static_cast<std::size_t>(m) * n * 4), {}, false);
  f.nodes.push_back(std::make_unique<FakeNode>());
  FakeNode& fc = *f.nodes[0];
  fc.inputs = std::make_unique<IntArray>(std::vector<int>{0, 1, 2});
  fc.outputs = std::make_unique<IntArray>(std::vector<int>{3});
  fc.fc.activation = kTfLiteActRelu6;
  fc.fc.asymmetric_quantize_inputs = true;
  fc.node.builtin_data = &fc.fc;
  fc.reg.builtin_code = kBuiltinFullyConnected;
  wire_context(f, {0}, 2);

  // Not claimed when the options leave dynamic-range nodes to LiteRT.
  edge::delegate::Options static_only;
  static_only.dynamic_nodes = false;
  TfLiteDelegate* skip = edge::delegate::create_delegate(static_only);
  EDGE_CHECK(skip->Prepare(&f.context, skip) == kTfLiteOk && f.delegated.empty());
  edge::delegate::destroy_delegate(skip);

  edge::delegate::Options all;
  all.claim = edge::delegate::ClaimPolicy::kAll;  // 2400 MACs: the cost rule would leave it
  TfLiteDelegate* delegate = edge::delegate::create_delegate(all);
  EDGE_CHECK(delegate->Prepare(&f.context, delegate) == kTfLiteOk);
  EDGE_CHECK(f.delegated.size() == 1);
  for (auto& d : f.delegated) {
    EDGE_CHECK(d->reg.prepare(&f.context, &d->node) == kTfLiteOk);
    EDGE_CHECK(d->reg.invoke(&f.context, &d->node) == kTfLiteOk);
    const std::string name = d->reg.profiling_string(&f.context, &d->node);
    EDGE_CHECK(name.find("f32_qs8_quantize") != std::string::npos &&
               name.find("qc2w") != std::string::npos);  // ternary runs the 2-bit kernel
  }
  if (!f.errors.empty()) std::fprintf(stderr, "%s", f.errors.c_str());
  EDGE_CHECK(f.errors.empty());

  std::vector<int8_t> qx(x.size());
  std::vector<float> sx(m);
  std::vector<int32_t> zx(m);
  edge::quantize_rows(x.data(), m, k, edge::InputQuantization::kAsymmetric, qx.data(), sx.data(),
                      zx.data(), edge::Isa::kScalar);
  EDGE_CHECK(sx[1] == 1.0f && zx[1] == 0);  // the all-zero row
  const auto* got = static_cast<const float*>(f.tensors[3].data);
  for (int r = 0; r < m; ++r) {
    for (int c = 0; c < n; ++c) {
      int32_t acc = 0, wsum = 0;
      for (int i = 0; i < k; ++i) {
        acc += qx[static_cast<std::size_t>(r * k + i)] * q[static_cast<std::size_t>(c * k + i)];
        wsum += q[static_cast<std::size_t>(c * k + i)];
      }
      acc -= zx[static_cast<std::size_t>(r)] * wsum;
      const float scale = sx[static_cast<std::size_t>(r)] * ws[static_cast<std::size_t>(c)];
      float y = bias[static_cast<std::size_t>(c)] + static_cast<float>(acc) * scale;
      y = y < 0.0f ? 0.0f : (y > 6.0f ? 6.0f : y);
      EDGE_CHECK(got[r * n + c] == y);
    }
  }
  for (auto& d : f.delegated) d->reg.free(&f.context, d->node.user_data);
  edge::delegate::destroy_delegate(delegate);
  g_fake = nullptr;
}

// The claim rule (src/delegate/cost_rule.h): under claim=faster a node XNNPACK would run is
// claimed only where the cost table says our plan is >= 1.15x faster on the plan's ISA and the
// node is big enough; nodes only LiteRT's builtin kernels run are claimed (not on scalar);
// custom ops always; claim=all and litert_kernels=builtin claim every node.
EDGE_TEST(delegate_claims_only_where_faster_than_litert) {
  Fake f;
  g_fake = &f;
  std::mt19937 rng(11);
  for (int i = 0; i < 12; ++i) add_tensor(f);
  auto codes = [&](std::size_t count, int lo, int span) {
    std::vector<int8_t> q(count);
    for (auto& v : q) v = static_cast<int8_t>(lo + static_cast<int>(rng() % span));
    return q;
  };
  const std::vector<float> s32(32, 0.02f), s8(8, 0.02f), s1024(1024, 0.01f), s16(16, 0.01f);
  set_tensor(f, 0, kTfLiteInt8, {1, 16, 16, 32}, random_int8(rng, 8192), {0.05f}, false, 1);
  std::vector<uint8_t> w8(32 * 32);
  for (auto& b : w8) b = static_cast<uint8_t>(static_cast<int8_t>(static_cast<int>(rng() % 255) - 127));
  set_tensor(f, 1, kTfLiteInt8, {32, 1, 1, 32}, w8, s32, true);
  set_tensor(f, 2, kTfLiteInt8, {1, 16, 16, 32}, std::vector<uint8_t>(8192), {0.1f}, false, 0);
  set_tensor(f, 3, kTfLiteInt4, {32, 1, 1, 32}, pack_tflite(codes(1024, -8, 16), 4), s32, true);
  set_tensor(f, 4, kTfLiteInt8, {1, 16, 16, 32}, std::vector<uint8_t>(8192), {0.1f}, false, 0);
  set_tensor(f, 5, kTfLiteInt2, {8, 3, 3, 32}, pack_tflite(codes(2304, -1, 3), 2), s8, true);
  set_tensor(f, 6, kTfLiteInt8, {1, 16, 16, 8}, std::vector<uint8_t>(2048), {0.1f}, false, 0);
  set_tensor(f, 7, kTfLiteInt8, {1, 2048}, random_int8(rng, 2048), {0.05f}, false, 0);
  set_tensor(f, 8, kTfLiteInt2, {1024, 2048}, pack_tflite(codes(1024 * 2048, -1, 3), 2), s1024,
             true);
  set_tensor(f, 9, kTfLiteInt8, {1, 1024}, std::vector<uint8_t>(1024), {0.1f}, false, 0);
  set_tensor(f, 10, kTfLiteInt2, {16, 2048}, pack_tflite(codes(16 * 2048, -1, 3), 2), s16, true);
  set_tensor(f, 11, kTfLiteInt8, {1, 16}, std::vector<uint8_t>(16), {0.1f}, false, 0);
  // nodes: 0 CONV_2D int8 1x1 (XNNPACK's), 1 CONV_2D INT4 1x1 (builtin: XNNPACK does not take
  // it), 2 EDGE_CONV_INT2 3x3 (custom), 3 FC ternary 2048 -> 1024 (2 M MACs, XNNPACK's 2-bit
  // path), 4 FC ternary 2048 -> 16 (32 K MACs)
  const int io[5][3] = {{0, 1, 2}, {0, 3, 4}, {0, 5, 6}, {7, 8, 9}, {7, 10, 11}};
  for (int i = 0; i < 5; ++i) {
    f.nodes.push_back(std::make_unique<FakeNode>());
    FakeNode& n = *f.nodes.back();
    n.inputs = std::make_unique<IntArray>(std::vector<int>{io[i][0], io[i][1], -1});
    n.outputs = std::make_unique<IntArray>(std::vector<int>{io[i][2]});
    if (i < 2) {
      n.conv = {kTfLitePaddingSame, 1, 1, kTfLiteActNone, 1, 1, kTfLiteNoType};
      n.node.builtin_data = &n.conv;
      n.reg.builtin_code = kBuiltinConv2D;
    } else if (i == 2) {
      n.options = conv_options(1, 0, 1, 0);
      n.node.custom_initial_data = n.options.data();
      n.node.custom_initial_data_size = 40;
      n.reg.builtin_code = kBuiltinCustom;
      n.reg.custom_name = "EDGE_CONV_INT2";
    } else {
      n.node.builtin_data = &n.fc;
      n.reg.builtin_code = kBuiltinFullyConnected;
    }
  }
  wire_context(f, {0, 1, 2, 3, 4}, 1);

  // A writable folder: the current one is read-only where the test runs on a phone (adb shell
  // starts in /); TMPDIR, then /tmp, then Android's /data/local/tmp.
  std::string dir = ".";
  const char* tmpdir = std::getenv("TMPDIR");
  for (const char* d : {tmpdir, "/tmp", "/data/local/tmp"}) {
    if (d != nullptr && access(d, W_OK) == 0) {
      dir = d;
      break;
    }
  }
  const std::string report =
      dir + "/edge_test_claim_report_" + std::to_string(getpid()) + ".json";
  auto claimed = [&](edge::delegate::Options o) {
    o.report = report;
    for (auto& d : f.delegated) d->reg.free(&f.context, d->node.user_data);
    f.delegated.clear();
    TfLiteDelegate* d = edge::delegate::create_delegate(o);
    EDGE_CHECK(d->Prepare(&f.context, d) == kTfLiteOk);
    std::vector<int> nodes;
    for (auto& dn : f.delegated) {
      nodes.push_back(reinterpret_cast<const TfLiteDelegateParams*>(dn->params.data())
                          ->nodes_to_replace->data[0]);
    }
    edge::delegate::destroy_delegate(d);
    return nodes;
  };
  auto report_text = [&] {
    std::FILE* file = std::fopen(report.c_str(), "rb");
    std::string text;
    if (file == nullptr) return text;
    char buf[4096];
    std::size_t got = 0;
    while ((got = std::fread(buf, 1, sizeof buf, file)) > 0) text.append(buf, got);
    std::fclose(file);
    return text;
  };
  using V = std::vector<int>;
  edge::delegate::Options o;
  o.isa = edge::Isa::kScalar;  // builtin kernels beat scalar: only the custom op
  EDGE_CHECK(claimed(o) == V({2}));
  std::string text = report_text();
  EDGE_CHECK(text.find("custom op: only the edgesdk delegate runs it") != std::string::npos);
  EDGE_CHECK(text.find("the scalar ISA is not faster") != std::string::npos);
  o.claim = edge::delegate::ClaimPolicy::kAll;
  EDGE_CHECK(claimed(o) == V({0, 1, 2, 3, 4}));
  // On 2 threads a node below 2^18 MACs runs on the calling thread alone (kMinParallelMacs),
  // and the report says so: the 32 K-MAC FC; the 2 M-MAC FC keeps both threads.
  o.num_threads = 2;
  EDGE_CHECK(claimed(o) == V({0, 1, 2, 3, 4}));
  text = report_text();
  EDGE_CHECK(text.find("one thread: 32768 MACs, below the 262144") != std::string::npos);
  EDGE_CHECK(text.find("one thread: 2097152 MACs") == std::string::npos);
  o.num_threads = 0;
  if (edge::isa_available(edge::Isa::kAvx2)) {
    edge::delegate::Options a;
    a.isa = edge::Isa::kAvx2;  // int8 conv 0.90x of XNNPACK; no FC row for AVX2
    EDGE_CHECK(claimed(a) == V({1, 2}));
    text = report_text();
    EDGE_CHECK(text.find("left to XNNPACK: cost table 0.90x of XNNPACK on avx2") !=
               std::string::npos);
    EDGE_CHECK(text.find("left to XNNPACK: no cost-table measurement on avx2") !=
               std::string::npos);
    EDGE_CHECK(text.find("XNNPACK does not take this node") != std::string::npos);
    a.litert_xnnpack = false;  // LiteRT's builtin kernels for what is left: claim it all
    EDGE_CHECK(claimed(a) == V({0, 1, 2, 3, 4}));
  }
  if (edge::isa_available(edge::Isa::kAvx512Vnni)) {
    edge::delegate::Options v;
    v.isa = edge::Isa::kAvx512Vnni;  // ternary FC 1.23x: the big one; the 32 K-MAC one stays
    EDGE_CHECK(claimed(v) == V({1, 2, 3}));
    text = report_text();
    EDGE_CHECK(text.find("cost table: 1.23x of XNNPACK on avx512vnni") != std::string::npos);
    EDGE_CHECK(text.find("32768 MACs, below the 1048576") != std::string::npos);
  }
  if (edge::isa_available(edge::Isa::kAvxVnni)) {
    edge::delegate::Options n;
    n.isa = edge::Isa::kAvxVnni;  // ternary FC 1.20x (measured); int8 conv 0.73x (reasoned)
    EDGE_CHECK(claimed(n) == V({1, 2, 3}));
    text = report_text();
    EDGE_CHECK(text.find("cost table: 1.20x of XNNPACK on avxvnni, ") != std::string::npos);
    EDGE_CHECK(text.find("0.73x of XNNPACK on avxvnni (reasoned, not measured)") !=
               std::string::npos);
  }
  // Nothing claimed (the plan without the custom op and the INT4 conv, the scalar ISA: every
  // node left to LiteRT): no thread pool, so no worker thread that never gets a job; the
  // report says 0 threads (it said 2, the pool's).
  f.plan = {0, 3, 4};
  edge::delegate::Options none;
  none.isa = edge::Isa::kScalar;
  none.num_threads = 2;
  EDGE_CHECK(claimed(none).empty());
  text = report_text();
  EDGE_CHECK(text.find("\"threads\": 0,") != std::string::npos);
  if (!f.errors.empty()) std::fprintf(stderr, "%s", f.errors.c_str());
  EDGE_CHECK(f.errors.empty());
  for (auto& d : f.delegated) d->reg.free(&f.context, d->node.user_data);
  std::remove(report.c_str());
  g_fake = nullptr;
}

// The claim rule on more than one thread (cost_rule.h, kParallelMacs): a node XNNPACK would run is
// compared with XNNPACK's on as many threads. Under 2^24 MACs ours may run on one thread
// (thread_choice.h), so the table's 1-thread figure / threads must reach 1.15: the ternary FC of
// 2 M MACs (1.23x on avx512vnni) is claimed on 1 thread and left to XNNPACK on 2; 8 rows of it
// (2^24 MACs) keep the table's figure on 2 threads. decide_claim is called with the ISA's name,
// so this holds on any host.
EDGE_TEST(delegate_claim_rule_compares_at_the_delegates_threads) {
  Fake f;
  g_fake = &f;
  std::mt19937 rng(5);
  for (int i = 0; i < 5; ++i) add_tensor(f);
  const std::vector<int8_t> q = random_codes(rng, 1024 * 2048, -1, 3);
  set_tensor(f, 0, kTfLiteInt8, {1, 2048}, random_int8(rng, 2048), {0.05f}, false, 0);
  set_tensor(f, 1, kTfLiteInt2, {1024, 2048}, pack_tflite(q, 2),
             std::vector<float>(1024, 0.01f), true);
  set_tensor(f, 2, kTfLiteInt8, {1, 1024}, std::vector<uint8_t>(1024), {0.1f}, false, 0);
  set_tensor(f, 3, kTfLiteInt8, {8, 2048}, random_int8(rng, 8 * 2048), {0.05f}, false, 0);
  set_tensor(f, 4, kTfLiteInt8, {8, 1024}, std::vector<uint8_t>(8 * 1024), {0.1f}, false, 0);
  wire_context(f, {}, 1);
  edge::delegate::NodeInfo one;
  one.kind = edge::delegate::OpKind::kFullyConnected;
  one.op = "FULLY_CONNECTED";
  one.weight_type = edge::WeightType::kTernary;
  one.input = 0;
  one.weights = 1;
  one.output = 2;
  edge::delegate::NodeInfo eight = one;
  eight.input = 3;
  eight.output = 4;
  edge::delegate::Options o;
  using edge::delegate::decide_claim;
  const auto d1 = decide_claim(one, &f.context, o, "avx512vnni", 1);
  EDGE_CHECK(d1.claim && d1.macs == (int64_t{1} << 21) && d1.speedup_on_threads == d1.speedup);
  const auto d2 = decide_claim(one, &f.context, o, "avx512vnni", 2);
  EDGE_CHECK(!d2.claim && d2.speedup == d1.speedup && d2.speedup_on_threads == d1.speedup / 2);
  EDGE_CHECK(d2.reason.find("left to XNNPACK: cost table 1.23x of XNNPACK on avx512vnni; on 2 "
                            "threads at least 0.61x (one thread against XNNPACK's split") !=
             std::string::npos);
  const auto d8 = decide_claim(eight, &f.context, o, "avx512vnni", 2);
  EDGE_CHECK(d8.claim && d8.macs == edge::delegate::kParallelMacs);
  EDGE_CHECK(d8.reason.find("on 2 threads as on one") != std::string::npos);
  // the delegate's threads: its option, else the interpreter's, else the usable cores
  edge::delegate::Options t;
  EDGE_CHECK(edge::delegate::delegate_threads(t, &f.context) == 1);
  t.num_threads = 3;
  EDGE_CHECK(edge::delegate::delegate_threads(t, &f.context) == 3);
  t.num_threads = 0;
  f.context.recommended_num_threads = 0;
  EDGE_CHECK(edge::delegate::delegate_threads(t, &f.context) == edge::usable_core_count());
  g_fake = nullptr;
}

// thread_choice.h, with injected call times (ns): each trial is kSamples calls on the calling
// thread, then 1 + kSamples on the pool (the first not kept); the pool is kept only when its
// median is <= 0.95x the serial one, so one fast sample does not decide; after kRecheckCalls
// calls the trial runs again and follows a placement that changed; restart() starts one at once.
EDGE_TEST(delegate_thread_choice_keeps_the_faster_way_by_median) {
  using edge::delegate::ThreadChoice;
  constexpr int kSamples = ThreadChoice::kSamples;
  // One trial: serial calls take serial[i], pool calls pool[i] (index 0: the unkept first call).
  auto trial = [](ThreadChoice& c, std::vector<int64_t> serial, std::vector<int64_t> pool) {
    EDGE_CHECK(c.phase() == ThreadChoice::Phase::kSerialTrial);
    for (int i = 0; i < kSamples; ++i) {
      EDGE_CHECK(!c.parallel_next());
      c.record(serial[static_cast<std::size_t>(i)]);
    }
    for (int i = 0; i <= kSamples; ++i) {
      EDGE_CHECK(c.parallel_next());
      c.record(pool[static_cast<std::size_t>(i)]);
    }
    EDGE_CHECK(c.phase() == ThreadChoice::Phase::kSettled);
    return c.parallel();
  };
  auto same = [](int64_t v) { return std::vector<int64_t>(kSamples + 1, v); };
  {  // far: the hand-off costs more than the half it saves (FC 1024 ternary: 6 vs 11 us)
    ThreadChoice c;
    EDGE_CHECK(!trial(c, same(6000), same(11000)));
    EDGE_CHECK(c.serial_median_ns() == 6000 && c.parallel_median_ns() == 11000);
    for (int i = 0; i < 100; ++i) {
      EDGE_CHECK(!c.parallel_next());
      c.record(6000);
    }
  }
  {  // near: the split pays
    ThreadChoice c;
    EDGE_CHECK(trial(c, same(6000), same(4800)));
    EDGE_CHECK(c.parallel_next());
  }
  {  // 3 % faster on the pool: inside the margin, stays on one thread
    ThreadChoice c;
    EDGE_CHECK(!trial(c, same(6000), same(5820)));
  }
  {  // one lucky pool sample among slow ones does not decide; nor a slow serial outlier
    ThreadChoice c;
    std::vector<int64_t> pool = same(11000);
    pool[3] = 1000;
    std::vector<int64_t> serial = same(6000);
    serial[2] = 90000;
    EDGE_CHECK(!trial(c, serial, pool));
  }
  {  // the first pool call (a worker woken from sleep) is not kept
    ThreadChoice c;
    std::vector<int64_t> pool = same(4800);
    pool[0] = 1000000;
    EDGE_CHECK(trial(c, same(6000), pool));
  }
  {  // re-check: after kRecheckCalls calls a new trial, which follows the new placement
    ThreadChoice c;
    EDGE_CHECK(!trial(c, same(6000), same(11000)));
    for (int64_t i = 0; i < ThreadChoice::kRecheckCalls; ++i) {
      EDGE_CHECK(c.phase() == ThreadChoice::Phase::kSettled && !c.parallel_next());
      c.record(6000);
    }
    EDGE_CHECK(trial(c, same(6000), same(4000)));
    EDGE_CHECK(c.trials() == 2);
    c.restart();  // the input shape changed
    EDGE_CHECK(!trial(c, same(3000), same(4000)));
    EDGE_CHECK(c.trials() == 3);
  }
}

// A claimed node on 2 threads runs its calls both ways (the choice's trial: 8 on the calling
// thread, 9 on the pool, then the faster): every call's output equals the plan's, bit for bit.
EDGE_TEST(delegate_node_outputs_equal_on_the_pool_and_alone) {
  Fake f;
  g_fake = &f;
  std::mt19937 rng(9);
  for (int i = 0; i < 3; ++i) add_tensor(f);
  const std::vector<int8_t> q = random_codes(rng, 512 * 1024, -2, 4);
  std::vector<float> scales(512);
  for (auto& s : scales) s = 0.002f + 0.0001f * static_cast<float>(rng() % 20);
  const std::vector<uint8_t> x = random_int8(rng, 1024);
  set_tensor(f, 0, kTfLiteInt8, {1, 1024}, x, {0.05f}, false, 2);
  set_tensor(f, 1, kTfLiteInt2, {512, 1024}, pack_tflite(q, 2), scales, true);
  set_tensor(f, 2, kTfLiteInt8, {1, 512}, std::vector<uint8_t>(512), {0.1f}, false, -3);
  f.nodes.push_back(std::make_unique<FakeNode>());
  FakeNode& fc = *f.nodes[0];
  fc.inputs = std::make_unique<IntArray>(std::vector<int>{0, 1, -1});
  fc.outputs = std::make_unique<IntArray>(std::vector<int>{2});
  fc.node.builtin_data = &fc.fc;
  fc.reg.builtin_code = kBuiltinFullyConnected;
  wire_context(f, {0}, 2);  // 524288 MACs: above kMinParallelMacs, so the node has the pool
  edge::delegate::Options options;
  options.claim = edge::delegate::ClaimPolicy::kAll;
  TfLiteDelegate* delegate = edge::delegate::create_delegate(options);
  EDGE_CHECK(delegate->Prepare(&f.context, delegate) == kTfLiteOk);
  EDGE_CHECK(f.delegated.size() == 1);
  auto& d = f.delegated[0];
  EDGE_CHECK(d->reg.prepare(&f.context, &d->node) == kTfLiteOk);
  edge::LayerOptions lo;
  lo.input = {0.05f, 2};
  lo.output = {0.1f, -3};
  edge::FullyConnected plan(edge::pack_weights(edge::WeightType::kInt2, q.data(), 512, 1024,
                                               scales.data(), 512),
                            lo);
  std::vector<int8_t> want(512);
  plan.run(reinterpret_cast<const int8_t*>(x.data()), 1, want.data());
  for (int call = 0; call < 2 * edge::delegate::ThreadChoice::kSamples + 8; ++call) {
    std::memset(f.tensors[2].data, 0x55, 512);
    EDGE_CHECK(d->reg.invoke(&f.context, &d->node) == kTfLiteOk);
    EDGE_CHECK(std::memcmp(want.data(), f.tensors[2].data, 512) == 0);
  }
  if (!f.errors.empty()) std::fprintf(stderr, "%s", f.errors.c_str());
  EDGE_CHECK(f.errors.empty());
  d->reg.free(&f.context, d->node.user_data);
  edge::delegate::destroy_delegate(delegate);
  g_fake = nullptr;
}
