// impair.cpp — parsing the --impair specification.
#include "impair.h"

#include <cstdio>
#include "kv_spec.h"

namespace hde::dp {

bool parse_impair(const std::string &s, impair_spec &out, std::string &err) {
  impair_spec r;
  const bool ok = for_each_kv(s, "--impair", err, [&](const std::string &k, double d) {
    if (d < 0) {
      err = "--impair: " + k + " must not be negative";
      return false;
    }
    if (k == "seed") {
      if (d > 9007199254740992.0) {
        err = "--impair: seed must be within 0..2^53";
        return false;
      }
      r.seed = static_cast<std::uint64_t>(d);
      return true;
    }
    if (d > 0.5) {
      err = "--impair: " + k + " must be within 0..0.5";
      return false;
    }
    if (k == "loss")
      r.loss = d;
    else if (k == "dup")
      r.dup = d;
    else if (k == "reorder")
      r.reorder = d;
    else {
      err = "--impair: unknown key '" + k + "' (loss, dup, reorder, seed)";
      return false;
    }
    return true;
  });
  if (ok)
    out = r;
  return ok;
}

std::string to_string(const impair_spec &s) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "loss=%g,dup=%g,reorder=%g,seed=%llu", s.loss, s.dup, s.reorder,
                static_cast<unsigned long long>(s.seed));
  return buf;
}

}  // namespace hde::dp
