// Internal: the GEMM machinery shared by FullyConnected and Conv2D. Private to the library.
//
// The arithmetic. With x the int8 activations (zero point xz), codes c[n][k] (int8 weights: the
// signed byte) and weight zero points wz[n], every output needs
//     acc[m][n] = sum_k (x[m][k] - xz) (c[n][k] - wz[n]) + bias[n]
//               = dot[m][n] - wz[n] * rowsum[m] + (bias[n] - xz * csum[n] + K * xz * wz[n])
// with dot = sum_k x*c (the micro-kernels), rowsum[m] = sum_k x[m][k] (computed while the rows
// are prepared) and a per-channel constant folded at plan time. VNNI's int8 kernel multiplies
// (x + 128) instead of x, which adds 128 * csum[n]: folded into the same constant. All of it is
// computed in wrapping int32, so the result is exact whenever the true sum fits int32 (TFLite
// makes the same assumption). Raw dots stay below 255 * 128 * 65536 < 2^31 because K <= 65536.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "edge/aligned_buffer.h"
#include "edge/kernels/conv2d.h"
#include "edge/kernels/fully_connected.h"
#include "kernels/ukernels.h"

namespace edge {
namespace detail {

constexpr std::size_t kMaxMr = 8;

// How a (rows x tiles) problem is cut into tasks for the thread pool. Tasks are numbered
// tile-chunk-major (task t: tile chunk t / row_blocks, row block t % row_blocks) and run with
// ThreadPool::parallel_for, which gives each thread a contiguous range of them: a thread's
// tasks are whole tile chunks (the same weights on every call, kept in its core's L2) and the
// threads' outputs meet at one chunk boundary per row, not at every chunk (false sharing).
struct WorkSplit {
  std::size_t row_block = 0;    // rows per task (the last block may be shorter)
  std::size_t row_blocks = 0;
  std::size_t tile_chunk = 0;   // tiles per task (16-channel tiles, or whole kernel calls)
  std::size_t tile_chunks = 0;
  std::size_t tasks() const { return row_blocks * tile_chunks; }
  std::size_t row_block_of(std::size_t task) const { return task % row_blocks; }
  std::size_t tile_chunk_of(std::size_t task) const { return task / row_blocks; }
};
// The modelled cost of a task of `rows` rows and `tiles` tiles: a kernel call per mr rows
// costs about 2 rows (the tile's weights streamed once per call).
std::size_t task_cost(std::size_t rows, std::size_t tiles, std::size_t mr);

// From this depth (K, before padding) on, an int8 GEMM with int8 output runs on AMX tiles on
// the avx512amx tier; below it, the AVX-512 VNNI kernels (the tier's table holds both). A tile
// call's fixed costs (tile configuration, the accumulator tile stored and read back by the
// epilogue, and for a convolution the im2col copy the indirect kernel avoids) outweigh one or
// two tdpbusd: per-layer times on the AMX Xeon (edge_conv_bench, 1 thread, loaded host), K 16-96
// 1x1 layers 1.2-3x slower on tiles, K 144-160 even, K >= 256 1.5-3x faster (3x3 K 576-1152
// 2-3x). Conv2D applies it to choose im2col + tiles over the indirect kernel.
constexpr std::size_t kAmxMinDepth = 128;
// Whether a GEMM of this weight type and depth on `isa` runs on AMX tiles: int8 weights from
// kAmxMinDepth on, on the avx512amx tier (only its int8 GEMM is the tier's own). The one rule
// gemm_qs8_for and Conv2D's choice of im2col + tiles both ask, so that the two cannot drift.
constexpr bool on_amx_tiles(Isa isa, WeightType type, std::size_t depth) {
  return isa == Isa::kAvx512Amx && type == WeightType::kInt8 && depth >= kAmxMinDepth;
}
// The fused int8 GEMM a plan on `isa` with this depth and weight type runs.
const GemmQs8Kernel& gemm_qs8_for(Isa isa, const IsaKernels& kernels, WeightType type,
                                  std::size_t depth);
// One thread: row blocks of max_row_block rows, all tiles per task. Several: equal row blocks
// (at most max_row_block rows) times equal tile chunks, up to 8 tasks per thread: among those
// with at least 4 tasks per thread where the shape has them (threads that run take a late
// one's tasks), the split whose busiest thread (under parallel_for's contiguous shares) costs
// least, half as much again where two chunks' outputs share cache lines (row_bytes, the
// output bytes of a row, or a chunk's bytes, tile_bytes per tile, not a multiple of 64: both
// threads would write every such line; the 10x10 -> 64-channel 1x1 conv ran 1.12x on 2
// threads split in 32-channel chunks); on a tie, fewer tasks.
WorkSplit split_work(std::size_t rows, std::size_t tiles, std::size_t mr, int threads,
                     std::size_t max_row_block, std::size_t row_bytes, std::size_t tile_bytes);
// The cost (task_cost) of the busiest of `threads` threads under parallel_for's contiguous
// shares of `split`, no task being taken by another thread.
std::size_t busiest_thread_work(const WorkSplit& split, std::size_t rows, std::size_t tiles,
                                std::size_t mr, int threads);
// Whether two of split's tile chunks write parts of one output cache line.
bool shares_lines(const WorkSplit& split, std::size_t row_bytes, std::size_t tile_bytes);

// A conv geometry with output size and leading padding resolved (conv2d.cc).
struct ResolvedGeometry {
  ConvGeometry g;
  int32_t out_h = 0, out_w = 0, pad_top = 0, pad_left = 0;
};
ResolvedGeometry resolve_geometry(const ConvGeometry& g);

// Per-channel requantisation multipliers from the options (caller's multipliers, or TFLite's
// rules from the scales), split into left/right shifts. `scales` has num_scales (1 or n) entries.
void fill_multipliers(const LayerOptions& options, int32_t n, const float* scales,
                      int32_t num_scales, bool per_tensor_fc_rule, int32_t* multiplier,
                      int32_t* left_shift, int32_t* right_shift);
// Per-channel requantisation tables, padded to a multiple of 16 channels, in the forms the
// epilogues use (EpilogueParams): multiplier and left/right shifts, and the 64-bit
// multiply-add-shift form of the rule in `rounding`.
// The bytes a vector-like container holds (size() elements): for the prepared_bytes() counts.
template <typename V>
std::size_t vector_bytes(const V& v) {
  return v.size() * sizeof(v[0]);
}

struct RequantTables {
  std::vector<int32_t> multiplier, left_shift, right_shift, pre_shift;
  std::vector<int64_t> rounding_add, total_shift, negative_add;
  int32_t saturate = 0;
  void build(const LayerOptions& options, int32_t n, std::size_t padded, const float* scales,
             int32_t num_scales, bool per_tensor_fc_rule, Rounding rounding);
  // All-zero tables (outputs that are not requantised still get readable arrays).
  void zeros(std::size_t padded);
  // (Re)computes the 64-bit form from multiplier / left_shift / right_shift.
  void derive(Rounding rounding);
  void attach(EpilogueParams& p) const;
  // The bytes of the seven arrays.
  std::size_t bytes() const;
};

// The bytes a PackedWeights holds (codes, zero points, scales, group scales); 0 for null.
std::size_t packed_weights_bytes(const PackedWeights* w);

// The int8 clamp (options.clamp or the activation's range), validated; and the float clamp.
ClampRange output_clamp(const LayerOptions& options);
void float_clamp(Activation activation, float* lo, float* hi);

struct GemmPlan {
  // Builds everything from the weights and options; `per_tensor_fc_rule` selects TFLite's
  // fully-connected multiplier rule for per-tensor weights (conv uses the per-channel rule).
  GemmPlan(const PackedWeightsView& weights, const LayerOptions& options, bool per_tensor_fc_rule);

