// impair.cpp — parsing the --impair specification.
#include "impair.h"

#include <cstdio>
#include <cstdlib>

namespace hde::dp {

bool parse_impair(const std::string &s, impair_spec &out, std::string &err) {
  impair_spec r;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t end = s.find(',', pos);
    if (end == std::string::npos)
      end = s.size();
    const std::string item = s.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos) {
      err = "--impair: '" + item + "' is not key=value (loss, dup, reorder, seed)";
      return false;
    }
    const std::string k = item.substr(0, eq);
    const char *v = item.c_str() + eq + 1;
    char *e = nullptr;
    const double d = std::strtod(v, &e);
    if (e == v || *e != '\0' || !(d >= 0) || d > 9007199254740992.0) {  // also NaN, inf
      err = "--impair: bad number in '" + item + "'";
      return false;
    }
    if (k == "seed") {
      r.seed = static_cast<std::uint64_t>(d);
      continue;
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
  }
  out = r;
  return true;
}

std::string to_string(const impair_spec &s) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "loss=%g,dup=%g,reorder=%g,seed=%llu", s.loss, s.dup, s.reorder,
                static_cast<unsigned long long>(s.seed));
  return buf;
}

}  // namespace hde::dp
