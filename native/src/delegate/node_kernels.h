// Internal: one delegate kernel per claimed TFLite node, running a native kernel plan.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edge/delegate/delegate.h"
#include "edge/delegate/tflite_abi.h"
#include "edge/kernels/conv2d.h"
#include "edge/packing/layout.h"
#include "edge/thread_pool.h"
#include "thread_choice.h"

namespace edge {
namespace delegate {

enum class OpKind { kFullyConnected, kConv2D, kDepthwiseConv2D };

// What the delegate needs to know about a node, read from its tensors and options.
struct NodeInfo {
  int node_index = -1;
  OpKind kind = OpKind::kFullyConnected;
  std::string op;        // "FULLY_CONNECTED", "CONV_2D", ..., or the custom op's name
  bool custom = false;
  int input = -1, weights = -1, bias = -1, output = -1;
  WeightType weight_type = WeightType::kInt8;
  tflite_abi::TfLiteFusedActivation activation = tflite_abi::kTfLiteActNone;
  // conv / depthwise
  Padding padding = Padding::kSame;
  int stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1, depth_multiplier = 1;
  // fully connected
  bool keep_num_dims = false;
  // dynamic range: float32 input and output, quantised weights, float32 bias; the input is
  // quantised at run time, per batch row (FC) or per image (convs)
  bool dynamic = false;
  bool asymmetric_inputs = false;
};

// "" when the delegate runs this node under `options` (and `info` is filled), else why not.
// Nodes that are not FC / conv / depthwise / our custom ops return "not a claimable op".
std::string inspect_node(tflite_abi::TfLiteContext* context, int node_index,
                         const tflite_abi::TfLiteNode* node,
                         const tflite_abi::TfLiteRegistration* registration,
                         const Options& options, NodeInfo* info);
extern const char kNotClaimable[];

class NodeKernel {
 public:
  // Packs the weights (once) and builds the plan. Throws std::exception on bad input.
  static std::unique_ptr<NodeKernel> create(tflite_abi::TfLiteContext* context,
                                            const NodeInfo& info, const Options& options,
                                            ThreadPool* pool);
  virtual ~NodeKernel() = default;
  // Resizes the output for the current input shape and (re)builds what depends on it.
  virtual tflite_abi::TfLiteStatus prepare(tflite_abi::TfLiteContext* context) = 0;
  virtual tflite_abi::TfLiteStatus invoke(tflite_abi::TfLiteContext* context) = 0;
  // invoke() on the pool or on the calling thread alone, as the node's ThreadChoice says, timed
  // for it (thread_choice.h). A node given no pool, or a pool of one thread, just runs.
  tflite_abi::TfLiteStatus run(tflite_abi::TfLiteContext* context);
  // After prepare(): a new input shape is new work, so the choice is measured again.
  void restart_thread_choice() { choice_.restart(); }
  // The micro-kernel that runs (e.g. "qs8_qt2w_gemm_1x16c4__avx2").
  virtual std::string kernel_name() const = 0;
  const NodeInfo& info() const { return info_; }

 protected:
  NodeKernel(const NodeInfo& info, ThreadPool* pool)
      : info_(info), pool_(pool), pool_of_node_(pool) {}
  NodeInfo info_;
  // The pool of the call in progress: the node's pool, or nullptr while run() has the call on
  // the calling thread alone (prepare() always sees the node's pool).
  ThreadPool* pool_;

 private:
  ThreadPool* pool_of_node_;
  ThreadChoice choice_;
};

// Helpers shared with delegate.cc (report) and the tests.
std::vector<int> tensor_dims(const tflite_abi::TfLiteTensor& t);
const char* type_name(tflite_abi::TfLiteType type);
const char* weight_type_label(WeightType type);

}  // namespace delegate
}  // namespace edge
