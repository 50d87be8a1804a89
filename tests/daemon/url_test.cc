#include "daemon/http/url.h"
#include "daemon/net_address.h"

#include <doctest/doctest.h>

using namespace gv;
using namespace gv::http;

TEST_CASE("percent decoding accepts valid escapes and rejects bad ones") {
  CHECK(*PercentDecode("a%2Fb%20c") == "a/b c");
  CHECK(*PercentDecode("plain+text") == "plain+text");
  CHECK(*PercentDecode("%e2%9c%93") == "\xe2\x9c\x93");
  CHECK_FALSE(PercentDecode("%").ok());
  CHECK_FALSE(PercentDecode("%2").ok());
  CHECK_FALSE(PercentDecode("abc%g0").ok());
  CHECK_FALSE(PercentDecode("a%00b").ok());
  CHECK_FALSE(PercentDecode(std::string("a\0b", 3)).ok());
  CHECK(PercentDecode("%zz").status().message().find("offset 0") != std::string::npos);
  for (const std::string& s : {std::string("a/b c"), std::string("ümlaut?&=#"), std::string("\x01\x7f\xff", 3)}) {
    CHECK(*PercentDecode(PercentEncode(s)) == s);
  }
}

TEST_CASE("query strings") {
  auto q = ParseQuery("raw&index=12&wait=30s&prefix=a%2Fb&&");
  REQUIRE(q.ok());
  CHECK(q->count("raw") == 1);
  CHECK(q->at("raw").empty());
  CHECK(q->at("index") == "12");
  CHECK(q->at("prefix") == "a/b");
  CHECK_FALSE(ParseQuery("a=%zz").ok());
  std::string many;
  for (int i = 0; i < 40; ++i) many += "p" + std::to_string(i) + "&";
  CHECK_FALSE(ParseQuery(many, 32).ok());
}

TEST_CASE("durations and integers") {
  CHECK(*ParseDuration("30s") == Seconds(30));
  CHECK(*ParseDuration("250ms") == Millis(250));
  CHECK(*ParseDuration("2m") == Seconds(120));
  CHECK(*ParseDuration("10") == Seconds(10));
  CHECK(*ParseDuration("1500us") == Duration(1500));
  CHECK_FALSE(ParseDuration("").ok());
  CHECK_FALSE(ParseDuration("-1s").ok());
  CHECK_FALSE(ParseDuration("5 s").ok());
  CHECK_FALSE(ParseDuration("3d").ok());
  CHECK_FALSE(ParseDuration("99999999999999999999h").ok());
  CHECK_FALSE(ParseDuration("9999999999999h").ok());
  CHECK(*ParseUint("0") == 0u);
  CHECK(*ParseUint("18446744073709551615") == 18446744073709551615ULL);
  CHECK_FALSE(ParseUint("18446744073709551616").ok());
  CHECK_FALSE(ParseUint("+1").ok());
  CHECK_FALSE(ParseUint("1x").ok());
}

TEST_CASE("socket addresses") {
  auto a = net::ParseSocketAddress("127.0.0.1:7401");
  REQUIRE(a.ok());
  CHECK(a->port == 7401);
  CHECK(a->ToString() == "127.0.0.1:7401");
  CHECK(net::FormatSocketAddress(a->storage) == "127.0.0.1:7401");
  auto b = net::ParseSocketAddress("[::1]:80");
  REQUIRE(b.ok());
  CHECK(b->ToString() == "[::1]:80");
  CHECK_FALSE(net::ParseSocketAddress("127.0.0.1").ok());
  CHECK_FALSE(net::ParseSocketAddress("127.0.0.1:99999").ok());
  CHECK_FALSE(net::ParseSocketAddress("localhost:80").ok());
  CHECK_FALSE(net::ParseSocketAddress("::1:80").ok());
  CHECK_FALSE(net::ParseSocketAddress("[::1]80").ok());
  CHECK_FALSE(net::ParseSocketAddress(std::string("127.0.0.1\0junk:80", 17)).ok());
}
