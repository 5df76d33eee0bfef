// Element-wise int8 operators: ADD, MUL (with numpy broadcasting), LOGISTIC, HARD_SWISH,
// QUANTIZE, DEQUANTIZE. Each computes exactly what LiteRT's builtin int8 kernel computes; the
// comments say which TFLite routine (and which of its rounding rules) an expression follows.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "edge/kernels/elementwise.h"
#include "edge/kernels/kernel_name.h"
#include "fixed_point.h"
#include "litert_compat.h"
#include "op_kernel.h"

namespace edge {
namespace runtime {
namespace {

// ---------------------------------------------------------------- broadcasting
// Two shapes broadcast numpy-style (aligned at the right; a dimension of 1 repeats).
struct BroadcastPlan {
  std::vector<int64_t> dims;      // output dims
  std::vector<int64_t> stride_a;  // element strides of a and b per output dim (0: repeated)
  std::vector<int64_t> stride_b;
  bool trivial = true;            // same shapes: a flat loop
  int64_t count = 1;
};

// The two inputs' dimensions aligned at the right, missing leading dimensions as 1.
std::pair<std::vector<int64_t>, std::vector<int64_t>> aligned_dims(const Tensor& a,
                                                                   const Tensor& b) {
  const std::size_t rank = std::max(a.shape.size(), b.shape.size());
  std::vector<int64_t> da(rank, 1), db(rank, 1);
  std::copy(a.shape.begin(), a.shape.end(), da.begin() + (rank - a.shape.size()));
  std::copy(b.shape.begin(), b.shape.end(), db.begin() + (rank - b.shape.size()));
  return {da, db};
}

BroadcastPlan plan_broadcast(const PrepareContext& ctx, const Tensor& a, const Tensor& b,
                             const Tensor& out) {
  BroadcastPlan p;
  const auto [da, db] = aligned_dims(a, b);
  const std::size_t rank = da.size();
  p.dims.resize(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    if (da[i] != db[i] && da[i] != 1 && db[i] != 1) {
      throw ctx.error("input shapes ", shape_str(a.shape), " and ", shape_str(b.shape),
                      " do not broadcast");
    }
    p.dims[i] = da[i] == 1 ? db[i] : da[i];
  }
  std::vector<int32_t> expect(p.dims.begin(), p.dims.end());
  if (expect != out.shape) {
    throw ctx.error("output shape ", shape_str(out.shape), " should be ", shape_str(expect),
                    " (the broadcast of the inputs)");
  }
  p.trivial = a.shape == b.shape;
  p.stride_a.assign(rank, 0);
  p.stride_b.assign(rank, 0);
  int64_t sa = 1, sb = 1;
  for (std::size_t i = rank; i-- > 0;) {
    p.stride_a[i] = da[i] == 1 ? 0 : sa;
    p.stride_b[i] = db[i] == 1 ? 0 : sb;
    sa *= da[i];
    sb *= db[i];
    p.count *= p.dims[i];
  }
  return p;
}

// Calls f(out_index, a_index, b_index) for every output element, in row-major order.
template <typename F>
void for_each_broadcast(const BroadcastPlan& p, F&& f) {
  if (p.trivial) {
    for (int64_t i = 0; i < p.count; ++i) f(i, i, i);
    return;
  }
  const std::size_t rank = p.dims.size();
  if (p.count == 0) return;
  std::vector<int64_t> idx(rank, 0);
  int64_t ia = 0, ib = 0;
  for (int64_t o = 0; o < p.count; ++o) {
    f(o, ia, ib);
    for (std::size_t d = rank; d-- > 0;) {
      ++idx[d];
      ia += p.stride_a[d];
      ib += p.stride_b[d];
      if (idx[d] < p.dims[d]) break;
      ia -= p.stride_a[d] * p.dims[d];
      ib -= p.stride_b[d] * p.dims[d];
      idx[d] = 0;
    }
  }
}

// ---------------------------------------------------------------- binary op walking
// TFLite's ProcessBroadcastShapes: same shapes run one flat loop; shapes that fold into
// "five-fold" form (y0 x y1 x y2 x y3 x y4 with one input broadcast along y1 and y3) run the
// element-wise loop on contiguous runs; anything else runs the generic (scalar) loop.
FiveFold five_fold(const Tensor& a, const Tensor& b) {
  FiveFold f;
  const auto [da, db] = aligned_dims(a, b);
  const std::size_t rank = da.size();
  if (da == db) return f;  // kNonBroadcast
  f.category = BroadcastCategory::kGeneric;
  for (std::size_t k = rank; k-- > 0;) {
    if (da[k] == db[k]) continue;
    if (da[k] == 1) {
      f.category = BroadcastCategory::kFirstFast;
    } else if (db[k] == 1) {
      f.category = BroadcastCategory::kSecondFast;
    } else {
      return f;
    }
    break;
  }
  const bool swap = f.category == BroadcastCategory::kSecondFast;
  const std::vector<int64_t>& sa = swap ? db : da;  // the input that broadcasts fast
  const std::vector<int64_t>& sb = swap ? da : db;
  int64_t i = static_cast<int64_t>(rank) - 1;
  while (i >= 0 && sa[i] == sb[i]) f.y[4] *= sb[i--];
  while (i >= 0 && sa[i] == 1) f.y[3] *= sb[i--];
  while (i >= 0 && sa[i] == sb[i]) f.y[2] *= sa[i--];
  while (i >= 0 && sb[i] == 1) f.y[1] *= sa[i--];
  while (i >= 0 && sa[i] == sb[i]) f.y[0] *= sb[i--];
  if (i >= 0) f.category = BroadcastCategory::kGeneric;
  return f;
}

// Per-input quantisation of a binary op, in the roles TFLite's params give them.
struct Side {
  int32_t offset = 0;
  int32_t multiplier = 0;
  int shift = 0;
};

// A binary int8 op has only 256 x 256 possible input pairs, so each per-element function is
// tabulated once at prepare time (64 KiB per table) and the run is a table lookup per element:
// exact by construction, and fast whatever the fixed-point arithmetic costs. One table per loop
// of LiteRT's that this op's shapes make it run (vector loop, scalar code, scalar-broadcast
// vector loop). Tables are indexed by the pair in the op's own input order.
struct PairTables {
  std::vector<int8_t> vec, ref, vec_scalar;
  std::size_t bytes() const { return vec.size() + ref.size() + vec_scalar.size(); }
};
inline std::size_t pair_index(int8_t a, int8_t b) {
  return (static_cast<std::size_t>(static_cast<uint8_t>(a)) << 8) | static_cast<uint8_t>(b);
}

// Which of the three loops runs for these shapes (LiteRT's BroadcastDispatch logic).
struct LoopsUsed {
  bool vec = false, ref = false, vec_scalar = false;
};
LoopsUsed loops_used(const FiveFold& f, int64_t count, int block, int scalar_block) {
  LoopsUsed u;
  auto runs = [&](int64_t n, int b, bool* vector) {
    if (n >= b) *vector = true;
    if (n % b != 0) u.ref = true;
  };
  switch (f.category) {
    case BroadcastCategory::kNonBroadcast: runs(count, block, &u.vec); break;
    case BroadcastCategory::kGeneric: u.ref = true; break;
    default:
      if (f.y[4] > 1) {
        runs(f.y[4], block, &u.vec);
      } else {
        runs(f.y[3], scalar_block, &u.vec_scalar);
      }
  }
  return u;
}

template <typename Impl>
PairTables build_tables(const Impl& impl, const LoopsUsed& used, const Side& sa, const Side& sb) {
  PairTables t;
  auto fill = [&](std::vector<int8_t>& table, auto fn) {
    table.resize(256 * 256);
    for (int a = -128; a <= 127; ++a) {
      for (int b = -128; b <= 127; ++b) {
        const auto x = static_cast<int8_t>(a), y = static_cast<int8_t>(b);
        table[pair_index(x, y)] = fn(x, y);
      }
    }
  };
  if (used.vec) fill(t.vec, [&](int8_t x, int8_t y) { return impl.vec(x, y, sa, sb); });
  if (used.ref) fill(t.ref, [&](int8_t x, int8_t y) { return impl.ref(x, y, sa, sb); });
  if (used.vec_scalar) {
    fill(t.vec_scalar, [&](int8_t x, int8_t y) { return impl.vec_scalar(x, y, sa, sb); });
  }
  return t;
}

// What runs LiteRT's element-wise vector loop: a SIMD kernel computing its arithmetic
// (edge/kernels/elementwise.h), or, where the ISA or the op has none, the `vec` pair table.
struct VecKernel {
  QS8VAddFn fn = nullptr;
  QS8AddParams params{};
};

// Elements [begin, end) of an n-element flat run of LiteRT's element-wise loop: `for (; i <=
// size - B; i += B)` vector loop, then the scalar loop for the rest; x and y are the op's first
// and second input.
inline void elementwise_range(const PairTables& t, const VecKernel& vk, int block, int64_t n,
                              int64_t begin, int64_t end, const int8_t* x, const int8_t* y,
                              int8_t* o) {
  const int64_t vec_end = std::min(end, n - n % block);
  int64_t i = begin;
  if (i < vec_end) {
    if (vk.fn != nullptr) {
      vk.fn(static_cast<std::size_t>(vec_end - i), x + i, y + i, vk.params, o + i);
      i = vec_end;
    } else {
      for (; i < vec_end; ++i) o[i] = t.vec[pair_index(x[i], y[i])];
    }
  }
  for (; i < end; ++i) o[i] = t.ref[pair_index(x[i], y[i])];
}

// Walks a binary op exactly as LiteRT's optimized kernel does (flat loop, five-fold broadcast
// or generic broadcast), taking each element from the loop LiteRT would use. The flat loop and
// the five-fold runs are split among the pool's threads (each element's loop depends only on
// its position, so any split gives the same bytes); the generic and scalar-broadcast walks,
// rare and small, stay on one thread.
inline void run_binary(const PairTables& t, const VecKernel& vk, const FiveFold& f,
                       const BroadcastPlan& plan, int block, int scalar_block, const int8_t* a,
                       const int8_t* b, int8_t* out, ThreadPool* pool) {
  switch (f.category) {
    case BroadcastCategory::kNonBroadcast:
      // Ranges of whole 64-byte lines: no two threads write one cache line.
      parallel_ranges(pool, plan.count, 64, kMinParallelFlatBytes,
                      [&](int64_t begin, int64_t end, int) {
                        elementwise_range(t, vk, block, plan.count, begin, end, a, b, out);
                      });
      return;
    case BroadcastCategory::kGeneric:
      for_each_broadcast(plan, [&](int64_t o, int64_t ia, int64_t ib) {
        out[o] = t.ref[pair_index(a[ia], b[ib])];
      });
      return;
    default:
      break;
  }
  // BinaryBroadcastFiveFold: "input 1" is the one that broadcasts along y3 (and y1).
  const bool first = f.category == BroadcastCategory::kFirstFast;
  const int8_t* in1 = first ? a : b;
  const int8_t* in2 = first ? b : a;
  const int64_t y0 = f.y[0], y1 = f.y[1], y2 = f.y[2], y3 = f.y[3], y4 = f.y[4];
  if (y4 > 1) {
    // Run r = ((i0 * y1 + i1) * y2 + i2) * y3 + i3 of y4 elements reads input 1 at
    // ((i0 * y1 + i1) * y2 + i2) * y4 and input 2 at ((i0 * y2 + i2) * y3 + i3) * y4 (LiteRT's
    // pointer walk, written in closed form so that any range of runs can start anywhere).
    const int64_t runs = y0 * y1 * y2 * y3;
    const int64_t min_runs = std::max<int64_t>(1, kMinParallelBytes / y4);
    const int64_t align = std::max<int64_t>(1, 64 / y4);
    parallel_ranges(pool, runs, align, min_runs, [&](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t i3 = r % y3, i2 = r / y3 % y2, i1 = r / (y3 * y2) % y1,
                      i0 = r / (y3 * y2 * y1);
        const int8_t* p1 = in1 + ((i0 * y1 + i1) * y2 + i2) * y4;
        const int8_t* p2 = in2 + ((i0 * y2 + i2) * y3 + i3) * y4;
        int8_t* o = out + r * y4;
        if (first) {
          elementwise_range(t, vk, block, y4, 0, y4, p1, p2, o);
        } else {
          elementwise_range(t, vk, block, y4, 0, y4, p2, p1, o);
        }
      }
    });
    return;
  }
  int8_t* o = out;
  const int8_t* p1 = in1;
  const int8_t* reset2 = in2;
  const int64_t vec_end = y3 - y3 % scalar_block;
  for (int64_t i0 = 0; i0 < y0; ++i0) {
    const int8_t* p2 = nullptr;
    for (int64_t i1 = 0; i1 < y1; ++i1) {
      p2 = reset2;
      for (int64_t i2 = 0; i2 < y2; ++i2) {
        const int8_t s = *p1;
        for (int64_t i = 0; i < y3; ++i) {
          const std::size_t k = first ? pair_index(s, p2[i]) : pair_index(p2[i], s);
          o[i] = i < vec_end ? t.vec_scalar[k] : t.ref[k];
        }
        p2 += y3;
        o += y3;
        p1 += 1;
      }
    }
    reset2 = p2;
  }
}

// The walks by name (docs/kernels.md): ADD and MUL through their pair tables (ADD's vector loop
// through the ISA's qs8_vadd kernel where the ISA has one, VecKernel).
void qs8_vadd_lut__scalar(const PairTables& t, const VecKernel& vk, const FiveFold& f,
                          const BroadcastPlan& plan, int block, int scalar_block, const int8_t* a,
                          const int8_t* b, int8_t* out, ThreadPool* pool) {
  run_binary(t, vk, f, plan, block, scalar_block, a, b, out, pool);
}
void qs8_vmul_lut__scalar(const PairTables& t, const VecKernel& vk, const FiveFold& f,
                          const BroadcastPlan& plan, int block, int scalar_block, const int8_t* a,
                          const int8_t* b, int8_t* out, ThreadPool* pool) {
  run_binary(t, vk, f, plan, block, scalar_block, a, b, out, pool);
}

// ---------------------------------------------------------------- ADD
// TFLite int8 ADD: both inputs are brought to a common scale (twice the larger input scale) with
// 20 bits of headroom, added, and rescaled to the output ("general rescaling" path).
struct AddImpl {
  static constexpr auto* kKernel = &qs8_vadd_lut__scalar;
  static constexpr const char* kName = EDGE_KERNEL_NAME(qs8_vadd_lut__scalar);
  static constexpr bool kHasVecKernel = true;
  static constexpr int kLeftShift = 20;
  static constexpr int kElementwiseBlock = 16;  // AddElementwiseInt8
  static constexpr int kScalarBlock = 8;        // AddScalarBroadcast
  QuantizedMultiplier out;
  int32_t out_offset = 0, act_min = -128, act_max = 127;