  // Prepares one activation row: x[0..k) -> dst in the kernel's XFormat, zero-padded to kpad;
  // sums[0..sums_per_row) = sum of x over the whole row (no groups) or over each group.
  void prepare_row(const int8_t* x, uint8_t* dst, int32_t* sums) const;
  // Pieces of a prepared row, for im2col straight into the prepared form (no groups):
  // elements [offset, offset + n) from src or all equal to `value`; each returns its sum.
  int32_t prepare_span(const int8_t* src, std::size_t n, uint8_t* row, std::size_t offset) const {
    return gemm->prepare(src, n, row + offset * element_size);
  }
  int32_t fill_span(int8_t value, std::size_t n, uint8_t* row, std::size_t offset) const;
  // Zeroes elements [k, kpad) of a prepared row.
  void pad_row(uint8_t* row) const;
  // Computes output rows [0, rows) for tiles [tile_begin, tile_end). Row r reads prepared row
  // xprep + r * x_stride (row_stride when 0) and sums + r * sums_per_row, and writes
  // out + r * out_stride elements of the output type. Another x_stride lets a caller hand rows
  // that need no preparation in place (Conv2D's pointwise rows: XFormat::kInt8, kpad == k).
  void compute(const uint8_t* xprep, const int32_t* sums, std::size_t rows,
               std::size_t tile_begin, std::size_t tile_end, void* out,
               std::size_t out_stride, std::size_t x_stride = 0) const;

