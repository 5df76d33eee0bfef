// The edgesdk TFLite external delegate (see include/edge/delegate/delegate.h).
//
// Classic delegate flow, all through the context's function pointers: Prepare() walks the
// execution plan, asks inspect_node() which nodes it can run, and replaces each of them with its
// own delegate kernel (one ReplaceNodeSubsetsWithDelegateKernels call per node: every tensor,
// intermediate ones included, stays a TFLite tensor that LiteRT allocates and users can read).
// The kernel's init() packs the weights once and builds the plan; prepare() follows input
// resizes; invoke() runs the plan on the delegate's thread pool, or on the calling thread where
// the node's own timings say the split does not pay (thread_choice.h).
//
// No C++ exception crosses into LiteRT: each entry point catches and reports through
// context->ReportError (or the loader's report_error).
#include "edge/delegate/delegate.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cost_rule.h"
#include "node_kernels.h"

#ifndef EDGE_VERSION
#define EDGE_VERSION "0.1.0"
#endif

namespace edge {
namespace delegate {

using namespace tflite_abi;  // NOLINT

namespace {

constexpr const char* kDelegateName = "EdgeSdkDelegate";

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

// The delegate object LiteRT holds: TfLiteDelegate first, then zeroed spare room in case a newer
// runtime reads fields appended after the ones we declare, then our state.
struct State;
struct Holder {
  TfLiteDelegate delegate;
  unsigned char spare[64];
  State* state;
};

struct ClaimRecord {
  int node;
  std::string op, weights, kernel, isa, activations, reason;
};
struct SkipRecord {
  int node;
  std::string op, reason;
};

struct State {
  Options options;
  std::unique_ptr<ThreadPool> pool;
  std::vector<ClaimRecord> claimed;
  std::vector<SkipRecord> skipped;
};

// One delegate kernel (the user_data of a delegate node).
struct KernelData {
  std::unique_ptr<NodeKernel> kernel;
  std::string name;
};

State* state_of(TfLiteDelegate* delegate) { return static_cast<State*>(delegate->data_); }

std::string builtin_label(const TfLiteRegistration* reg) {
  switch (reg->builtin_code) {
    case kBuiltinFullyConnected: return "FULLY_CONNECTED";
    case kBuiltinConv2D: return "CONV_2D";
    case kBuiltinDepthwiseConv2D: return "DEPTHWISE_CONV_2D";
    case kBuiltinCustom: return reg->custom_name != nullptr ? reg->custom_name : "CUSTOM";
    default: return "builtin " + std::to_string(reg->builtin_code);
  }
}

// ---------------------------------------------------------------- delegate kernel callbacks
void* kernel_init(TfLiteContext* context, const char* buffer, std::size_t) {
  try {
    const auto* params = reinterpret_cast<const TfLiteDelegateParams*>(buffer);
    State* state = state_of(params->delegate);
    if (params->nodes_to_replace->size != 1) {
      throw std::runtime_error("expected one node per delegate kernel");
    }
    const int node_index = params->nodes_to_replace->data[0];
    TfLiteNode* node = nullptr;
    TfLiteRegistration* reg = nullptr;
    if (context->GetNodeAndRegistration(context, node_index, &node, &reg) != kTfLiteOk) {
      throw std::runtime_error("cannot read node " + std::to_string(node_index));
    }
    NodeInfo info;
    const std::string why = inspect_node(context, node_index, node, reg, state->options, &info);
    if (!why.empty()) throw std::runtime_error(why);
    auto data = std::make_unique<KernelData>();
    // Small nodes run on the calling thread alone (cost_rule.h, kMinParallelMacs).
    const int64_t macs = node_macs(info, context);
    const bool serial = state->pool != nullptr && state->pool->num_threads() > 1 &&
                        macs < kMinParallelMacs;
    data->kernel = NodeKernel::create(context, info, state->options,
                                      serial ? nullptr : state->pool.get());
    data->name = std::string("edgesdk:") + info.op + ":" + data->kernel->kernel_name();
    for (ClaimRecord& c : state->claimed) {
      if (c.node != node_index) continue;
      c.kernel = data->kernel->kernel_name();
      if (serial) {
        c.reason += "; one thread: " + std::to_string(macs) + " MACs, below the " +
                    std::to_string(kMinParallelMacs) + " where a second thread pays";
      }
    }
    return data.release();
  } catch (const std::exception& e) {
    context->ReportError(context, "edgesdk delegate: %s", e.what());
    return nullptr;
  }
}

void kernel_free(TfLiteContext*, void* buffer) { delete static_cast<KernelData*>(buffer); }

TfLiteStatus kernel_prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<KernelData*>(node->user_data);
  if (data == nullptr) {
    context->ReportError(context, "edgesdk delegate: kernel was not initialised");
    return kTfLiteError;
  }
  try {
    const TfLiteStatus status = data->kernel->prepare(context);
    data->kernel->restart_thread_choice();
    return status;
  } catch (const std::exception& e) {
    context->ReportError(context, "edgesdk delegate (%s): %s", data->name.c_str(), e.what());
    return kTfLiteError;
  }
}

TfLiteStatus kernel_invoke(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<KernelData*>(node->user_data);
  try {
    return data->kernel->run(context);
  } catch (const std::exception& e) {
    context->ReportError(context, "edgesdk delegate (%s): %s", data->name.c_str(), e.what());
    return kTfLiteError;
  }
}

const char* kernel_profiling_string(const TfLiteContext*, const TfLiteNode* node) {
  const auto* data = static_cast<const KernelData*>(node->user_data);
  return data != nullptr ? data->name.c_str() : kDelegateName;
}

// ---------------------------------------------------------------- report (JSON)
std::string json_string(const char* s) {
  std::string out = "\"";
  for (const char* p = s != nullptr ? s : ""; *p != '\0'; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string json_ints(const TfLiteIntArray* a) {
  std::string out = "[";
  for (int i = 0; a != nullptr && i < a->size; ++i) {
    if (i) out += ",";
    out += std::to_string(a->data[i]);
  }
  return out + "]";
}

std::string json_float(float f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(f));
  return buf;
}

void write_report(TfLiteContext* context, const std::vector<int>& plan, const State& state) {
  std::string j = "{\n  \"version\": " + json_string(edge_delegate_version()) + ",\n";
  j += "  \"abi\": {\"sizeof_tensor\": " + std::to_string(sizeof(TfLiteTensor)) +
       ", \"sizeof_registration\": " + std::to_string(sizeof(TfLiteRegistration)) +
       ", \"recommended_num_threads\": " + std::to_string(context->recommended_num_threads) +
       "},\n";
  j += "  \"threads\": " + std::to_string(state.pool ? state.pool->num_threads() : 0) + ",\n";
  j += "  \"tensors\": [\n";
  for (std::size_t i = 0; i < context->tensors_size; ++i) {
    const TfLiteTensor& t = context->tensors[i];
    j += std::string(i ? ",\n" : "") + "    {\"index\": " + std::to_string(i) +
         ", \"name\": " + json_string(t.name) + ", \"type\": " + json_string(type_name(t.type)) +
         ", \"dims\": " + json_ints(t.dims) + ", \"bytes\": " + std::to_string(t.bytes) +
         ", \"allocation_type\": " + std::to_string(t.allocation_type) +
         ", \"scale\": " + json_float(t.params.scale) +
         ", \"zero_point\": " + std::to_string(t.params.zero_point) +
         ", \"quantization\": " + std::to_string(t.quantization.type);
    if (t.quantization.type == kTfLiteAffineQuantization && t.quantization.params != nullptr) {
      const auto* q = static_cast<const TfLiteAffineQuantization*>(t.quantization.params);
      j += ", \"scales\": [";
      for (int k = 0; q->scale != nullptr && k < q->scale->size; ++k) {
        j += (k ? "," : "") + json_float(q->scale->data[k]);
      }
      j += "], \"zero_points\": " + json_ints(q->zero_point) +
           ", \"quantized_dimension\": " + std::to_string(q->quantized_dimension);
    }
    j += "}";
  }
  j += "\n  ],\n  \"nodes\": [\n";
  for (std::size_t i = 0; i < plan.size(); ++i) {
    TfLiteNode* node = nullptr;
    TfLiteRegistration* reg = nullptr;
    if (context->GetNodeAndRegistration(context, plan[i], &node, &reg) != kTfLiteOk) continue;
    j += std::string(i ? ",\n" : "") + "    {\"index\": " + std::to_string(plan[i]) +
         ", \"builtin_code\": " + std::to_string(reg->builtin_code) +
         ", \"custom_name\": " + json_string(reg->custom_name) +
         ", \"version\": " + std::to_string(reg->version) +
         ", \"inputs\": " + json_ints(node->inputs) + ", \"outputs\": " + json_ints(node->outputs) +
         ", \"custom_options_size\": " + std::to_string(node->custom_initial_data_size) + "}";
  }
  j += "\n  ],\n  \"claimed\": [\n";
  for (std::size_t i = 0; i < state.claimed.size(); ++i) {
    const ClaimRecord& c = state.claimed[i];
    j += std::string(i ? ",\n" : "") + "    {\"node\": " + std::to_string(c.node) +
         ", \"op\": " + json_string(c.op.c_str()) +
         ", \"weights\": " + json_string(c.weights.c_str()) +
         ", \"kernel\": " + json_string(c.kernel.c_str()) +
         ", \"isa\": " + json_string(c.isa.c_str()) +
         ", \"activations\": " + json_string(c.activations.c_str()) +
         ", \"reason\": " + json_string(c.reason.c_str()) + "}";
  }
  j += "\n  ],\n  \"skipped\": [\n";
  for (std::size_t i = 0; i < state.skipped.size(); ++i) {
    const SkipRecord& s = state.skipped[i];
    j += std::string(i ? ",\n" : "") + "    {\"node\": " + std::to_string(s.node) +
         ", \"op\": " + json_string(s.op.c_str()) +
         ", \"reason\": " + json_string(s.reason.c_str()) + "}";
  }
  j += "\n  ]\n}\n";
  // Written to a temporary name and renamed, so a reader never sees half a report.
  const std::string tmp = state.options.report + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    context->ReportError(context, "edgesdk delegate: cannot write report %s",
                         state.options.report.c_str());
    return;
  }
  std::fwrite(j.data(), 1, j.size(), f);
  std::fclose(f);
  std::rename(tmp.c_str(), state.options.report.c_str());
}

// ---------------------------------------------------------------- delegate Prepare
TfLiteStatus delegate_prepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  State* state = state_of(delegate);
  try {
    TfLiteIntArray* plan_array = nullptr;
    if (context->GetExecutionPlan(context, &plan_array) != kTfLiteOk) return kTfLiteError;
    // The array is owned by the context and invalidated by later calls: copy it.
    const std::vector<int> plan(plan_array->data, plan_array->data + plan_array->size);
    state->claimed.clear();
    state->skipped.clear();
    std::vector<int> nodes;
    const Isa isa = resolve_isa(state->options.isa);
    const int threads = delegate_threads(state->options, context);
    for (int node_index : plan) {
      TfLiteNode* node = nullptr;
      TfLiteRegistration* reg = nullptr;
      if (context->GetNodeAndRegistration(context, node_index, &node, &reg) != kTfLiteOk) {
        return kTfLiteError;
      }
      NodeInfo info;
      const std::string why = inspect_node(context, node_index, node, reg, state->options, &info);
      if (why.empty()) {
        // The claim rule (cost_rule.h): only where our kernel beats what LiteRT would run.
        const ClaimDecision d =
            decide_claim(info, context, state->options, isa_name(isa), threads);
        if (d.claim) {
          nodes.push_back(node_index);
          state->claimed.push_back({node_index, info.op, weight_type_label(info.weight_type), "",
                                    isa_name(isa), info.dynamic ? "float32" : "int8", d.reason});
        } else {
          state->skipped.push_back({node_index, builtin_label(reg), d.reason});
        }
      } else if (why != kNotClaimable) {
        state->skipped.push_back({node_index, builtin_label(reg), why});
      }
    }
    // A pool only where a node is claimed: a delegate that leaves every node to LiteRT would
    // keep a worker thread that never gets a job (the report's threads: 0 then).
    if (!state->pool && !nodes.empty()) {
      int pool_threads = state->options.num_threads;
      if (pool_threads <= 0 && context->recommended_num_threads > 0) {
        pool_threads = context->recommended_num_threads;
      }
      state->pool = std::make_unique<ThreadPool>(pool_threads);  // <= 0: usable_core_count()
    }
    TfLiteRegistration reg{};
    reg.init = kernel_init;
    reg.free = kernel_free;
    reg.prepare = kernel_prepare;
    reg.invoke = kernel_invoke;
    reg.profiling_string = kernel_profiling_string;
    reg.builtin_code = kBuiltinDelegate;
    reg.custom_name = kDelegateName;
    reg.version = 1;
    // One delegate kernel per node (see the file comment). The one-element array is laid out as
    // TfLiteIntArray {size, data[1]}.
    TfLiteIntArray one{1, {0}};
    for (int node_index : nodes) {
      one.data[0] = node_index;
      const TfLiteStatus s =
          context->ReplaceNodeSubsetsWithDelegateKernels(context, reg, &one, delegate);
      if (s != kTfLiteOk) return s;
    }
    // The report lists the nodes of the plan LiteRT gave us (what the ABI test compares).
    if (!state->options.report.empty()) write_report(context, plan, *state);
    return kTfLiteOk;
  } catch (const std::exception& e) {
    context->ReportError(context, "edgesdk delegate: %s", e.what());
    return kTfLiteDelegateError;
  }
}

}  // namespace