  int8_t finish_vec(int32_t sum) const {
    int32_t s = lanes::qrdmulh(sum, out.multiplier);
    s = lanes::rdbp(s, -out.shift);
    const int16_t t = lanes::wrap16(lanes::wrap16(s) + out_offset);  // vmovn, then vaddq_s16
    const int32_t r = lanes::sat8(t);                                 // vqmovn_s16
    return static_cast<int8_t>(std::min(std::max(r, act_min), act_max));
  }
  int8_t ref(int8_t a, int8_t b, const Side& sa, const Side& sb) const {
    const int32_t xa = multiply_by_quantized_multiplier(
        (sa.offset + a) * (1 << kLeftShift), sa.multiplier, sa.shift, kScalarRounding);
    const int32_t xb = multiply_by_quantized_multiplier(
        (sb.offset + b) * (1 << kLeftShift), sb.multiplier, sb.shift, kScalarRounding);
    const int32_t raw = multiply_by_quantized_multiplier(xa + xb, out.multiplier, out.shift,
                                                         kScalarRounding);
    return clamp8_add(raw, out_offset, act_min, act_max);
  }
  // AddElementwiseInt8's vector loop folds each input's right shift into the left shift (one
  // truncating shift) before the rounding multiply.
  int8_t vec(int8_t a, int8_t b, const Side& sa, const Side& sb) const {
    const int32_t xa = lanes::qrdmulh(lanes::shl(sa.offset + a, kLeftShift + sa.shift),
                                      sa.multiplier);
    const int32_t xb = lanes::qrdmulh(lanes::shl(sb.offset + b, kLeftShift + sb.shift),
                                      sb.multiplier);
    return finish_vec(static_cast<int32_t>(static_cast<uint32_t>(xa) + static_cast<uint32_t>(xb)));
  }
  // TFLite's Prepare for int8 ADD: both inputs to twice the larger input scale, then the output.
  static AddImpl make(const PrepareContext& ctx, const TensorQuant& qa, const TensorQuant& qb,
                      const TensorQuant& qo, Side* sa, Side* sb) {
    const double twice_max = 2.0 * static_cast<double>(std::max(qa.scale, qb.scale));
    const QuantizedMultiplier ma =
        quantize_multiplier(ctx, static_cast<double>(qa.scale) / twice_max);
    const QuantizedMultiplier mb =
        quantize_multiplier(ctx, static_cast<double>(qb.scale) / twice_max);
    const QuantizedMultiplier mo = quantize_multiplier(
        ctx, twice_max / (static_cast<double>(1 << kLeftShift) * static_cast<double>(qo.scale)));
    if (mo.shift > 0) {
      throw ctx.error("output scale ", qo.scale, " is too small for the input scales ", qa.scale,
                      " and ", qb.scale, " (rescale factor above 1)");
    }
    *sa = {-qa.zero_point, ma.multiplier, ma.shift};
    *sb = {-qb.zero_point, mb.multiplier, mb.shift};
    AddImpl impl;
    impl.out = mo;
    impl.out_offset = qo.zero_point;
    activation_range_int8(ctx.op.options.activation, qo.scale, qo.zero_point, &impl.act_min,
                          &impl.act_max);
    return impl;
  }
  // The vector loop's arithmetic (vec() above) as the SIMD kernels' parameters.
  QS8AddParams vec_params(const Side& sa, const Side& sb) const {
    QS8AddParams p;
    p.a_offset = sa.offset;
    p.b_offset = sb.offset;
    p.a_multiplier = sa.multiplier;
    p.b_multiplier = sb.multiplier;
    p.a_shift = kLeftShift + sa.shift;
    p.b_shift = kLeftShift + sb.shift;
    p.out_multiplier = out.multiplier;
    p.out_exponent = -out.shift;
    p.out_offset = out_offset;
    p.out_min = act_min;
    p.out_max = act_max;
    return p;
  }
  // AddScalarBroadcast's vector loop: rounding multiply first, then a truncating right shift.
  int8_t vec_scalar(int8_t a, int8_t b, const Side& sa, const Side& sb) const {
    const int32_t xa = lanes::shl(
        lanes::qrdmulh(lanes::shl(sa.offset + a, kLeftShift), sa.multiplier), sa.shift);
    const int32_t xb = lanes::shl(
        lanes::qrdmulh(lanes::shl(sb.offset + b, kLeftShift), sb.multiplier), sb.shift);
    return finish_vec(static_cast<int32_t>(static_cast<uint32_t>(xa) + static_cast<uint32_t>(xb)));
  }
};

// ---------------------------------------------------------------- MUL
// TFLite int8 MUL: (a - za) * (b - zb) rescaled by sa * sb / so. TFLite forms that real
// multiplier in float (float * float / float), then converts it to double: we do the same.
struct MulImpl {
  static constexpr auto* kKernel = &qs8_vmul_lut__scalar;
  static constexpr const char* kName = EDGE_KERNEL_NAME(qs8_vmul_lut__scalar);
  static constexpr bool kHasVecKernel = false;  // the table is the kernel on every ISA
  static constexpr int kElementwiseBlock = 16;  // MulElementwise
  static constexpr int kScalarBlock = 16;       // MulSimpleBroadcast
  QuantizedMultiplier m;
  int32_t out_offset = 0, act_min = -128, act_max = 127;

