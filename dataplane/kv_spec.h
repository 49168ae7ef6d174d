// kv_spec.h — the "key=number,key=number" option values (--gen, --impair):
// splits the list and parses each number, leaving what the keys mean to the
// caller.
#pragma once

#include <cstdlib>
#include <string>

namespace hde::dp {

// Calls fn(key, value, item) for each item; fn returns false after setting
// err. `what` prefixes the errors of this function ("--gen"). NaN and
// infinities are refused.
template <typename Fn> bool for_each_kv(const std::string &s, const char *what, std::string &err, Fn &&fn) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t end = s.find(',', pos);
    if (end == std::string::npos)
      end = s.size();
    const std::string item = s.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos) {
      err = std::string(what) + ": '" + item + "' is not key=value";
      return false;
    }
    const char *v = item.c_str() + eq + 1;
    char *e = nullptr;
    const double d = std::strtod(v, &e);
    if (e == v || *e != '\0' || !(d > -1e300 && d < 1e300)) {
      err = std::string(what) + ": bad number in '" + item + "'";
      return false;
    }
    if (!fn(item.substr(0, eq), d))
      return false;
  }
  return true;
}

}  // namespace hde::dp
