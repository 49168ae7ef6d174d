// generator.cpp — synthetic memory trace.
#include "generator.h"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <random>

#include "common/page.h"
#include "kv_spec.h"

namespace hde::dp {

bool parse_gen_spec(const std::string &s, gen_spec &g, std::string &err) {
  const bool ok = for_each_kv(s, "--gen", err, [&](const std::string &k, double d) {
    auto frac = [&](double &out) {
      if (d < 0 || d > 1) {
        err = "--gen: " + k + " must be within 0..1";
        return false;
      }
      out = d;
      return true;
    };
    if (k == "mib") {
      if (d < 1 || d > 4096 || d != static_cast<double>(static_cast<std::size_t>(d))) {
        err = "--gen: mib must be a whole number within 1..4096";
        return false;
      }
      g.mib = static_cast<std::size_t>(d);
    } else if (k == "rounds") {
      if (d < 0 || d > 64) {
        err = "--gen: rounds must be within 0..64";
        return false;
      }
      g.rounds = static_cast<std::uint32_t>(d);
    } else if (k == "dirty") {
      return frac(g.dirty);
    } else if (k == "zero") {
      return frac(g.zero);
    } else if (k == "dup") {
      return frac(g.dup);
    } else if (k == "entropy") {
      return frac(g.entropy);
    } else if (k == "seed") {
      if (d < 0 || d > 9007199254740992.0) {
        err = "--gen: seed must be within 0..2^53";
        return false;
      }
      g.seed = static_cast<std::uint64_t>(d);
    } else {
      err = "--gen: unknown key '" + k + "' (mib, rounds, dirty, zero, dup, entropy, seed)";
      return false;
    }
    return true;
  });
  if (!ok)
    return false;
  if (g.zero + g.dup > 1) {
    err = "--gen: zero + dup must not exceed 1";
    return false;
  }
  return true;
}

std::string to_string(const gen_spec &g) {
  char b[160];
  std::snprintf(b, sizeof b, "mib=%zu,rounds=%u,dirty=%.3f,zero=%.3f,dup=%.3f,entropy=%.3f,seed=%llu",
                g.mib, g.rounds, g.dirty, g.zero, g.dup, g.entropy,
                static_cast<unsigned long long>(g.seed));
  return b;
}

namespace {

const char *const kWords[] = {"GET ",     "/api/v1/orders ", "200 ", "user=", "session ", "INFO ",
                              "db.query ", "latency_ms=",    "customer ", "ERROR ", "timeout ",
                              "POST ",     "WARN ",          "cache-miss ", "\n"};

void fill_content(std::byte *p, double entropy, std::mt19937_64 &rng) {
  std::size_t off = 0;
  std::uniform_real_distribution<double> u(0, 1);
  while (off < kPageSize) {
    // Runs of 64 bytes: random with probability `entropy`, else text/records.
    const std::size_t n = std::min<std::size_t>(64, kPageSize - off);
    if (u(rng) < entropy) {
      for (std::size_t i = 0; i < n; i += 8) {
        const std::uint64_t v = rng();
        std::memcpy(p + off + i, &v, std::min<std::size_t>(8, n - i));
      }
    } else {
      std::size_t i = 0;
      while (i < n) {
        const char *w = kWords[rng() % std::size(kWords)];
        for (; *w != '\0' && i < n; ++w, ++i)
          p[off + i] = static_cast<std::byte>(*w);
      }
    }
    off += n;
  }
}

void new_page(std::byte *p, const std::byte *image, std::size_t npages, const gen_spec &g,
              std::mt19937_64 &rng) {
  std::uniform_real_distribution<double> u(0, 1);
  const double r = u(rng);
  if (r < g.zero)
    std::memset(p, 0, kPageSize);
  else if (r < g.zero + g.dup)
    std::memmove(p, image + (rng() % npages) * kPageSize, kPageSize);
  else
    fill_content(p, g.entropy, rng);
}

}  // namespace

std::vector<std::vector<std::byte>> generate_trace(const gen_spec &g) {
  const std::size_t npages = g.mib * 256;
  std::mt19937_64 rng(g.seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<std::byte>> snaps(g.rounds + 1);
  snaps[0].resize(npages * kPageSize);
  for (std::size_t i = 0; i < npages; ++i)
    new_page(snaps[0].data() + i * kPageSize, snaps[0].data(), std::max<std::size_t>(i, 1), g, rng);
  for (std::uint32_t r = 1; r <= g.rounds; ++r) {
    snaps[r] = snaps[r - 1];
    std::byte *img = snaps[r].data();
    const auto ndirty = static_cast<std::size_t>(g.dirty * static_cast<double>(npages));
    for (std::size_t k = 0; k < ndirty; ++k) {
      std::byte *p = img + (rng() % npages) * kPageSize;
      if (u(rng) < 0.6) {
        for (int e = 1 + static_cast<int>(rng() % 6); e > 0; --e) {
          const std::size_t off = rng() % (kPageSize - 16);
          const std::uint64_t v = rng();
          std::memcpy(p + off, &v, 1 + rng() % 8);
        }
      } else {
        new_page(p, img, npages, g, rng);
      }
    }
  }
  return snaps;
}

}  // namespace hde::dp