  int8_t ref(int8_t a, int8_t b, const Side& sa, const Side& sb) const {
    const int32_t prod = (sa.offset + a) * (sb.offset + b);
    const int32_t raw = out_offset + multiply_by_quantized_multiplier(prod, m.multiplier,
                                                                      m.shift, kScalarRounding);
    return static_cast<int8_t>(std::min(std::max(raw, act_min), act_max));
  }
  // The vector loop narrows with saturation to int16, adds the zero point in int16 (wrapping),
  // then narrows with saturation to int8: different from the scalar code only for results far
  // outside the int8 range.
  int8_t vec(int8_t a, int8_t b, const Side& sa, const Side& sb) const {
    int32_t p = (sa.offset + a) * (sb.offset + b);
    p = lanes::shl(p, std::max(0, m.shift));
    p = lanes::qrdmulh(p, m.multiplier);
    p = lanes::rdbp(p, std::max(0, -m.shift));
    const int16_t t = lanes::wrap16(lanes::sat16(p) + out_offset);
    const int32_t r = lanes::sat8(t);
    return static_cast<int8_t>(std::min(std::max(r, act_min), act_max));
  }
  int8_t vec_scalar(int8_t a, int8_t b, const Side& sa, const Side& sb) const {
    return vec(a, b, sa, sb);
  }
  // The real multiplier is formed in float, as TFLite does.
  static MulImpl make(const PrepareContext& ctx, const TensorQuant& qa, const TensorQuant& qb,
                      const TensorQuant& qo, Side* sa, Side* sb) {
    MulImpl impl;
    impl.out_offset = qo.zero_point;
    const float real = qa.scale * qb.scale / qo.scale;
    impl.m = quantize_multiplier(ctx, static_cast<double>(real));
    activation_range_int8(ctx.op.options.activation, qo.scale, qo.zero_point, &impl.act_min,
                          &impl.act_max);
    sa->offset = -qa.zero_point;
    sb->offset = -qb.zero_point;
    return impl;
  }
};

// ---------------------------------------------------------------- ADD and MUL
// One kernel for both: the shapes' walk (plan, five-fold form) and the pair tables; `Impl`
// computes one element the way each of LiteRT's loops does.
template <typename Impl>
class BinaryKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const Tensor& out = ctx.output();
    for (const Tensor* t : {&a, &b, &out}) expect_dtype(ctx, *t, DType::kInt8, "tensor");
    const TensorQuant qa = per_tensor_quant(ctx, a, "input 0");
    const TensorQuant qb = per_tensor_quant(ctx, b, "input 1");
    const TensorQuant qo = per_tensor_quant(ctx, out, "output");
    plan_ = plan_broadcast(ctx, a, b, out);
    fold_ = five_fold(a, b);
    Side sa, sb;
    const Impl impl = Impl::make(ctx, qa, qb, qo, &sa, &sb);
    LoopsUsed used = loops_used(fold_, plan_.count, Impl::kElementwiseBlock, Impl::kScalarBlock);
    name_ = Impl::kName;
    // SIMD ISAs compute the vector loop's arithmetic (exact, and faster than a 64 KiB table);
    // the scalar ISA keeps the table, faster than the same arithmetic one element at a time.
    if constexpr (Impl::kHasVecKernel) {
      const Isa isa = resolve_isa(requested_isa(ctx));
      if (used.vec && isa != Isa::kScalar) {
        const ElementwiseKernels& k = elementwise_kernels(isa);
        vec_.fn = k.vadd;
        vec_.params = impl.vec_params(sa, sb);
        name_ = k.vadd_name;
        used.vec = false;
      }
    }
    tables_ = build_tables(impl, used, sa, sb);
    ctx.prepared_bytes = tables_.bytes();
  }