  // The epilogue of one output row segment: channels [c0, c0 + nc) from acc[0..nc).
  void epilogue_row(const int32_t* acc, int32_t row_sum, std::size_t c0, std::size_t nc,
                    void* out, std::size_t orow) const;

  // The bytes of the plan's own per-channel tables, built once from the weights: bias terms,
  // weight zero points, requantisation tables, float scales, the fused kernel's per-tile
  // tables and the per-group scales and terms. Not the packed codes (a view: their owner
  // counts them) nor FullyConnected's workspace (grown by reserve(), a run-time buffer).
  std::size_t prepared_bytes() const;

  const char* kernel_name(std::size_t m) const {
    return m == 1 ? gemm->gemv.name : use_qs8 ? qs8_kernel->name : gemm->gemm.name;
  }

  // Weights
  const uint8_t* data = nullptr;
  WeightType type = WeightType::kInt8;
  int32_t n = 0, k = 0;
  std::size_t kb = 0, kblocks = 0, ntiles = 0, kpad = 0;
  // Kernels
  Isa isa = Isa::kScalar;
  const IsaKernels* kernels = nullptr;
  const GemmKernels* gemm = nullptr;
  XFormat xformat = XFormat::kInt8;
  std::size_t row_stride = 0;  // bytes per prepared row (64-byte multiple)
  std::size_t element_size = 1;  // bytes per prepared activation (2 for XFormat::kInt16)
  std::size_t sums_per_row = 1;
  // Epilogue
  OutputType output_type = OutputType::kInt8;
  int32_t input_zero_point = 0;
  std::vector<int32_t> bias_term, wzp;  // padded to 16*ntiles
  RequantTables requant;
  std::vector<float> scale;
  EpilogueParams epilogue{};
  // The fused int8 -> int8 kernel (IsaKernels::gemm_qs8), used for calls of >= 2 rows.
  bool use_qs8 = false;
  const GemmQs8Kernel* qs8_kernel = nullptr;
  std::vector<RequantEvenOdd> qs8_tiles;
  GemmQs8Params qs8{};
  void build_qs8();
  // Per-group scales
  int32_t group_size = 0, groups = 0;
  std::size_t blocks_per_group = 0;
  std::vector<float> group_scale;  // [n][groups]
  std::vector<int32_t> group_term;  // [n][groups]
  std::vector<int32_t> bias_raw;    // [n]
  float output_scale = 1.0f;
  // FullyConnected's prepared-activation workspace (Conv2D keeps per-thread ones).
  AlignedBuffer<uint8_t> workspace;
  AlignedBuffer<int32_t> workspace_sums;
  std::size_t workspace_rows = 0;
  // FullyConnected's last split_work answer, for split_rows rows on split_threads threads.
  WorkSplit split;
  std::size_t split_rows = 0;
  int split_threads = 0;
};

}  // namespace detail
}  // namespace edge
