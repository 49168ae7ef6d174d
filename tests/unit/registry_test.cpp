// registry_test.cpp — the control command registry: lookup by longest
// prefix, argument counts checked in one place, built-ins, and garbage in
// (malformed JSON, wrong types, random bytes) always answered with an error.
#include <gtest/gtest.h>

#include <random>

#include "registry.h"

using namespace hde::ctl;

namespace {
// The registry is not movable (built-ins capture it): fill one in place.
void fill(registry &r) {
  r.add({"show stats", "show stats", "totals", 0, 0, true,
         [](const std::vector<std::string> &, reply &out) { out.result = {{"pages", 42}}; }});
  r.add({"set mode", "set mode M", "mode", 1, 1, true,
         [](const std::vector<std::string> &a, reply &out) {
           if (a[0] != "internet" && a[0] != "datacenter")
             out.fail("unknown mode");
           else
             out.result = {{"mode", a[0]}};
         }});
  r.add({"set", "set KEY VALUE", "a shorter name sharing a prefix", 2, 2, true,
         [](const std::vector<std::string> &a, reply &out) { out.result = {{a[0], a[1]}}; }});
}
json ask(registry &r, const std::string &req) { return json::parse(r.handle(req)); }
}  // namespace

TEST(Registry, DispatchesByLongestPrefix) {
  registry r("test 1.0");
  fill(r);
  EXPECT_EQ(ask(r, R"({"argv":["show","stats"]})")["result"]["pages"], 42);
  EXPECT_EQ(ask(r, R"({"argv":["set","mode","internet"]})")["result"]["mode"], "internet");
  EXPECT_EQ(ask(r, R"({"argv":["set","x","1"]})")["result"]["x"], "1");
  EXPECT_EQ(ask(r, R"({"cmd":"set mode","args":["datacenter"]})")["result"]["mode"], "datacenter");
}

TEST(Registry, ArgumentCountsAreChecked) {
  registry r("test 1.0");
  fill(r);
  auto j = ask(r, R"({"argv":["show","stats","extra"]})");
  EXPECT_FALSE(j["ok"]);
  EXPECT_NE(j["error"].get<std::string>().find("usage: show stats"), std::string::npos);
  j = ask(r, R"({"argv":["set","mode"]})");  // "set mode" with 0 args; "set" with 1
  EXPECT_FALSE(j["ok"]);
  EXPECT_EQ(r.stats().bad_args.load(), 2u);
}

TEST(Registry, HandlerErrorsAreReplies) {
  registry r("test 1.0");
  fill(r);
  auto j = ask(r, R"({"argv":["set","mode","warp"]})");
  EXPECT_FALSE(j["ok"]);
  EXPECT_EQ(j["error"], "unknown mode");
  EXPECT_EQ(r.stats().failed.load(), 1u);
}

TEST(Registry, BuiltIns) {
  registry r("test 1.0");
  fill(r);
  auto j = ask(r, R"({"argv":["list-commands"]})");
  ASSERT_TRUE(j["ok"]);
  std::vector<std::string> names;
  for (const auto &c : j["result"])
    names.push_back(c["command"]);
  EXPECT_NE(std::find(names.begin(), names.end(), "show stats"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "help"), names.end());
  j = ask(r, R"({"argv":["help","set","mode"]})");
  EXPECT_EQ(j["result"]["usage"], "set mode M");
  EXPECT_FALSE(ask(r, R"({"argv":["help","nope"]})")["ok"]);
  EXPECT_EQ(ask(r, R"({"argv":["version"]})")["result"]["version"], "test 1.0");
}

TEST(Registry, BadRequestsGetErrors) {
  registry r("test 1.0");
  fill(r);
  for (const char *bad : {"", "{", "[]", "42", "null", R"({"argv":"show"})", R"({"argv":[1,2]})",
                          R"({"cmd":7})", R"({"cmd":"show stats","args":"x"})", R"({})",
                          R"({"argv":[]})", R"({"argv":["nope"]})"}) {
    auto j = ask(r, bad);
    EXPECT_FALSE(j["ok"]) << bad;
    EXPECT_FALSE(j["error"].get<std::string>().empty()) << bad;
  }
  EXPECT_EQ(r.stats().unknown.load(), 2u);
}

// Fuzz-style: random bytes and random JSON-ish text never crash and always
// get a well-formed reply.
TEST(Registry, RandomRequestsAlwaysGetAReply) {
  registry r("test 1.0");
  fill(r);
  std::mt19937_64 rng(5);
  const std::string alphabet = R"({}[]":,argvcmdshowsetmode 0123456789\nulltrue)";
  for (int i = 0; i < 20000; ++i) {
    std::string req(rng() % 80, ' ');
    for (char &c : req)
      c = (rng() % 3 == 0) ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
    json j = json::parse(r.handle(req), nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    ASSERT_TRUE(j.contains("ok"));
  }
  EXPECT_EQ(r.stats().requests.load(), 20000u);
}
