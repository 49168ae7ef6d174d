// test_pages.h — generators of realistic and adversarial pages for tests:
// text-like, structured records, random, sparse and mutated pages, from a
// seeded PRNG so every failure reproduces.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "common/page.h"

namespace hde::test {

using page_bytes = std::vector<std::byte>;

enum class page_kind { zero, text, records, random, sparse, pointer_table };

page_bytes make_page(page_kind k, std::mt19937_64 &rng);
page_bytes random_page(std::mt19937_64 &rng);  // any kind, weighted
// Change n_changes runs of 1..max_run bytes (a typical dirty page).
void mutate(page_bytes &p, std::mt19937_64 &rng, int n_changes, int max_run);

}  // namespace hde::test
