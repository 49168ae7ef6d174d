// hdectl.cpp — the control client of hde-gateway.
//   hdectl [-s SOCK] [--format text|json] [--watch SEC] COMMAND [ARG...]
// Sends one request to the gateway's control socket and prints the reply:
// tables for people by default, JSON on request. Exits 1 on an error reply,
// 2 when the gateway cannot be reached or the arguments are wrong.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

using json = nlohmann::json;

namespace {

const char *kDefaultSock = "/var/run/dpdk/rte/hde.sock";

void usage() {
  std::printf(
      "usage: hdectl [-s SOCK] [--format text|json] [--watch SEC] COMMAND [ARG...]\n"
      "  -s, --socket SOCK   control socket (default $HDE_CTL_SOCK, else %s;\n"
      "                      a gateway started with --file-prefix P uses /var/run/dpdk/P/hde.sock)\n"
      "  --format F          text (tables, the default) or json\n"
      "  --watch SEC         repeat every SEC seconds until interrupted (like testpmd's stats)\n"
      "  COMMAND             see `hdectl list-commands`; `hdectl help COMMAND`\n"
      "The long options may also follow COMMAND: hdectl show stats --watch 1\n",
      kDefaultSock);
}

// Send one request line, read one reply line. Empty string on failure (err set).
std::string roundtrip(const std::string &sock, const std::string &req, std::string &err) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (sock.size() >= sizeof a.sun_path) {
    err = "socket path too long";
    return {};
  }
  std::memcpy(a.sun_path, sock.c_str(), sock.size() + 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    if (errno == EACCES)
      err = "cannot connect to " + sock + ": " + std::strerror(errno) +
            " (the control socket is for root, the gateway's user and its --ctl-group)";
    else
      err = "cannot connect to " + sock + ": " + std::strerror(errno) + " (is hde-gateway running? -s SOCK)";
    if (fd >= 0)
      close(fd);
    return {};
  }
  std::string line = req + "\n";
  std::string send_err;
  for (std::size_t off = 0; off < line.size();) {
    ssize_t n = send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      // The gateway may have refused this client (busy, credentials) and
      // closed before the request went out: its one line is still to read.
      send_err = std::string("send: ") + std::strerror(errno);
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.find('\n') != std::string::npos)
      break;
  }
  close(fd);
  if (out.empty())
    err = send_err.empty() ? "no reply from " + sock : send_err;
  return out.substr(0, out.find('\n'));
}

std::string scalar(const json &v) {
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_number_float()) {
    char b[64];
    std::snprintf(b, sizeof b, "%.3f", v.get<double>());
    return b;
  }
  return v.dump();
}

void print_table(const json &rows) {
  // Columns: every scalar key of any row; the ones that say what a row is
  // first (JSON objects come sorted by key), then the rest in key order.
  static const char *const kLead[] = {"vm", "node", "stream", "lcore", "port", "side", "name", "codec", "state"};
  std::vector<std::string> cols;
  auto seen = [&](const std::string &k) { return std::find(cols.begin(), cols.end(), k) != cols.end(); };
  for (const char *k : kLead)
    for (const auto &r : rows)
      if (r.contains(k) && !r[k].is_structured() && !seen(k)) {
        cols.push_back(k);
        break;
      }
  for (const auto &r : rows)
    for (const auto &[k, v] : r.items())
      if (!v.is_structured() && !seen(k))
        cols.push_back(k);
  std::vector<std::size_t> w(cols.size());
  for (std::size_t i = 0; i < cols.size(); ++i) {
    w[i] = cols[i].size();
    for (const auto &r : rows)
      w[i] = std::max(w[i], r.contains(cols[i]) ? scalar(r[cols[i]]).size() : 1);
  }
  for (std::size_t i = 0; i < cols.size(); ++i)
    std::printf("%-*s%s", static_cast<int>(w[i]), cols[i].c_str(), i + 1 < cols.size() ? "  " : "\n");
  for (const auto &r : rows)
    for (std::size_t i = 0; i < cols.size(); ++i)
      std::printf("%-*s%s", static_cast<int>(w[i]), r.contains(cols[i]) ? scalar(r[cols[i]]).c_str() : "-",
                  i + 1 < cols.size() ? "  " : "\n");
}