  void run(const RunContext& ctx) override {
    Impl::kKernel(tables_, vec_, fold_, plan_, Impl::kElementwiseBlock, Impl::kScalarBlock,
                  ctx.in<int8_t>(0), ctx.in<int8_t>(1), ctx.out<int8_t>(), ctx.pool());
  }
  // Without broadcast, run() is elementwise_range over ranges of the flat loop (run_binary):
  // any range of it gives the same bytes.
  bool flat_elementwise() const override {
    return fold_.category == BroadcastCategory::kNonBroadcast;
  }
  void run_elements(const RunContext& ctx, int64_t begin, int64_t end) override {
    elementwise_range(tables_, vec_, Impl::kElementwiseBlock, plan_.count, begin, end,
                      ctx.in<int8_t>(0), ctx.in<int8_t>(1), ctx.out<int8_t>());
  }

  std::string kernel_name() const override { return name_; }

 private:
  BroadcastPlan plan_;
  FiveFold fold_;
  PairTables tables_;
  VecKernel vec_;
  std::string name_;
};

// ---------------------------------------------------------------- lookup-table ops
// out[i] = table[in[i]] for i in [begin, end).
void qs8_lut__scalar(const int8_t* table, const int8_t* in, int8_t* out, int64_t begin,
                     int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = table[static_cast<uint8_t>(in[i])];
}

