// RequestParser: every request in the table parses to the same result whether its bytes arrive
// whole, one at a time, or in random pieces; the header and body limits hold exactly at their
// boundaries however the bytes are split.
#include "src/transport/http/request_parser.h"

#include <algorithm>
#include <cstddef>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "simdjson.h"

namespace mcpmw::http {
namespace {

// What one parsed request (or the error that ended parsing) looks like, comparable as a whole.
struct Parsed {
  int error = 0;  // 0 for a request
  std::string method;
  std::string target;
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = false;
  int version_minor = 0;
  bool operator==(const Parsed&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Parsed& p) {
  if (p.error != 0) {
    return os << "error " << p.error;
  }
  os << p.method << " " << p.target << " [" << p.path << "|" << p.query << "] 1." << p.version_minor
     << (p.keep_alive ? " keep-alive" : " close") << " {";
  for (const auto& [n, v] : p.headers) {
    os << n << "=" << v << "; ";
  }
  return os << "} body[" << p.body << "]";
}

Parsed Ok(std::string method, std::string target, std::string path, std::string query,
          std::vector<std::pair<std::string, std::string>> headers, std::string body,
          bool keep_alive, int version_minor = 1) {
  return Parsed{.method = std::move(method),
                .target = std::move(target),
                .path = std::move(path),
                .query = std::move(query),
                .headers = std::move(headers),
                .body = std::move(body),
                .keep_alive = keep_alive,
                .version_minor = version_minor};
}

Parsed Err(int status) { return Parsed{.error = status}; }

// Feeds `input` in pieces ending at each of `cuts` (ascending) and at the end, the way a
// connection does: unconsumed bytes are kept and given again with the next piece.
std::vector<Parsed> Run(std::string_view input, const std::vector<size_t>& cuts,
                        const Limits& limits = Limits()) {
  RequestParser parser(limits);
  std::vector<Parsed> out;
  std::string pending;
  size_t fed = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    pending.append(input.substr(fed, end - fed));
    fed = end;
    while (!pending.empty()) {
      RequestParser::FeedResult r = parser.Feed(pending);
      EXPECT_LE(r.consumed, pending.size());
      pending.erase(0, r.consumed);
      if (r.state == RequestParser::State::kError) {
        EXPECT_FALSE(parser.error_message().empty());
        out.push_back(Err(parser.error_status()));
        return out;
      }
      if (r.state == RequestParser::State::kNeedMore) {
        EXPECT_TRUE(pending.empty()) << "kNeedMore left bytes unconsumed";
        break;
      }
      Request req = parser.TakeRequest();
      EXPECT_GE(req.body.capacity(), req.body.size() + simdjson::SIMDJSON_PADDING);
      Parsed p{.method = req.method,
               .target = req.target,
               .path = req.path,
               .query = req.query,
               .body = req.body,
               .keep_alive = req.keep_alive,
               .version_minor = req.version_minor};
      for (Header& h : req.headers) {
        p.headers.emplace_back(h.name, h.value);
      }
      out.push_back(std::move(p));
    }
  }
  return out;
}

std::vector<size_t> EveryByte(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < n; ++i) {
    cuts.push_back(i);
  }
  return cuts;
}

std::vector<size_t> RandomCuts(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<size_t> cuts;
  if (n < 2) {
    return cuts;
  }
  std::uniform_int_distribution<size_t> pick(1, n - 1);
  size_t count = std::uniform_int_distribution<size_t>(1, std::min<size_t>(n - 1, 12))(rng);
  for (size_t i = 0; i < count; ++i) {
    cuts.push_back(pick(rng));
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

// Checks that whole, byte-by-byte and five random splittings all give `expected`.
void ExpectEverySplitGives(std::string_view input, const std::vector<Parsed>& expected,
                           const Limits& limits = Limits()) {
  EXPECT_EQ(Run(input, {}, limits), expected) << "whole";
  EXPECT_EQ(Run(input, EveryByte(input.size()), limits), expected) << "byte by byte";
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    EXPECT_EQ(Run(input, RandomCuts(input.size(), seed), limits), expected) << "seed " << seed;
  }
}

struct Case {
  const char* name;
  std::string input;
  std::vector<Parsed> expected;
};

const std::vector<Case>& Table() {
  static const std::vector<Case> cases = {
      {"get with query",
       "GET /mcp?session=1&x=y HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
       {Ok("GET", "/mcp?session=1&x=y", "/mcp", "session=1&x=y",
           {{"host", "example.com"}, {"accept", "*/*"}}, "", true)}},
      {"post with content-length",
       "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"
       "\r\n{\"jsonrpc\":\"2.0\"}",
       {Ok("POST", "/mcp", "/mcp", "",
           {{"host", "a"}, {"content-type", "application/json"}, {"content-length", "17"}},
           R"({"jsonrpc":"2.0"})", true)}},
      {"chunked body is decoded",
       "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n "
       "world\r\n0\r\n\r\n",
       {Ok("POST", "/up", "/up", "", {{"transfer-encoding", "chunked"}}, "hello world", true)}},
      {"chunked trailers are not headers",
       "POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: "
       "1\r\n\r\n",
       {Ok("POST", "/t", "/t", "", {{"transfer-encoding", "chunked"}}, "abc", true)}},
      {"names lower-cased and values trimmed",
       "GET / HTTP/1.1\r\nX-MiXeD-CaSe:    padded value \t \r\nEmpty:\r\n\r\n",
       {Ok("GET", "/", "/", "", {{"x-mixed-case", "padded value"}, {"empty", ""}}, "", true)}},
      {"connection close",
       "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
       {Ok("GET", "/", "/", "", {{"connection", "close"}}, "", false)}},
      {"http/1.0 closes by default",
       "GET /old HTTP/1.0\r\n\r\n",
       {Ok("GET", "/old", "/old", "", {}, "", false, 0)}},
      {"http/1.0 keep-alive when asked",
       "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
       {Ok("GET", "/old", "/old", "", {{"connection", "keep-alive"}}, "", true, 0)}},
      {"empty query after question mark",
       "DELETE /mcp? HTTP/1.1\r\n\r\n",
       {Ok("DELETE", "/mcp?", "/mcp", "", {}, "", true)}},
      {"pipelined requests",
       "GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /3?q "
       "HTTP/1.1\r\nConnection: close\r\n\r\n",
       {Ok("GET", "/1", "/1", "", {}, "", true),
        Ok("POST", "/2", "/2", "", {{"content-length", "2"}}, "hi", true),
        Ok("GET", "/3?q", "/3", "q", {{"connection", "close"}}, "", false)}},
      {"request then garbage",
       "GET /1 HTTP/1.1\r\n\r\n\x01\x02 nonsense\r\n\r\n",
       {Ok("GET", "/1", "/1", "", {}, "", true), Err(400)}},
      {"garbage", "HELLO THERE\r\n\r\n", {Err(400)}},
      {"header without colon", "GET / HTTP/1.1\r\nHost example\r\n\r\n", {Err(400)}},
      {"both transfer-encoding and content-length",
       "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       {Err(400)}},
      {"transfer-encoding not ending in chunked",
       "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
       {Err(400)}},
      {"bad chunk size",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
       {Err(400)}},
      {"bad content-length", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", {Err(400)}},
      {"duplicate content-length",
       "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
       {Err(400)}},
      {"bad version", "GET / HTTP/7.1\r\n\r\n", {Err(400)}},
  };
  return cases;
}

TEST(RequestParser, EveryTableRequestParsesTheSameWholeByteByByteAndInRandomPieces) {
  for (const Case& c : Table()) {
    SCOPED_TRACE(c.name);
    ExpectEverySplitGives(c.input, c.expected);
  }
}

TEST(RequestParser, LeavesBytesAfterACompleteRequestUnconsumed) {
  RequestParser parser{Limits()};
  std::string first = "GET /a HTTP/1.1\r\n\r\n";
  std::string both = first + "GET /b HTTP/1.1\r\n\r\n";
  RequestParser::FeedResult r = parser.Feed(both);
  EXPECT_EQ(r.state, RequestParser::State::kComplete);
  EXPECT_EQ(r.consumed, first.size());
  EXPECT_EQ(parser.TakeRequest().path, "/a");
  EXPECT_FALSE(parser.started());
  r = parser.Feed(std::string_view(both).substr(first.size()));
  EXPECT_EQ(r.state, RequestParser::State::kComplete);
  EXPECT_EQ(parser.TakeRequest().path, "/b");
}

TEST(RequestParser, ParsesIntoARecycledRequestWithNothingOfTheOldOneLeft) {
  RequestParser parser{Limits()};
  ASSERT_EQ(parser
                .Feed("POST /first?x=1 HTTP/1.0\r\nHost: a\r\nX-Long: 0123456789abcdefghij\r\n"
                      "Content-Length: 5\r\n\r\nhello")
                .state,
            RequestParser::State::kComplete);
  Request first = parser.TakeRequest();
  first.peer = "127.0.0.1:1";
  const char* body_storage = first.body.data();
  parser.Recycle(std::move(first));
  ASSERT_EQ(parser.Feed("GET /second HTTP/1.1\r\nAccept: */*\r\n\r\n").state,
            RequestParser::State::kComplete);
  Request second = parser.TakeRequest();
  EXPECT_EQ(second.method, "GET");
  EXPECT_EQ(second.target, "/second");
  EXPECT_EQ(second.path, "/second");
  EXPECT_EQ(second.query, "");
  ASSERT_EQ(second.headers.size(), 1u);
  EXPECT_EQ(second.headers[0].name, "accept");
  EXPECT_EQ(second.headers[0].value, "*/*");
  EXPECT_EQ(second.body, "");
  EXPECT_EQ(second.body.data(), body_storage) << "the old body's storage is reused";
  EXPECT_TRUE(second.keep_alive);
  EXPECT_EQ(second.version_minor, 1);
  EXPECT_EQ(second.peer, "");
}

TEST(RequestParser, DoesNotRecycleIntoARequestAlreadyUnderWay) {
  RequestParser parser{Limits()};
  ASSERT_EQ(parser.Feed("GET /a HTTP/1.1\r\n\r\n").state, RequestParser::State::kComplete);
  Request a = parser.TakeRequest();
  ASSERT_EQ(parser.Feed("GET /b HTTP/1.1\r\nX: y").state, RequestParser::State::kNeedMore);
  parser.Recycle(std::move(a));
  ASSERT_EQ(parser.Feed("\r\n\r\n").state, RequestParser::State::kComplete);
  Request b = parser.TakeRequest();
  EXPECT_EQ(b.path, "/b");
  ASSERT_EQ(b.headers.size(), 1u);
  EXPECT_EQ(b.headers[0].value, "y");
}

TEST(RequestParser, ReportsStartedAndHeadersCompleteAsARequestArrives) {
  RequestParser parser{Limits()};
  EXPECT_FALSE(parser.started());
  EXPECT_EQ(parser.Feed("POST / HT").state, RequestParser::State::kNeedMore);
  EXPECT_TRUE(parser.started());
  EXPECT_FALSE(parser.headers_complete());
  EXPECT_EQ(parser.Feed("TP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n").state,
            RequestParser::State::kNeedMore);
  EXPECT_TRUE(parser.headers_complete());
  EXPECT_TRUE(parser.expects_continue());
  EXPECT_EQ(parser.Feed("abc").state, RequestParser::State::kComplete);
  Request r = parser.TakeRequest();
  EXPECT_EQ(r.body, "abc");
  ASSERT_NE(r.Find("expect"), nullptr);
  EXPECT_EQ(*r.Find("expect"), "100-continue");
  EXPECT_EQ(r.Find("Expect"), nullptr) << "Find takes lower-case names";
  EXPECT_FALSE(parser.started());
  EXPECT_FALSE(parser.expects_continue());
}

// A request whose request line and headers (blank line included) are exactly `size` bytes.
std::string RequestWithHeaderBytes(size_t size) {
  std::string head = "GET / HTTP/1.1\r\nX-Pad: ";
  std::string tail = "\r\n\r\n";
  return head + std::string(size - head.size() - tail.size(), 'p') + tail;
}

TEST(RequestParser, AcceptsHeadersOfExactlyTheLimitAndAnswers431OneByteOver) {
  Limits limits;
  limits.max_header_bytes = 200;
  std::string at_limit = RequestWithHeaderBytes(200);
  ASSERT_EQ(at_limit.size(), 200u);
  ExpectEverySplitGives(
      at_limit, {Ok("GET", "/", "/", "", {{"x-pad", std::string(200 - 27, 'p')}}, "", true)},
      limits);
  ExpectEverySplitGives(RequestWithHeaderBytes(201), {Err(431)}, limits);
}

TEST(RequestParser, Answers431ForHeadersThatNeverEnd) {
  Limits limits;
  limits.max_header_bytes = 100;
  std::string endless = "GET / HTTP/1.1\r\n" + std::string(150, 'a');
  ExpectEverySplitGives(endless, {Err(431)}, limits);
  RequestParser parser(limits);
  RequestParser::FeedResult r = parser.Feed(endless);
  EXPECT_EQ(r.state, RequestParser::State::kError);
  EXPECT_EQ(parser.error_status(), 431);
  EXPECT_EQ(parser.error_message(), "request line and headers exceed 100 bytes");
  EXPECT_EQ(parser.Feed("more").state, RequestParser::State::kError) << "errors are final";
}

TEST(RequestParser, Answers431ForTrailersOverTheHeaderLimit) {
  Limits limits;
  limits.max_header_bytes = 100;
  std::string input = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: " +
                      std::string(120, 't') + "\r\n\r\n";
  ExpectEverySplitGives(input, {Err(431)}, limits);
}

TEST(RequestParser, Answers413FromContentLengthBeforeTheBodyArrives) {
  Limits limits;
  limits.max_body_bytes = 16;
  ExpectEverySplitGives("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", {Err(413)}, limits);
  std::string sixteen(16, 'b');
  ExpectEverySplitGives("POST / HTTP/1.1\r\nContent-Length: 16\r\n\r\n" + sixteen,
                        {Ok("POST", "/", "/", "", {{"content-length", "16"}}, sixteen, true)},
                        limits);
  RequestParser parser(limits);
  parser.Feed("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n");
  EXPECT_EQ(parser.error_message(), "request body of 17 bytes exceeds 16 bytes");
}

TEST(RequestParser, Answers413WhenChunkedDataPassesTheBodyLimit) {
  Limits limits;
  limits.max_body_bytes = 16;
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  ExpectEverySplitGives(
      head + "8\r\naaaaaaaa\r\n8\r\nbbbbbbbb\r\n0\r\n\r\n",
      {Ok("POST", "/", "/", "", {{"transfer-encoding", "chunked"}}, "aaaaaaaabbbbbbbb", true)},
      limits);
  ExpectEverySplitGives(head + "8\r\naaaaaaaa\r\n9\r\nbbbbbbbbb\r\n0\r\n\r\n", {Err(413)}, limits);
  // Far over the limit in one chunk, most of it never sent: refused as soon as it passes.
  ExpectEverySplitGives(head + "100000\r\n" + std::string(17, 'c'), {Err(413)}, limits);
}

// Both found by the fuzzer: http-parser hands data to callbacks at read boundaries, so limits
// checked on that data let the read sizes choose between a limit error and a later syntax error.
TEST(RequestParser, ChecksChunkSizesAndTrailersWhereTheyStandNotWhereReadsEnd) {
  Limits limits;
  limits.max_body_bytes = 16;
  limits.max_header_bytes = 96;
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  // A chunk over the limit whose data is followed by a byte that is not CR.
  ExpectEverySplitGives(head + "11\r\n" + std::string(17, 'a') + "X\r\n0\r\n\r\n", {Err(413)},
                        limits);
  // Trailers over the limit that also hold a byte http-parser refuses, past the limit.
  ExpectEverySplitGives(
      head + "1\r\na\r\n0\r\nX-Long: " + std::string(100, 'y') + std::string(1, '\0') + "\r\n\r\n",
      {Err(431)}, limits);
  // Trailers of exactly the limit (the final CRLF included) pass.
  std::string trailer = "X-T: " + std::string(96 - 9, 't') + "\r\n\r\n";
  ASSERT_EQ(trailer.size(), 96u);
  ExpectEverySplitGives(head + "1\r\na\r\n0\r\n" + trailer,
                        {Ok("POST", "/", "/", "", {{"transfer-encoding", "chunked"}}, "a", true)},
                        limits);
  ExpectEverySplitGives(head + "1\r\na\r\n0\r\nX-T: " + std::string(96 - 8, 't') + "\r\n\r\n",
                        {Err(431)}, limits);
}

TEST(RequestParser, KeepsRequestBodiesPaddedForSimdjson) {
  RequestParser parser{Limits()};
  ASSERT_EQ(parser.Feed("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}").state,
            RequestParser::State::kComplete);
  Request r = parser.TakeRequest();
  EXPECT_EQ(r.body, "{}");
  EXPECT_GE(r.body.capacity(), 2 + simdjson::SIMDJSON_PADDING);
  ASSERT_EQ(parser.Feed("GET / HTTP/1.1\r\n\r\n").state, RequestParser::State::kComplete);
  EXPECT_GE(parser.TakeRequest().body.capacity(), simdjson::SIMDJSON_PADDING);
}

}  // namespace
}  // namespace mcpmw::http
