// x86 AMX-INT8 kernels: the int8-weight GEMM with int8 output on tiles. Compiled with the
// AVX-512 VNNI flags plus -mamx-tile -mamx-int8; called only when CpuFeatures::amx_int8 (CPUID,
// XCR0 and Linux's per-process tile permission, cpu_features.cc) and AVX-512 VNNI hold
// (isa.cc). Everything else the tier runs is the AVX-512 VNNI kernels.
//
// Why the layout needs no repacking: a 64-byte block of the weight layout (layout.h) is 16
// channels x 4 k, and a tile's B operand for tdpbusd is K/4 rows of 16 channels x 4 k bytes:
// 16 consecutive blocks of a 16-channel tile are one B tile (16 rows x 64 bytes, stride 64).
// The prepared activation rows (XFormat::kUint8: x + 128, as the VNNI kernels take them) are
// the A operand as they lie: rows x 64 bytes at the rows' own stride. tdpbusd multiplies
// unsigned A bytes by signed B bytes into int32 without intermediate saturation, exactly
// vpdpbusd's arithmetic, so the accumulators (and with the same epilogue the outputs) equal the
// AVX-512 VNNI kernel's and the scalar reference's bit for bit.
//
// One call: up to 16 rows x one 16-channel tile. C lives in tmm0; K goes 64 at a time through
// tmm1 (A) and tmm2 (B); a remainder of fewer than 16 blocks through tmm3 / tmm4, configured
// to its size (a tile's unused columns are not read as zeros by tdpbusd: they are not
// computed at all). The tile configuration is per thread: a call loads its own only when the
// one in force differs (read back with sttilecfg, since another library in the process may have
// loaded its own meanwhile), and leaves it in force rather than releasing it, which measured
// 10-25 % faster on the ResNet-like model's 3x3 layers and stem (ldtilecfg per call, and the
// reload after each tilerelease, cost about as much as the three tdpbusd of a K = 147 call).
// The price of a configured tile state: the kernel saves its 8 KB at this thread's context
// switches.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/ukernels.h"
#include "kernels/x86/requant16_zmm.h"

namespace edge {
namespace detail {
namespace {

// The 64-byte operand of ldtilecfg (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved_0[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static_assert(sizeof(TileConfig) == 64, "ldtilecfg reads 64 bytes");

constexpr std::size_t kAmxRows = 16;       // rows of a tile
constexpr std::size_t kBlocksPerTile = 16;  // 64-byte K blocks in one B tile (K = 64)

// acc[r * 16 + c] = sum over the blocks of x[r][k] * w[c][k] for r < rows <= 16.
void tile_dot(std::size_t rows, std::size_t nblocks, const uint8_t* w, const uint8_t* x,
              std::size_t x_stride, int32_t* acc) {
  const std::size_t full = nblocks / kBlocksPerTile;
  const std::size_t tail = nblocks % kBlocksPerTile;
  TileConfig cfg = {};
  cfg.palette_id = 1;
  cfg.rows[0] = static_cast<uint8_t>(rows);  // C: rows x 16 int32
  cfg.colsb[0] = 64;
  cfg.rows[1] = static_cast<uint8_t>(rows);  // A: rows x 64 k
  cfg.colsb[1] = 64;
  cfg.rows[2] = kBlocksPerTile;              // B: 16 blocks x (16 channels x 4 k)
  cfg.colsb[2] = 64;
  if (tail != 0) {
    cfg.rows[3] = static_cast<uint8_t>(rows);  // A remainder: rows x 4 * tail k
    cfg.colsb[3] = static_cast<uint16_t>(4 * tail);
    cfg.rows[4] = static_cast<uint8_t>(tail);  // B remainder: tail blocks
    cfg.colsb[4] = 64;
  }
  // Load the configuration only when it differs from the one in force on this thread (read
  // back with sttilecfg: another library in the process, XNNPACK for one, may have loaded its
  // own since our last call).
  TileConfig current;
  _tile_storeconfig(&current);
  if (std::memcmp(&current, &cfg, sizeof(cfg)) != 0) _tile_loadconfig(&cfg);
  _tile_zero(0);
  for (std::size_t c = 0; c < full; ++c) {
    _tile_loadd(1, x + 64 * c, static_cast<long>(x_stride));
    _tile_loadd(2, w + 64 * kBlocksPerTile * c, 64);
    _tile_dpbusd(0, 1, 2);
  }
  if (tail != 0) {
    _tile_loadd(3, x + 64 * full, static_cast<long>(x_stride));
    _tile_loadd(4, w + 64 * kBlocksPerTile * full, 64);
    _tile_dpbusd(0, 3, 4);
  }
  _tile_stored(0, acc, 64);
}

}  // namespace

// rows (1..16) x one 16-channel tile of int8 weights, int8 output (GemmQs8Fn).
void qs8_qc8w_gemm_requant_16x16c4__avx512amx(EDGE_GEMM_QS8_PARAMS) {
  alignas(64) int32_t acc[kAmxRows * 16];
  tile_dot(rows, nblocks, w, x, x_stride, acc);
  const TileRequant q = load_tile_requant(p, tile);
  const bool plain = plain_requant(p);
  if (q.high) {  // high-dword form (shift_32_53): the output zero point is folded, so plain-able
    if (plain) {
      requant_store_tile_rows<true, true>(acc, rows, row_sums, sums_stride, p, q, tile, nc, out,
                                          out_stride);
    } else {
      requant_store_tile_rows<false, true>(acc, rows, row_sums, sums_stride, p, q, tile, nc, out,
                                           out_stride);
    }
  } else if (plain) {
    requant_store_tile_rows<true, false>(acc, rows, row_sums, sums_stride, p, q, tile, nc, out,
                                         out_stride);
  } else {
    requant_store_tile_rows<false, false>(acc, rows, row_sums, sums_stride, p, q, tile, nc, out,
                                          out_stride);
  }
}

// Only the int8 fused GEMM is this tier's own; isa.cc fills every other entry from the AVX-512
// VNNI table, whose kernels also serve int8 layers shallower than kAmxMinDepth (gemm_plan.h).
const IsaKernels kAvx512AmxKernels = {
    {},
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    {EDGE_UKERNEL(qs8_qc8w_gemm_requant_16x16c4__avx512amx, 16), {}, {}, {}},
    {},
};

}  // namespace detail
}  // namespace edge