Options parse_options(const char* const* keys, const char* const* values, std::size_t count) {
  Options o;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string key = keys[i] != nullptr ? keys[i] : "";
    const std::string value = values[i] != nullptr ? values[i] : "";
    if (key == "precisions") {
      o.int8 = o.int4 = o.int2 = false;
      o.static_nodes = o.dynamic_nodes = false;
      for (const std::string& p : split(value)) {
        if (p == "static") {
          o.static_nodes = true;
        } else if (p == "dynamic") {
          o.dynamic_nodes = true;
        } else if (p == "int8") {
          o.int8 = true;
        } else if (p == "int4") {
          o.int4 = true;
        } else if (p == "int2" || p == "ternary") {
          o.int2 = true;
        } else {
          throw std::invalid_argument("option precisions: unknown precision '" + p +
                                      "' (int8, int4, int2, static, dynamic)");
        }
      }
      // Only weight types named: both activation kinds; only kinds named: every weight type
      // (an empty list still claims nothing but the custom ops).
      const bool any_type = o.int8 || o.int4 || o.int2;
      const bool any_kind = o.static_nodes || o.dynamic_nodes;
      if (any_type && !any_kind) o.static_nodes = o.dynamic_nodes = true;
      if (any_kind && !any_type) o.int8 = o.int4 = o.int2 = true;
    } else if (key == "ops") {
      o.fully_connected = o.conv_2d = o.depthwise_conv_2d = false;
      for (const std::string& p : split(value)) {
        if (p == "fully_connected") {
          o.fully_connected = true;
        } else if (p == "conv_2d") {
          o.conv_2d = true;
        } else if (p == "depthwise_conv_2d") {
          o.depthwise_conv_2d = true;
        } else {
          throw std::invalid_argument("option ops: unknown op '" + p +
                                      "' (fully_connected, conv_2d, depthwise_conv_2d)");
        }
      }
    } else if (key == "num_threads") {
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n < -1 || n > 1024) {
        throw std::invalid_argument("option num_threads: expected an integer, got '" + value +
                                    "'");
      }
      o.num_threads = static_cast<int>(n);
    } else if (key == "isa") {
      if (!value.empty()) o.isa = parse_isa(value);
    } else if (key == "rounding") {
      if (value == "upward") {
        o.rounding = Rounding::kUpward;
      } else if (value == "away_from_zero") {
        o.rounding = Rounding::kAwayFromZero;
      } else if (value == "single") {
        o.rounding = Rounding::kSingle;
      } else {
        throw std::invalid_argument(
            "option rounding: expected upward, away_from_zero or single, got '" + value + "'");
      }
    } else if (key == "claim") {
      if (value == "faster") {
        o.claim = ClaimPolicy::kFaster;
      } else if (value == "all") {
        o.claim = ClaimPolicy::kAll;
      } else {
        throw std::invalid_argument("option claim: expected faster or all, got '" + value + "'");
      }
    } else if (key == "litert_kernels") {
      if (value == "xnnpack") {
        o.litert_xnnpack = true;
      } else if (value == "builtin") {
        o.litert_xnnpack = false;
      } else {
        throw std::invalid_argument("option litert_kernels: expected xnnpack or builtin, got '" +
                                    value + "'");
      }
    } else if (key == "report") {
      o.report = value;
    } else {
      throw std::invalid_argument("unknown option '" + key +
                                  "' (precisions, ops, num_threads, isa, rounding, claim, "
                                  "litert_kernels, report)");
    }
  }
  return o;
}

