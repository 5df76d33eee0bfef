#include "arena_plan.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <queue>
#include <set>
#include <utility>

namespace edge {
namespace runtime {

ArenaPlan plan_arena(const std::vector<ArenaItem>& items) {
  return items.size() <= kGreedyPlanItems ? plan_arena_greedy(items) : plan_arena_best_fit(items);
}

ArenaPlan plan_arena_greedy(const std::vector<ArenaItem>& items) {
  ArenaPlan plan;
  plan.offsets.assign(items.size(), 0);
  // Largest first; ties in order of first use.
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return items[a].bytes != items[b].bytes ? items[a].bytes > items[b].bytes
                                            : items[a].first < items[b].first;
  });
  struct Placed {
    uint64_t offset, bytes;
    int first, last;
  };
  std::vector<Placed> placed;
  std::vector<const Placed*> live;
  for (std::size_t idx : order) {
    const ArenaItem& it = items[idx];
    live.clear();
    for (const Placed& p : placed) {
      ++plan.steps;
      if (p.first <= it.last && it.first <= p.last) live.push_back(&p);
    }
    std::sort(live.begin(), live.end(),
              [](const Placed* a, const Placed* b) { return a->offset < b->offset; });
    uint64_t offset = 0;
    for (const Placed* p : live) {
      if (offset + it.bytes <= p->offset) break;
      offset = std::max(offset, p->offset + p->bytes);
    }
    placed.push_back({offset, it.bytes, it.first, it.last});
    plan.offsets[idx] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + it.bytes);
  }
  return plan;
}

ArenaPlan plan_arena_best_fit(const std::vector<ArenaItem>& items) {
  ArenaPlan plan;
  plan.offsets.assign(items.size(), 0);
  // Items in order of first use (larger first at one time step, so that they take the big holes).
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (items[a].first != items[b].first) return items[a].first < items[b].first;
    if (items[a].bytes != items[b].bytes) return items[a].bytes > items[b].bytes;
    return a < b;
  });
  std::map<uint64_t, uint64_t> free_by_offset;             // offset -> bytes
  std::set<std::pair<uint64_t, uint64_t>> free_by_size;  // (bytes, offset)
  uint64_t top = 0;  // end of the arena so far
  auto add_free = [&](uint64_t offset, uint64_t bytes) {
    // Coalesce with the free neighbours on both sides.
    auto next = free_by_offset.lower_bound(offset);
    plan.steps += 2;
    if (next != free_by_offset.end() && next->first == offset + bytes) {
      bytes += next->second;
      free_by_size.erase({next->second, next->first});
      next = free_by_offset.erase(next);
      plan.steps += 2;
    }
    if (next != free_by_offset.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == offset) {
        offset = prev->first;
        bytes += prev->second;
        free_by_size.erase({prev->second, prev->first});
        free_by_offset.erase(prev);
        plan.steps += 2;
      }
    }
    if (offset + bytes == top) {  // a hole at the top is just a lower top
      top = offset;
      return;
    }
    free_by_offset.emplace(offset, bytes);
    free_by_size.emplace(bytes, offset);
    plan.steps += 2;
  };
  // Live items by the step after which they die.
  using Death = std::pair<int, std::size_t>;  // (last, item)
  std::priority_queue<Death, std::vector<Death>, std::greater<Death>> alive;
  for (std::size_t idx : order) {
    const ArenaItem& it = items[idx];
    while (!alive.empty() && alive.top().first < it.first) {
      const std::size_t dead = alive.top().second;
      alive.pop();
      ++plan.steps;
      if (items[dead].bytes != 0) add_free(plan.offsets[dead], items[dead].bytes);
    }
    if (it.bytes != 0) {
      auto fit = free_by_size.lower_bound({it.bytes, 0});
      ++plan.steps;
      uint64_t offset;
      if (fit != free_by_size.end()) {
        const auto [hole, at] = *fit;
        free_by_size.erase(fit);
        free_by_offset.erase(at);
        plan.steps += 2;
        offset = at;
        if (hole > it.bytes) add_free(at + it.bytes, hole - it.bytes);
      } else {
        offset = top;
        top += it.bytes;
      }
      plan.offsets[idx] = offset;
      plan.arena_bytes = std::max(plan.arena_bytes, offset + it.bytes);
    }
    alive.emplace(it.last, idx);
    ++plan.steps;
  }
  return plan;
}

}  // namespace runtime
}  // namespace edge
