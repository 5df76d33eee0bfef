#include "kernels/gemm_plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "edge/kernels/requant.h"
#include "kernels/registry.h"

namespace edge {
namespace detail {
void RequantTables::build(const LayerOptions& options, int32_t n, std::size_t padded,
                          const float* scales, int32_t num_scales, bool per_tensor_fc_rule,
                          Rounding rounding) {
  multiplier.assign(padded, 0);
  left_shift.assign(padded, 0);
  right_shift.assign(padded, 0);
  fill_multipliers(options, n, scales, num_scales, per_tensor_fc_rule, multiplier.data(),
                   left_shift.data(), right_shift.data());
  derive(rounding);
}

void RequantTables::derive(Rounding rounding) {
  const std::size_t padded = multiplier.size();
  // The 64-bit form. Double rounding first floors a = v*m + 2^30 by 2^31 (q), then rounds q by
  // 2^rs. With a = j 2^(31+rs) + i 2^31 + r (0 <= r < 2^31), adding 2^(30+rs) to a instead of to
  // q shifts only the i 2^31 part, so the remainder r never changes the floor:
  //   floor((q + 2^(rs-1)) / 2^rs) = floor((a + 2^(30+rs)) / 2^(31+rs))      (ties up, rs > 0)
  // and ties away subtracts 1 from negative q first, i.e. 2^31 from a when a < 0 (p < -2^30).
  pre_shift.assign(padded, 0);
  rounding_add.assign(padded, 0);
  total_shift.assign(padded, 31);
  negative_add.assign(padded, 0);
  saturate = 0;
  for (std::size_t c = 0; c < padded; ++c) {
    const int64_t ls = left_shift[c], rs = right_shift[c];
    if (rounding == Rounding::kSingle) {
      total_shift[c] = 31 - ls + rs;
      rounding_add[c] = int64_t{1} << (total_shift[c] - 1);
      saturate = saturate || ls > 0;
    } else {
      pre_shift[c] = static_cast<int32_t>(ls);
      total_shift[c] = 31 + rs;
      rounding_add[c] = (int64_t{1} << 30) + (rs > 0 ? int64_t{1} << (30 + rs) : 0);
      if (rounding == Rounding::kAwayFromZero && rs > 0) negative_add[c] = -(int64_t{1} << 31);
    }
  }
}

void RequantTables::zeros(std::size_t padded) {
  multiplier.assign(padded, 0);
  left_shift.assign(padded, 0);
  right_shift.assign(padded, 0);
  pre_shift.assign(padded, 0);
  rounding_add.assign(padded, 0);
  total_shift.assign(padded, 31);
  negative_add.assign(padded, 0);
  saturate = 0;
}

void RequantTables::attach(EpilogueParams& p) const {
  p.multiplier = multiplier.data();
  p.left_shift = left_shift.data();
  p.right_shift = right_shift.data();
  p.pre_shift = pre_shift.data();
  p.rounding_add = rounding_add.data();
  p.total_shift = total_shift.data();
  p.negative_add = negative_add.data();
  p.saturate = saturate;
}

std::size_t RequantTables::bytes() const {
  return vector_bytes(multiplier) + vector_bytes(left_shift) + vector_bytes(right_shift) +
         vector_bytes(pre_shift) + vector_bytes(rounding_add) + vector_bytes(total_shift) +
         vector_bytes(negative_add);
}

std::size_t packed_weights_bytes(const PackedWeights* w) {
  if (w == nullptr) return 0;
  return w->data().size() + vector_bytes(w->zero_points()) + vector_bytes(w->scales()) +
         vector_bytes(w->group_scales());
}

std::size_t GemmPlan::prepared_bytes() const {
  return vector_bytes(bias_term) + vector_bytes(wzp) + requant.bytes() + vector_bytes(scale) +
         vector_bytes(qs8_tiles) + vector_bytes(group_scale) + vector_bytes(group_term) +
         vector_bytes(bias_raw);
}

namespace {

std::size_t round_up(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }

uint32_t u(int32_t v) { return static_cast<uint32_t>(v); }
int32_t s(uint32_t v) { return static_cast<int32_t>(v); }

}  // namespace

// Clamp of a float output in real units, from the fused activation.
void float_clamp(Activation act, float* lo, float* hi) {
  *lo = -std::numeric_limits<float>::infinity();
  *hi = std::numeric_limits<float>::infinity();
  switch (act) {
    case Activation::kNone: break;
    case Activation::kRelu: *lo = 0.0f; break;
    case Activation::kRelu6: *lo = 0.0f; *hi = 6.0f; break;
    case Activation::kReluN1To1: *lo = -1.0f; *hi = 1.0f; break;
  }
}

ClampRange output_clamp(const LayerOptions& options) {
  const ClampRange range = options.clamp ? *options.clamp
                                         : activation_range(options.activation, options.output);
  if (range.min > range.max || range.min < -128 || range.max > 127) {
    throw std::invalid_argument("output clamp [" + std::to_string(range.min) + ", " +
                                std::to_string(range.max) + "] is not a valid int8 range");
  }
  return range;
}

void fill_multipliers(const LayerOptions& options, int32_t n, const float* scales,
                      int32_t num_scales, bool per_tensor_fc_rule, int32_t* multiplier,
                      int32_t* left_shift, int32_t* right_shift) {
  if (!(options.output.scale > 0.0f)) {
    throw std::invalid_argument("output scale must be > 0 for int8 output");
  }
  for (int32_t c = 0; c < n; ++c) {
    const float ws = scales[num_scales == 1 ? 0 : c];
    QuantizedMultiplier qm;
    if (options.multipliers != nullptr) {
      qm = options.multipliers[num_scales == 1 ? 0 : c];
    } else if (num_scales == 1 && per_tensor_fc_rule) {
      qm = quantize_multiplier(
          fc_per_tensor_effective_scale(options.input.scale, ws, options.output.scale));
    } else {
      qm = quantize_multiplier(conv_effective_scale(options.input.scale, ws, options.output.scale));
    }
    if (qm.shift > 30 || qm.shift < -31 || qm.multiplier < 0) {
      throw std::invalid_argument("requantisation multiplier of channel " + std::to_string(c) +
                                  " is out of range (shift " + std::to_string(qm.shift) + ")");
    }
    multiplier[c] = qm.multiplier;
    left_shift[c] = qm.shift > 0 ? qm.shift : 0;
    right_shift[c] = qm.shift > 0 ? 0 : -qm.shift;
  }
}

namespace {

// round half away from zero, limited to +-2^20 so that adding a zero point cannot overflow
// (the int8 clamp follows).
int32_t round_to_int(float v) {
  float r = std::round(v);
  r = r < -1048576.0f ? -1048576.0f : r;
  r = r > 1048576.0f ? 1048576.0f : r;
  return static_cast<int32_t>(r);
}

}  // namespace

const GemmQs8Kernel& gemm_qs8_for(Isa isa, const IsaKernels& kernels, WeightType type,
                                  std::size_t depth) {
  // The tier's other weight types are VNNI's entries already (isa.cc's with_base).
  if (isa == Isa::kAvx512Amx && !on_amx_tiles(isa, type, depth)) {
    return isa_kernels(Isa::kAvx512Vnni).gemm_qs8[static_cast<int>(type)];
  }
  return kernels.gemm_qs8[static_cast<int>(type)];
}

std::size_t task_cost(std::size_t rows, std::size_t tiles, std::size_t mr) {
  return tiles * (rows + 2 * ((rows + mr - 1) / mr));
}

std::size_t busiest_thread_work(const WorkSplit& split, std::size_t rows, std::size_t tiles,
                                std::size_t mr, int threads) {
  const std::size_t n = static_cast<std::size_t>(std::max(threads, 1));
  const std::size_t tasks = split.tasks();
  std::size_t most = 0;
  for (std::size_t t = 0; t < n; ++t) {
    std::size_t work = 0;
    for (std::size_t i = tasks * t / n; i < tasks * (t + 1) / n; ++i) {
      const std::size_t r0 = split.row_block_of(i) * split.row_block;
      const std::size_t c0 = split.tile_chunk_of(i) * split.tile_chunk;
      work += task_cost(std::min(rows, r0 + split.row_block) - r0,
                        std::min(tiles, c0 + split.tile_chunk) - c0, mr);
    }
    most = std::max(most, work);
  }
  return most;
}

bool shares_lines(const WorkSplit& split, std::size_t row_bytes, std::size_t tile_bytes) {
  return split.tile_chunks > 1 && (row_bytes % 64 != 0 || split.tile_chunk * tile_bytes % 64 != 0);
}

WorkSplit split_work(std::size_t rows, std::size_t tiles, std::size_t mr, int threads,
                     std::size_t max_row_block, std::size_t row_bytes, std::size_t tile_bytes) {
  WorkSplit w;
  if (rows == 0 || tiles == 0) return w;
  mr = std::max<std::size_t>(mr, 1);
  if (threads <= 1) {
    w.row_block = std::min(rows, max_row_block);
    w.row_blocks = (rows + w.row_block - 1) / w.row_block;
    w.tile_chunk = tiles;
    w.tile_chunks = 1;
    return w;
  }
  // Every split into equal row blocks (as few as max_row_block allows, then more; each count
  // with blocks of ceil(rows / count) rows and of that rounded up to whole mr) and equal tile
  // chunks, up to 8 tasks per thread (one chunk always): at least 4 tasks per thread where the
  // shape has them (threads that run take a late one's tasks), then the least cost of the
  // busiest thread, half as much again where chunks share output cache lines, then fewer tasks.
  //
  // Whole rows per task wherever the rows give every thread a kernel call of mr rows: a thread
  // then writes every channel of its rows, and the next layer's task on the same thread (a
  // depthwise or 1x1 layer split by rows too, parallel_for's contiguous shares) reads what its
  // own core wrote, not half of its input from the other core's cache (a 10x10 -> 384 1x1
  // layer split in two 192-channel halves made the next depthwise read half its input across;
  // where a VM's two vCPUs sit on different dies a line crosses in 344 ns instead of 71). The
  // task count asked for is then also at most one per 2 mr rows: a 5x5 output (25 rows) runs
  // as 13 + 12 rows, not 9 tasks of 3 rows, each a kernel call that streams all the weights.
  const std::size_t n = static_cast<std::size_t>(threads);
  const bool whole_rows = rows >= n * mr;
  const std::size_t want = whole_rows ? std::min(4 * n, std::max(n, rows / (2 * mr)))
                                      : std::min(4 * n, rows * tiles);
  const std::size_t most = std::min(rows, std::max(mr, max_row_block / mr * mr));
  const std::size_t fewest = (rows + most - 1) / most;
  WorkSplit best;
  std::size_t best_score = 0;
  for (std::size_t blocks = fewest; blocks <= std::min(rows, std::max(fewest, 2 * want));
       ++blocks) {
    const std::size_t exact = (rows + blocks - 1) / blocks;
    for (std::size_t row_block : {exact, std::min(most, (exact + mr - 1) / mr * mr)}) {
      WorkSplit c;
      c.row_block = row_block;
      c.row_blocks = (rows + row_block - 1) / row_block;
      if (c.row_blocks != blocks) continue;  // not this many blocks of this size
      for (std::size_t chunks = 1; chunks <= tiles; ++chunks) {
        c.tile_chunk = (tiles + chunks - 1) / chunks;
        c.tile_chunks = (tiles + c.tile_chunk - 1) / c.tile_chunk;
        if (c.tile_chunks != chunks) continue;
        if (chunks > 1 && (whole_rows || c.tasks() > 2 * want)) break;
        const std::size_t work = busiest_thread_work(c, rows, tiles, mr, threads);
        const std::size_t score = shares_lines(c, row_bytes, tile_bytes) ? work * 3 : work * 2;
        const std::size_t tasks = c.tasks(), best_tasks = best.tasks();
        // Enough tasks first (a split of one task per thread waits for a descheduled thread's
        // whole share: measured with one busy process, the MobileNet-like model went from 1.1
        // to 2.0 ms on 2 threads), then the score, then fewer tasks.
        const bool enough = tasks >= want, best_enough = best_tasks >= want;
        const bool better =
            best.tile_chunks == 0 || (enough && !best_enough) ||
            (enough == best_enough &&
             (score < best_score || (score == best_score && (enough ? tasks < best_tasks
                                                                    : tasks > best_tasks))));
        if (better) {
          best = c;
          best_score = score;
        }
      }
    }
  }
  return best;
}

GemmPlan::GemmPlan(const PackedWeightsView& w, const LayerOptions& options,
                   bool per_tensor_fc_rule) {
  w.validate();
  if (options.input.zero_point < -128 || options.input.zero_point > 127 ||
      options.output.zero_point < -128 || options.output.zero_point > 127) {
    throw std::invalid_argument("input/output zero points must be in [-128, 127]");
  }
  data = w.data;
  type = w.type;
  n = w.n;
  k = w.k;
  kb = static_cast<std::size_t>(block_k(type));
  kblocks = k_blocks(type, static_cast<std::size_t>(k));
  ntiles = n_tiles(static_cast<std::size_t>(n));
  kpad = kblocks * kb;

  isa = resolve_isa(options.isa);
  kernels = &isa_kernels(isa);
  gemm = &kernels->gemm[static_cast<int>(type)];
  xformat = gemm->xformat;
  element_size = xformat_bytes(xformat);
  row_stride = round_up(kpad * element_size, 64);

  output_type = options.output_type;
  input_zero_point = options.input.zero_point;
  output_scale = options.output.scale;
  const bool grouped = w.group_size > 0;
  if (grouped && output_type == OutputType::kInt32) {
    throw std::invalid_argument(
        "weights with per-group scales have no single int32 accumulator: use int8 or float32 "
        "output");
  }

  // Per-channel code sums (over the real K) and, for groups, per-group sums.
  const std::size_t padded = ntiles * kTileN;
  std::vector<int32_t> csum(static_cast<std::size_t>(n), 0);
  groups = grouped ? w.num_groups() : 0;
  group_size = grouped ? w.group_size : 0;
  blocks_per_group = grouped ? static_cast<std::size_t>(group_size) / kb : 0;
  std::vector<int32_t> gsum(grouped ? static_cast<std::size_t>(n) * groups : 0, 0);
  for (int32_t c = 0; c < n; ++c) {
    int32_t total = 0;
    for (int32_t kk = 0; kk < k; ++kk) {
      const uint8_t code = w.code(c, kk);
      const int32_t v = type == WeightType::kInt8 ? static_cast<int8_t>(code) : code;
      total += v;
      if (grouped) gsum[static_cast<std::size_t>(c) * groups + kk / group_size] += v;
    }
    csum[c] = total;
  }

  const int32_t xz = options.input.zero_point;
  const bool xor80 = xformat == XFormat::kUint8;
  bool any_wzp = false;
  for (int32_t c = 0; c < n; ++c) any_wzp = any_wzp || w.zero_points[c] != 0;
  wzp.assign(padded, 0);
  bias_term.assign(padded, 0);
  for (int32_t c = 0; c < n; ++c) {
    const int32_t z = w.zero_points[c];
    wzp[c] = z;
    const int32_t bias = options.bias != nullptr ? options.bias[c] : 0;
    uint32_t t = u(bias) - u(xz) * u(csum[c]) + u(k) * u(xz) * u(z);
    if (xor80) t -= 128u * u(csum[c]);
    bias_term[c] = s(t);
  }
  sums_per_row = grouped ? static_cast<std::size_t>(groups) : 1;

  // Float scales: input_scale * weight_scale, formed in float.
  scale.assign(padded, 0.0f);
  for (int32_t c = 0; c < n; ++c) scale[c] = options.input.scale * w.scale(c);

  // Requantisation tables (int8 output without groups; zeros otherwise).
  if (output_type == OutputType::kInt8 && !grouped) {
    requant.build(options, n, padded, w.scales, w.num_scales, per_tensor_fc_rule,
                  options.rounding);
  } else {
    requant.zeros(padded);
  }
  if (output_type == OutputType::kInt8 && !(options.output.scale > 0.0f)) {
    throw std::invalid_argument("output scale must be > 0 for int8 output");
  }
  const ClampRange range = output_clamp(options);
  epilogue.bias = bias_term.data();
  // One zero point for every channel (ternary always, symmetric int4/int2 usually): a broadcast
  // instead of a per-lane multiply in the epilogue.
  bool uniform = true;
  for (int32_t c = 1; c < n; ++c) uniform = uniform && w.zero_points[c] == w.zero_points[0];
  epilogue.wzp = any_wzp && !uniform ? wzp.data() : nullptr;
  epilogue.wzp_uniform = any_wzp && uniform ? w.zero_points[0] : 0;
  requant.attach(epilogue);
  epilogue.scale = scale.data();
  float_clamp(options.activation, &epilogue.float_min, &epilogue.float_max);
  epilogue.out_zero_point = options.output.zero_point;
  epilogue.out_min = range.min;
  epilogue.out_max = range.max;
  epilogue.rounding = static_cast<int32_t>(options.rounding);

  qs8_kernel = &gemm_qs8_for(isa, *kernels, type, static_cast<std::size_t>(k));
  if (output_type == OutputType::kInt8 && !grouped && qs8_kernel->fn != nullptr &&
      requant.saturate == 0) {
    build_qs8();
  }

  if (grouped) {
    group_scale.assign(w.group_scales, w.group_scales + static_cast<std::size_t>(n) * groups);
    group_term.assign(static_cast<std::size_t>(n) * groups, 0);
    for (int32_t c = 0; c < n; ++c) {
      for (int32_t g = 0; g < groups; ++g) {
        const int32_t len = std::min(group_size, k - g * group_size);
        const int32_t cs = gsum[static_cast<std::size_t>(c) * groups + g];
        uint32_t t = u(len) * u(xz) * u(w.zero_points[c]) - u(xz) * u(cs);
        if (xor80) t -= 128u * u(cs);
        group_term[static_cast<std::size_t>(c) * groups + g] = s(t);
      }
    }
    bias_raw.assign(static_cast<std::size_t>(n), 0);
    for (int32_t c = 0; c < n; ++c) bias_raw[c] = options.bias != nullptr ? options.bias[c] : 0;
  }
}

void GemmPlan::build_qs8() {
  qs8_tiles.assign(ntiles, RequantEvenOdd{});
  // The output zero point joins the rounding constant when no shift exceeds 53 (see
  // depthwise_conv2d.cc: the 64-bit sum cannot overflow, and its low dword is the wrapping
  // int32 sum the other epilogues form).
  bool fold_zp = true, any_pre = false, any_neg = false, shift_32_53 = true;
  for (std::size_t c = 0; c < ntiles * kTileN; ++c) {
    fold_zp = fold_zp && requant.total_shift[c] <= 53;
    any_pre = any_pre || requant.pre_shift[c] != 0;
    any_neg = any_neg || requant.negative_add[c] != 0;
    // the padding channels' 31 does not count: their outputs are never stored
    shift_32_53 = shift_32_53 && (c >= static_cast<std::size_t>(n) || requant.total_shift[c] >= 32);
  }
  const int64_t zp = epilogue.out_zero_point;
  for (std::size_t t = 0; t < ntiles; ++t) {
    RequantEvenOdd& eo = qs8_tiles[t];
    for (std::size_t j = 0; j < kTileN; ++j) {
      const std::size_t c = t * kTileN + j;
      const std::size_t e = j % 2, i = j / 2;
      eo.multiplier[e][i] = requant.multiplier[c];
      eo.rounding_add[e][i] =
          requant.rounding_add[c] + (fold_zp ? zp * (int64_t{1} << requant.total_shift[c]) : 0);
      eo.negative_add[e][i] = requant.negative_add[c];
      eo.total_shift[e][i] = requant.total_shift[c];
    }
  }
  qs8.bias = epilogue.bias;
  qs8.wzp = epilogue.wzp;
  qs8.wzp_uniform = epilogue.wzp_uniform;
  qs8.pre_shift = requant.pre_shift.data();
  qs8.tiles = qs8_tiles.data();
  qs8.out_zero_point = fold_zp ? 0 : epilogue.out_zero_point;
  qs8.out_min = epilogue.out_min;
  qs8.out_max = epilogue.out_max;
  qs8.any_pre_shift = any_pre ? 1 : 0;
  qs8.any_negative_add = any_neg ? 1 : 0;
  qs8.shift_32_53 = shift_32_53 && fold_zp ? 1 : 0;  // fold_zp: every shift <= 53
  qs8.multiplier = requant.multiplier.data();
  qs8.left_shift = requant.left_shift.data();
  qs8.right_shift = requant.right_shift.data();
  qs8.rounding = epilogue.rounding;
  qs8.zero_point = epilogue.out_zero_point;
  use_qs8 = true;
}

int32_t GemmPlan::fill_span(int8_t value, std::size_t count, uint8_t* row,
                           std::size_t offset) const {
  switch (xformat) {
    case XFormat::kInt8:
      std::memset(row + offset, static_cast<uint8_t>(value), count);
      break;
    case XFormat::kUint8:
      std::memset(row + offset, static_cast<uint8_t>(value) ^ 0x80u, count);
      break;
    case XFormat::kInt16: {
      int16_t* d = reinterpret_cast<int16_t*>(row) + offset;
      std::fill(d, d + count, static_cast<int16_t>(value));
      break;
    }
  }
  return static_cast<int32_t>(value) * static_cast<int32_t>(count);
}

void GemmPlan::pad_row(uint8_t* row) const {
  const std::size_t kk = static_cast<std::size_t>(k);
  std::memset(row + kk * element_size, 0, (kpad - kk) * element_size);
}

void GemmPlan::prepare_row(const int8_t* x, uint8_t* dst, int32_t* sums) const {
  const std::size_t kk = static_cast<std::size_t>(k);
  const int32_t total = gemm->prepare(x, kk, dst);
  pad_row(dst);
  if (groups == 0) {
    sums[0] = total;
    return;
  }
  for (int32_t g = 0; g < groups; ++g) {
    const std::size_t begin = static_cast<std::size_t>(g) * group_size;
    const std::size_t end = std::min(kk, begin + static_cast<std::size_t>(group_size));
    int32_t part = 0;
    for (std::size_t i = begin; i < end; ++i) part += x[i];
    sums[g] = part;
  }
}

void GemmPlan::epilogue_row(const int32_t* acc, int32_t row_sum, std::size_t c0, std::size_t nc,
                            void* out, std::size_t orow) const {
  switch (output_type) {
    case OutputType::kInt8:
      kernels->requant(nc, acc, row_sum, epilogue, c0, static_cast<int8_t*>(out) + orow);
      break;
    case OutputType::kFloat32:
      kernels->dequant(nc, acc, row_sum, epilogue, c0, static_cast<float*>(out) + orow);
      break;
    case OutputType::kInt32: {
      int32_t* o = static_cast<int32_t*>(out) + orow;
      for (std::size_t c = 0; c < nc; ++c) {
        o[c] = s(u(acc[c]) + u(bias_term[c0 + c]) - u(wzp[c0 + c]) * u(row_sum));
      }
      break;
    }
  }
}

void GemmPlan::compute(const uint8_t* xprep, const int32_t* sums, std::size_t rows,
                       std::size_t tile_begin, std::size_t tile_end, void* out,
                       std::size_t out_stride, std::size_t x_stride) const {
  const std::size_t mr = gemm->gemm.mr;
  const std::size_t xs = x_stride != 0 ? x_stride : row_stride;
  if (use_qs8 && rows >= 2 && output_type == OutputType::kInt8) {
    // Fused: per row group, every tile of the chunk writes its int8 outputs directly.
    const std::size_t qmr = qs8_kernel->mr;
    const std::size_t chunk = std::max<std::size_t>(1, (std::size_t{256} << 10) / (kblocks * kBlockBytes));
    int8_t* out8 = static_cast<int8_t*>(out);
    for (std::size_t t0 = tile_begin; t0 < tile_end; t0 += chunk) {
      const std::size_t t1 = std::min(tile_end, t0 + chunk);
      for (std::size_t r = 0; r < rows; r += qmr) {
        const std::size_t rr = std::min(qmr, rows - r);
        for (std::size_t t = t0; t < t1; ++t) {
          const std::size_t nc = std::min<std::size_t>(kTileN, static_cast<std::size_t>(n) - t * kTileN);
          qs8_kernel->fn(rr, kblocks, data + t * kblocks * kBlockBytes, xprep + r * xs,
                               xs, sums + r * sums_per_row, sums_per_row, qs8, t, nc,
                               out8 + r * out_stride + t * kTileN, out_stride);
        }
      }
    }
    return;
  }
  if (groups == 0) {
    // Tiles in chunks of kBatchTiles; per chunk and row group the micro-kernel fills a buffer
    // for all its tiles, then the epilogue runs over the whole row segment. Requantising tile by
    // tile would put the epilogue's latency (it waits for the tile just stored) on the critical
    // path of every tile; a chunk's weights (<= 32 tiles) stay in L2 across the row groups.
    constexpr std::size_t kBatchTiles = 32;
    // ... and no more tiles than keep their weights within ~256 KB (an int8 tile of K = 4096 is
    // 64 KB): every row group re-reads the chunk, from L2 rather than L3.
    const std::size_t chunk = std::max<std::size_t>(
        1, std::min(kBatchTiles, (std::size_t{256} << 10) / (kblocks * kBlockBytes)));
    alignas(64) int32_t acc[kMaxMr * kBatchTiles * kTileN];
    alignas(64) int32_t tile_acc[kMaxMr * kTileN];
    for (std::size_t t0 = tile_begin; t0 < tile_end; t0 += chunk) {
      const std::size_t t1 = std::min(tile_end, t0 + chunk);
      const std::size_t width = (t1 - t0) * kTileN;
      const std::size_t c0 = t0 * kTileN;
      const std::size_t nc = std::min(t1 * kTileN, static_cast<std::size_t>(n)) - c0;
      for (std::size_t r = 0; r < rows;) {
        const std::size_t rr = std::min(mr, rows - r);
        const GemmKernel& kern = rr == 1 ? gemm->gemv : gemm->gemm;
        const uint8_t* xr = xprep + r * xs;
        for (std::size_t t = t0; t < t1; ++t) {
          const uint8_t* wt = data + t * kblocks * kBlockBytes;
          if (rr == 1) {  // [1][16] is already the layout of a single buffered row
            kern.fn(1, kblocks, wt, xr, xs, acc + (t - t0) * kTileN);
            continue;
          }
          kern.fn(rr, kblocks, wt, xr, xs, tile_acc);
          for (std::size_t i = 0; i < rr; ++i) {
            std::memcpy(acc + i * width + (t - t0) * kTileN, tile_acc + i * kTileN,
                        kTileN * sizeof(int32_t));
          }
        }
        for (std::size_t i = 0; i < rr; ++i) {
          epilogue_row(acc + i * width, sums[(r + i) * sums_per_row], c0, nc, out,
                       (r + i) * out_stride + c0);
        }
        r += rr;
      }
    }
    return;
  }
  alignas(64) int32_t acc[kMaxMr * kTileN];
  alignas(64) float facc[kMaxMr * kTileN];
  const std::size_t esize = element_size;
  for (std::size_t t = tile_begin; t < tile_end; ++t) {
    const uint8_t* wt = data + t * kblocks * kBlockBytes;
    const std::size_t c0 = t * kTileN;
    const std::size_t nc = std::min<std::size_t>(kTileN, static_cast<std::size_t>(n) - c0);
    for (std::size_t r = 0; r < rows;) {
      const std::size_t rr = std::min(mr, rows - r);
      const GemmKernel& kern = rr == 1 ? gemm->gemv : gemm->gemm;
      const uint8_t* xr = xprep + r * xs;
      // Per-group scales: each group's exact int32 sum is scaled and added in float, in group
      // order, with separate multiply and add (no FMA), so every ISA rounds identically.
      std::fill(facc, facc + rr * kTileN, 0.0f);
      for (int32_t g = 0; g < groups; ++g) {
        const std::size_t b0 = static_cast<std::size_t>(g) * blocks_per_group;
        const std::size_t nb = std::min(blocks_per_group, kblocks - b0);
        kern.fn(rr, nb, wt + b0 * kBlockBytes, xr + b0 * kb * esize, xs, acc);
        for (std::size_t i = 0; i < rr; ++i) {
          const int32_t rs = sums[(r + i) * sums_per_row + static_cast<std::size_t>(g)];
          for (std::size_t c = 0; c < nc; ++c) {
            const std::size_t gi = (c0 + c) * static_cast<std::size_t>(groups) +
                                   static_cast<std::size_t>(g);
            const int32_t v = s(u(acc[i * kTileN + c]) + u(group_term[gi]) -
                                u(wzp[c0 + c]) * u(rs));
            const float prod = group_scale[gi] * static_cast<float>(v);
            facc[i * kTileN + c] = facc[i * kTileN + c] + prod;
          }
        }
      }
      for (std::size_t i = 0; i < rr; ++i) {
        const std::size_t orow = (r + i) * out_stride + c0;
        for (std::size_t c = 0; c < nc; ++c) {
          const float sum = static_cast<float>(bias_raw[c0 + c]) + facc[i * kTileN + c];
          float real = sum * scale[c0 + c];
          if (output_type == OutputType::kFloat32) {
            real = real < epilogue.float_min ? epilogue.float_min : real;
            real = real > epilogue.float_max ? epilogue.float_max : real;
            static_cast<float*>(out)[orow + c] = real;
          } else {
            int32_t q = round_to_int(real / output_scale) + epilogue.out_zero_point;
            q = std::min(std::max(q, epilogue.out_min), epilogue.out_max);
            static_cast<int8_t*>(out)[orow + c] = static_cast<int8_t>(q);
          }
        }
      }
      r += rr;
    }
  }
}

}  // namespace detail
}  // namespace edge