// LiteRT runs int8 LOGISTIC (and TANH, ELU, ...) through a 256-entry table built at prepare
// time in float (LUTPopulate): dequantise, transform, multiply by 1 / output_scale, round half
// away from zero, add the zero point, clamp.
class LogisticKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const auto [qi, qo] = int8_in_out(ctx, true);
    const float inverse_scale = 1 / qo.scale;
    for (int32_t v = -128; v <= 127; ++v) {
      const float x = qi.scale * static_cast<float>(v - qi.zero_point);
      const float y = 1.0f / (1.0f + std::exp(-x));
      float r = std::round(y * inverse_scale);
      r = std::min(std::max(r, -1e9f), 1e9f);
      const int32_t q = static_cast<int32_t>(r + static_cast<float>(qo.zero_point));
      table_[static_cast<uint8_t>(static_cast<int8_t>(v))] = clamp8(q);
    }
    count_ = ctx.input(0).num_elements();
  }

  void run(const RunContext& ctx) override {
    const int8_t* in = ctx.in<int8_t>(0);
    int8_t* out = ctx.out<int8_t>();
    parallel_ranges(ctx.pool(), count_, 64, kMinParallelBytes,
                    [&](int64_t begin, int64_t end, int) {
                      qs8_lut__scalar(table_, in, out, begin, end);
                    });
  }

  std::string kernel_name() const override { return EDGE_KERNEL_NAME(qs8_lut__scalar); }

 private:
  int8_t table_[256] = {};
  int64_t count_ = 0;
};

