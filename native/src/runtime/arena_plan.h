// Placing run-time tensors in one arena (internal to the runtime; tested directly).
//
// Each item lives over [first, last] (operator indices, inclusive; graph inputs from -1, graph
// outputs to the operator count) and needs `bytes` (already aligned). Two items whose lifetimes
// overlap must not share bytes. Two planners:
//   * greedy by size (TFLite's): largest first, each at the lowest offset clear of every placed
//     item alive at the same time. Tight, but O(n^2) in the items: used up to kGreedyPlanItems.
//   * in execution order with a best-fit free list (ordered maps of free blocks by size and by
//     offset, coalescing neighbours): O(n log n), used above that, so that a file of 100k
//     operators plans in milliseconds instead of seconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace edge {
namespace runtime {

// Sizes and offsets are 64-bit on every target: on a 32-bit one, two 2 GiB tensors must add up
// to 4 GiB (and be refused by the budget), not wrap to 0.
struct ArenaItem {
  uint64_t bytes = 0;
  int first = 0, last = 0;
};

struct ArenaPlan {
  std::vector<uint64_t> offsets;  // per item
  uint64_t arena_bytes = 0;
  // Elementary steps the planner took (pair checks for greedy; map operations for best fit):
  // what the tests bound to prove the complexity.
  uint64_t steps = 0;
};

constexpr std::size_t kGreedyPlanItems = 2048;

// Greedy by size up to kGreedyPlanItems items, best fit in execution order above.
ArenaPlan plan_arena(const std::vector<ArenaItem>& items);
ArenaPlan plan_arena_greedy(const std::vector<ArenaItem>& items);
ArenaPlan plan_arena_best_fit(const std::vector<ArenaItem>& items);

}  // namespace runtime
}  // namespace edge