// Text form: objects as "key: value" (nested objects indented), arrays of
// objects as tables.
void print_text(const json &v, int indent = 0) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  if (v.is_array() && !v.empty() && v[0].is_object()) {
    print_table(v);
  } else if (v.is_object()) {
    for (const auto &[k, x] : v.items()) {
      if (x.is_structured() && !x.empty()) {
        std::printf("%s%s:\n", pad.c_str(), k.c_str());
        print_text(x, indent + 2);
      } else {
        std::printf("%s%s: %s\n", pad.c_str(), k.c_str(), scalar(x).c_str());
      }
    }
  } else if (v.is_array()) {
    for (const auto &x : v)
      std::printf("%s%s\n", pad.c_str(), scalar(x).c_str());
  } else {
    std::printf("%s%s\n", pad.c_str(), scalar(v).c_str());
  }
}

volatile std::sig_atomic_t g_stop = 0;

}  // namespace

int main(int argc, char **argv) {
  std::string sock = getenv("HDE_CTL_SOCK") ? getenv("HDE_CTL_SOCK") : kDefaultSock;
  bool as_json = false;
  double watch = 0;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&](const char *what) -> const char * {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "hdectl: %s needs a value\n", what);
        std::exit(2);
      }
      return argv[++i];
    };
    // The long options are also taken after COMMAND (`hdectl show stats
    // --watch 1`): no command argument starts with "--". Anything else
    // after the first command word belongs to the command.
    if (!words.empty() && a != "--socket" && a != "--format" && a != "--watch") {
      words.push_back(a);
    } else if (a == "-s" || a == "--socket") {
      sock = need("-s");
    } else if (a == "--format") {
      std::string f = need("--format");
      if (f != "text" && f != "json") {
        std::fprintf(stderr, "hdectl: --format text|json, not '%s'\n", f.c_str());
        return 2;
      }
      as_json = f == "json";
    } else if (a == "--watch") {
      char *end = nullptr;
      const char *v = need("--watch");
      watch = std::strtod(v, &end);
      if (*end != '\0' || watch <= 0) {
        std::fprintf(stderr, "hdectl: --watch needs a positive number of seconds\n");
        return 2;
      }
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "hdectl: unknown option '%s' (see --help)\n", a.c_str());
      return 2;
    } else {
      words.push_back(a);
    }
  }
  if (words.empty()) {
    usage();
    return 2;
  }
  std::signal(SIGINT, [](int) { g_stop = 1; });
  const std::string req = json{{"argv", words}}.dump();
  for (;;) {
    std::string err;
    std::string line = roundtrip(sock, req, err);
    if (line.empty()) {
      std::fprintf(stderr, "hdectl: %s\n", err.c_str());
      return 2;
    }
    json rep = json::parse(line, nullptr, false);
    if (rep.is_discarded() || !rep.is_object()) {
      std::fprintf(stderr, "hdectl: malformed reply: %s\n", line.c_str());
      return 2;
    }
    if (!rep.value("ok", false)) {
      std::fprintf(stderr, "hdectl: %s\n", rep.value("error", std::string("error")).c_str());
      return 1;
    }
    if (as_json)
      std::printf("%s\n", rep["result"].dump(2).c_str());
    else
      print_text(rep["result"]);
    std::fflush(stdout);
    if (watch <= 0 || g_stop)
      return 0;
    usleep(static_cast<useconds_t>(watch * 1e6));
    if (g_stop)
      return 0;
    if (!as_json)
      std::printf("\n");
  }
}