// TFLite int8 HARD_SWISH (reference_ops::HardSwish): x * relu6(x + 3) / 6 in 16-bit fixed
// point, with the input moved to a "high resolution" scale (x 128) first.
class HardSwishKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const auto [qi, qo] = int8_in_out(ctx, true);
    in_zp_ = qi.zero_point;
    out_zp_ = qo.zero_point;
    // The same float expressions as TFLite's HardSwishPrepare.
    const float hires_input_scale = (1.0f / 128.0f) * qi.scale;
    const float reluish_scale = 3.0f / 32768.0f;
    const float output_multiplier = hires_input_scale / qo.scale;
    const QuantizedMultiplier om = quantize_multiplier(ctx, static_cast<double>(output_multiplier));
    out_mult_ = fp::downscale_multiplier_to_int16(om.multiplier);
    out_exp_ = om.shift;
    if (out_exp_ > 0) {
      throw ctx.error("output scale ", qo.scale, " is too small for input scale ", qi.scale,
                      " (HARD_SWISH needs input_scale / 128 <= output_scale)");
    }
    const float reluish_multiplier = hires_input_scale / reluish_scale;
    const QuantizedMultiplier rm =
        quantize_multiplier(ctx, static_cast<double>(reluish_multiplier));
    reluish_mult_ = fp::downscale_multiplier_to_int16(rm.multiplier);
    reluish_exp_ = rm.shift;
    if (reluish_exp_ > 15 || reluish_exp_ < -15 || out_exp_ < -15) {
      throw ctx.error("quantisation scales out of the range HARD_SWISH supports");
    }
    count_ = ctx.input(0).num_elements();
  }

  void run(const RunContext& ctx) override {
    const int8_t* in = ctx.in<int8_t>(0);
    int8_t* out = ctx.out<int8_t>();
    parallel_ranges(ctx.pool(), count_, 64, kMinParallelBytes,
                    [&](int64_t begin, int64_t end, int) {
                      qs8_vhswish__scalar(in, out, begin, end);
                    });
  }

  void qs8_vhswish__scalar(const int8_t* in, int8_t* out, int64_t begin, int64_t end) const {
    for (int64_t i = begin; i < end; ++i) {
      const auto x = static_cast<int16_t>(in[i] - in_zp_);
      const auto x_hires = static_cast<int16_t>(x * (1 << 7));
      const int16_t x_preshift = fp::saturating_rounding_doubling_high_mul16(x_hires, out_mult_);
      int16_t reluish = x_hires;
      if (reluish_exp_ > 0) reluish = fp::saturating_left_shift16(reluish, reluish_exp_ - 1);
      reluish = fp::saturating_rounding_doubling_high_mul16(reluish, reluish_mult_);
      if (reluish_exp_ > 0) reluish = fp::saturating_left_shift16(reluish, 1);
      if (reluish_exp_ < 0) reluish = fp::rounding_divide_by_pot16(reluish, -reluish_exp_);
      reluish = static_cast<int16_t>((reluish + (1 << 15)) >> 1);
      const int16_t preshift_out = fp::saturating_doubling_high_mul16(reluish, x_preshift);
      const int16_t y = fp::rounding_divide_by_pot16(preshift_out, -out_exp_);
      // TFLite adds the zero point in int16 (wrapping when y is near the int16 limits), then
      // clamps: the same here, so that even those corner cases match.
      const auto v = static_cast<int16_t>(static_cast<uint16_t>(y) +
                                          static_cast<uint16_t>(out_zp_));
      out[i] = clamp8(v, -128, 127);
    }
  }

  std::string kernel_name() const override {
    return EDGE_MEMBER_KERNEL_NAME(HardSwishKernel, qs8_vhswish__scalar);
  }

 private:
  int32_t in_zp_ = 0, out_zp_ = 0;
  int16_t out_mult_ = 0, reluish_mult_ = 0;
  int out_exp_ = 0, reluish_exp_ = 0;
  int64_t count_ = 0;
};