TfLiteDelegate* create_delegate(const Options& options) {
  auto holder = std::make_unique<Holder>();
  std::memset(static_cast<void*>(holder.get()), 0, sizeof(Holder));
  holder->state = new State{options, nullptr, {}, {}};
  holder->delegate.data_ = holder->state;
  holder->delegate.Prepare = delegate_prepare;
  // Our custom ops have no builtin kernel: LiteRT must not prepare the original graph first.
  holder->delegate.flags = kTfLiteDelegateFlagsAllowDynamicTensors;
  return &holder.release()->delegate;
}

void destroy_delegate(TfLiteDelegate* delegate) {
  if (delegate == nullptr) return;
  // `delegate` is the first member of a Holder.
  auto* holder = reinterpret_cast<Holder*>(delegate);
  delete holder->state;
  delete holder;
}

}  // namespace delegate
}  // namespace edge

extern "C" {

edge::tflite_abi::TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values,
                                                                std::size_t count,
                                                                void (*report_error)(const char*)) {
  try {
    const edge::delegate::Options options = edge::delegate::parse_options(keys, values, count);
    // Fail now rather than at Prepare for an ISA this CPU cannot run.
    edge::resolve_isa(options.isa);
    return edge::delegate::create_delegate(options);
  } catch (const std::exception& e) {
    if (report_error != nullptr) {
      const std::string message = std::string("edgesdk delegate: ") + e.what();
      report_error(message.c_str());
    }
    return nullptr;
  }
}

void tflite_plugin_destroy_delegate(edge::tflite_abi::TfLiteDelegate* delegate) {
  edge::delegate::destroy_delegate(delegate);
}

const char* edge_delegate_version() {
  return "edgesdk " EDGE_VERSION " (TFLite classic delegate ABI of ai-edge-litert 2.3.0)";
}

}
