// registry.cpp — command lookup, argument checks, built-in commands.
#include "registry.h"

namespace hde::ctl {

namespace {
json error_reply(const std::string &e) { return json{{"ok", false}, {"error", e}}; }
}  // namespace

registry::registry(std::string version) : version_(std::move(version)) {
  add({"list-commands", "list-commands", "every command with its usage", 0, 0, true,
       [this](const std::vector<std::string> &, reply &r) {
         r.result = json::array();
         for (const auto &[name, c] : cmds_)
           r.result.push_back({{"command", name}, {"usage", c.usage}, {"help", c.help},
                               {"safe_while_running", c.safe_while_running}});
       }});
  add({"help", "help COMMAND...", "usage and help of one command", 1, 4, true,
       [this](const std::vector<std::string> &args, reply &r) {
         std::string name;
         for (const auto &a : args)
           name += (name.empty() ? "" : " ") + a;
         auto it = cmds_.find(name);
         if (it == cmds_.end()) {
           r.fail("no command '" + name + "' (see list-commands)");
           return;
         }
         r.result = {{"command", it->first}, {"usage", it->second.usage}, {"help", it->second.help},
                     {"min_args", it->second.min_args}, {"max_args", it->second.max_args},
                     {"safe_while_running", it->second.safe_while_running}};
       }});
  add({"version", "version", "gateway version", 0, 0, true,
       [this](const std::vector<std::string> &, reply &r) { r.result = {{"version", version_}}; }});
}

void registry::add(command c) { cmds_[c.name] = std::move(c); }

std::vector<std::string> registry::names() const {
  std::vector<std::string> v;
  for (const auto &[name, c] : cmds_)
    v.push_back(name);
  return v;
}

json registry::dispatch(const json &req) {
  ++st_.requests;
  std::vector<std::string> words;
  if (!req.is_object()) {
    ++st_.bad_json;
    return error_reply("request must be a JSON object with \"argv\" or \"cmd\"");
  }
  auto strings = [&](const json &a) {
    if (!a.is_array())
      return false;
    for (const auto &w : a) {
      if (!w.is_string())
        return false;
      words.push_back(w.get<std::string>());
    }
    return true;
  };
  if (req.contains("argv")) {
    if (!strings(req["argv"])) {
      ++st_.bad_json;
      return error_reply("\"argv\" must be an array of strings");
    }
  } else if (req.contains("cmd") && req["cmd"].is_string()) {
    const std::string cmd = req["cmd"].get<std::string>();
    std::size_t pos = 0;
    while (pos < cmd.size()) {  // split the name on spaces
      std::size_t e = cmd.find(' ', pos);
      if (e == std::string::npos)
        e = cmd.size();
      if (e > pos)
        words.push_back(cmd.substr(pos, e - pos));
      pos = e + 1;
    }
    if (req.contains("args") && !strings(req["args"])) {
      ++st_.bad_json;
      return error_reply("\"args\" must be an array of strings");
    }
  } else {
    ++st_.bad_json;
    return error_reply("request must have \"argv\" (array) or \"cmd\" (string)");
  }
  // The longest prefix of the words that names a command.
  const command *c = nullptr;
  std::size_t used = 0;
  std::string name;
  for (std::size_t n = 1; n <= words.size() && n <= 3; ++n) {
    name += (n > 1 ? " " : "") + words[n - 1];
    auto it = cmds_.find(name);
    if (it != cmds_.end()) {
      c = &it->second;
      used = n;
    }
  }
  if (c == nullptr) {
    ++st_.unknown;
    return error_reply("unknown command '" + (words.empty() ? std::string() : words[0]) +
                       (words.size() > 1 ? " " + words[1] : "") + "' (see list-commands)");
  }
  std::vector<std::string> args(words.begin() + static_cast<long>(used), words.end());
  if (static_cast<int>(args.size()) < c->min_args || static_cast<int>(args.size()) > c->max_args) {
    ++st_.bad_args;
    return error_reply("'" + c->name + "' takes " +
                       (c->min_args == c->max_args ? std::to_string(c->min_args)
                                                   : std::to_string(c->min_args) + ".." + std::to_string(c->max_args)) +
                       " argument(s), got " + std::to_string(args.size()) + "; usage: " + c->usage);
  }
  reply r;
  try {
    c->fn(args, r);
  } catch (const std::exception &e) {
    r.fail(std::string("internal error: ") + e.what());
  }
  if (!r.ok) {
    ++st_.failed;
    return error_reply(r.error);
  }
  return json{{"ok", true}, {"result", std::move(r.result)}};
}

std::string registry::handle(std::string_view request) {
  json req = json::parse(request, nullptr, false);
  if (req.is_discarded()) {
    ++st_.requests;
    ++st_.bad_json;
    return error_reply("malformed JSON").dump();
  }
  return dispatch(req).dump();
}

}  // namespace hde::ctl