// ---------------------------------------------------------------- QUANTIZE / DEQUANTIZE
// float -> int8, as LiteRT's AffineQuantize runs on x86: blocks of 8 multiply by the float
// reciprocal of the scale and round half to even (the vector conversion); the remaining
// elements divide by the scale in double and round half away from zero.
// int8 -> int8: TFLite's Requantize, (x - z_in) rescaled by s_in / s_out.
class QuantizeKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& in = ctx.input(0);
    const Tensor& out = ctx.output();
    expect_dtype(ctx, out, DType::kInt8, "output");
    expect_same_shape(ctx, in, out, "input", "output");
    const TensorQuant qo = per_tensor_quant(ctx, out, "output");
    scale_ = static_cast<double>(qo.scale);
    inverse_ = static_cast<float>(1.0 / scale_);
    out_zp_ = qo.zero_point;
    count_ = in.num_elements();
    if (in.dtype == DType::kFloat32) {
      from_float_ = true;
    } else if (in.dtype == DType::kInt8) {
      const TensorQuant qi = per_tensor_quant(ctx, in, "input");
      in_zp_ = qi.zero_point;
      m_ = quantize_multiplier(ctx, static_cast<double>(qi.scale) / static_cast<double>(qo.scale));
    } else {
      throw ctx.unsupported("QUANTIZE from ", dtype_name(in.dtype),
                            " (supported: FLOAT32 and INT8 inputs)");
    }
  }

  // NaN and values beyond int32 are clamped in floating point before the conversion (where
  // TFLite's cast would be undefined).
  static int32_t to_int(double v) {
    if (std::isnan(v)) return 0;
    return static_cast<int32_t>(std::min(std::max(v, -1e9), 1e9));
  }

  void run(const RunContext& ctx) override {
    if (from_float_) {
      f32_qs8_vcvt__scalar(ctx.in<float>(0), ctx.out<int8_t>());
    } else {
      qs8_vcvt__scalar(ctx.in<int8_t>(0), ctx.out<int8_t>());
    }
  }

  void f32_qs8_vcvt__scalar(const float* in, int8_t* out) const {
    const int64_t vec_end = count_ - count_ % 8;
    int64_t i = 0;
    for (; i < vec_end; ++i) {
      const float p = in[i] * inverse_;
      out[i] = clamp8_add(to_int(std::nearbyint(static_cast<double>(p))), out_zp_);
    }
    for (; i < count_; ++i) {
      out[i] = clamp8_add(to_int(std::round(static_cast<double>(in[i]) / scale_)), out_zp_);
    }
  }

  void qs8_vcvt__scalar(const int8_t* in, int8_t* out) const {
    // LiteRT's Requantize: blocks of 16 through MultiplyByQuantizedMultiplier4Rows (its
    // rounding right shift rounds ties up), the rest through the scalar multiply (ties away).
    const int64_t vec_end = count_ - count_ % 16;
    const int left = std::max(m_.shift, 0), right = std::min(m_.shift, 0);
    int64_t i = 0;
    for (; i < vec_end; ++i) {
      const int32_t v =
          lanes::rshl(lanes::qrdmulh(lanes::shl(in[i] - in_zp_, left), m_.multiplier), right);
      out[i] = clamp8_add(v, out_zp_);
    }
    for (; i < count_; ++i) {
      const int32_t v = multiply_by_quantized_multiplier(in[i] - in_zp_, m_.multiplier,
                                                         m_.shift, kScalarRounding);
      out[i] = clamp8_add(v, out_zp_);
    }
  }

  std::string kernel_name() const override {
    return from_float_ ? EDGE_MEMBER_KERNEL_NAME(QuantizeKernel, f32_qs8_vcvt__scalar)
                       : EDGE_MEMBER_KERNEL_NAME(QuantizeKernel, qs8_vcvt__scalar);
  }

 private:
  bool from_float_ = false;
  double scale_ = 1;
  float inverse_ = 1;
  int32_t out_zp_ = 0, in_zp_ = 0;
  QuantizedMultiplier m_;
  int64_t count_ = 0;
};

