// grace.h — when may a retired baseline slot be reused?
//
// The baseline cache never writes into a slot another thread may be reading.
// A new version of a page goes into a fresh slot, the slot it replaces (or an
// evicted one) is retired, and a retired slot is reused only once a grace
// period has passed: every reader that could have seen it has since left its
// read-side section. This is the classic RCU update; grace_domain is the
// bridge to whichever RCU the embedder runs:
//   - the gateway: DPDK's rte_rcu_qsbr (dataplane/baseline_rcu.h);
//   - other embedders and the tests: liburcu (baseline/urcu_grace.h).
// A cache without a domain has no concurrent readers and reuses at once.
//
// Both calls are made by the cache's owner on its hot path: they must not
// block, lock or allocate.
#pragma once

#include <cstdint>

namespace hde {

class grace_domain {
public:
  virtual ~grace_domain() = default;
  // A token covering everything retired before this call.
  virtual std::uint64_t start() noexcept = 0;
  // True once every reader has been quiescent since start() returned token.
  virtual bool done(std::uint64_t token) noexcept = 0;
};

}  // namespace hde