// int8 -> float, as LiteRT's Dequantize runs on x86: blocks of 8 compute
// float(x) * scale + (-zero_point * scale) in float (two roundings); the remaining elements
// compute scale * (x - zero_point) in double and round once.
class DequantizeKernel final : public OpKernel {
 public:
  void prepare(PrepareContext& ctx) override {
    const Tensor& in = ctx.input(0);
    const Tensor& out = ctx.output();
    expect_dtype(ctx, in, DType::kInt8, "input");
    expect_dtype(ctx, out, DType::kFloat32, "output");
    expect_same_shape(ctx, in, out, "input", "output");
    const TensorQuant qi = per_tensor_quant(ctx, in, "input");
    scale_ = qi.scale;
    zp_ = qi.zero_point;
    zero_times_scale_ = static_cast<float>(-static_cast<double>(zp_) * static_cast<double>(scale_));
    count_ = in.num_elements();
  }

  void run(const RunContext& ctx) override {
    qs8_f32_vcvt__scalar(ctx.in<int8_t>(0), ctx.out<float>());
  }

  void qs8_f32_vcvt__scalar(const int8_t* in, float* out) const {
    const int64_t vec_end = count_ - count_ % 8;
    int64_t i = 0;
    for (; i < vec_end; ++i) {
      const float product = static_cast<float>(in[i]) * scale_;
      out[i] = product + zero_times_scale_;
    }
    for (; i < count_; ++i) {
      out[i] = static_cast<float>(static_cast<double>(scale_) * (in[i] - zp_));
    }
  }

  std::string kernel_name() const override {
    return EDGE_MEMBER_KERNEL_NAME(DequantizeKernel, qs8_f32_vcvt__scalar);
  }

 private:
  float scale_ = 1, zero_times_scale_ = 0;
  int32_t zp_ = 0;
  int64_t count_ = 0;
};

}  // namespace

void add_elementwise_kernel_names(std::vector<std::string>& out) {
  out.insert(out.end(), {AddImpl::kName, MulImpl::kName, EDGE_KERNEL_NAME(qs8_lut__scalar),
                         EDGE_MEMBER_KERNEL_NAME(HardSwishKernel, qs8_vhswish__scalar),
                         EDGE_MEMBER_KERNEL_NAME(QuantizeKernel, f32_qs8_vcvt__scalar),
                         EDGE_MEMBER_KERNEL_NAME(QuantizeKernel, qs8_vcvt__scalar),
                         EDGE_MEMBER_KERNEL_NAME(DequantizeKernel, qs8_f32_vcvt__scalar)});
}

std::unique_ptr<OpKernel> make_add() { return std::make_unique<BinaryKernel<AddImpl>>(); }
std::unique_ptr<OpKernel> make_mul() { return std::make_unique<BinaryKernel<MulImpl>>(); }
std::unique_ptr<OpKernel> make_logistic() { return std::make_unique<LogisticKernel>(); }
std::unique_ptr<OpKernel> make_hard_swish() { return std::make_unique<HardSwishKernel>(); }
std::unique_ptr<OpKernel> make_quantize() { return std::make_unique<QuantizeKernel>(); }
std::unique_ptr<OpKernel> make_dequantize() { return std::make_unique<DequantizeKernel>(); }

}  // namespace runtime
}  // namespace edge
