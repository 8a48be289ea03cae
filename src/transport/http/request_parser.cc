#include "src/transport/http/request_parser.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/strings.h"

namespace mcpmw::http {
namespace {

// A Content-Length body is reserved up front only up to this much: the header is a claim, and a
// client that never sends the bytes must not make every connection hold max_body_bytes.
constexpr size_t kMaxUpFrontReserve = size_t{1} << 20;

RequestParser* Self(http_parser* p) { return static_cast<RequestParser*>(p->data); }

}  // namespace

const std::string* Request::Find(std::string_view lower_name) const {
  for (const Header& h : headers) {
    if (h.name == lower_name) {
      return &h.value;
    }
  }
  return nullptr;
}

void Request::Clear() {
  method.clear();
  target.clear();
  path.clear();
  query.clear();
  headers.clear();
  body.clear();
  keep_alive = true;
  version_minor = 1;
  peer.clear();
}

RequestParser::RequestParser(const Limits& limits) : limits_(limits) {
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = &RequestParser::OnMessageBegin;
  settings_.on_url = &RequestParser::OnUrl;
  settings_.on_header_field = &RequestParser::OnHeaderField;
  settings_.on_header_value = &RequestParser::OnHeaderValue;
  settings_.on_headers_complete = &RequestParser::OnHeadersComplete;
  settings_.on_body = &RequestParser::OnBody;
  settings_.on_chunk_header = &RequestParser::OnChunkHeader;
  settings_.on_message_complete = &RequestParser::OnMessageComplete;
  StartRequest();
}

void RequestParser::StartRequest() {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  request_ = Request();
  started_ = false;
  headers_complete_ = false;
  complete_ = false;
  expects_continue_ = false;
  last_was_value_ = false;
  header_bytes_ = 0;
  last_chunk_ = false;
  in_trailers_ = false;
  trailer_bytes_ = 0;
}

void RequestParser::Fail(int status, std::string message) {
  if (error_status_ == 0) {
    error_status_ = status;
    error_message_ = std::move(message);
  }
}

RequestParser::FeedResult RequestParser::Feed(std::string_view data) {
  if (error_status_ != 0) {
    return {0, State::kError};
  }
  size_t total = 0;
  while (total < data.size()) {
    std::string_view piece = data.substr(total);
    // While the headers (or a chunked body's trailers) are incomplete, give http-parser no more
    // than what is left of the budget: then the limit holds exactly, however the bytes were split
    // into reads.
    bool truncated = false;
    const bool in_headers = !headers_complete_;
    const bool limited = in_headers || in_trailers_;
    if (limited) {
      size_t used = in_headers ? header_bytes_ : trailer_bytes_;
      size_t allowed = limits_.max_header_bytes - used;
      if (allowed == 0) {
        FailOverHeaderLimit(in_headers);
        return {total, State::kError};
      }
      if (piece.size() > allowed) {
        piece = piece.substr(0, allowed);
        truncated = true;
      }
    }
    size_t n = http_parser_execute(&parser_, &settings_, piece.data(), piece.size());
    total += n;
    if (n > 0) {
      started_ = true;
    }
    if (in_headers) {
      header_bytes_ += n;
    } else if (in_trailers_) {
      trailer_bytes_ += n;
    }
    if (complete_) {
      // OnMessageComplete paused the parser right after the request's last byte.
      return {total, State::kComplete};
    }
    auto err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED && !in_trailers_ && last_chunk_) {
      // OnChunkHeader paused right after the last chunk's size line: the trailers start here.
      http_parser_pause(&parser_, 0);
      in_trailers_ = true;
      continue;
    }
    if (err != HPE_OK) {
      if (err == HPE_HEADER_OVERFLOW) {
        Fail(431, "request line and headers too long");
      } else {
        Fail(400, absl::StrCat("malformed request: ", http_errno_description(err)));
      }
      return {total, State::kError};
    }
    if (n < piece.size()) {
      // http-parser stops early without an error only after a protocol upgrade, which ends the
      // message (and so is handled above); anything else would loop forever here.
      Fail(400, "malformed request: the parser stopped early");
      return {total, State::kError};
    }
    if (truncated && (!in_headers || !headers_complete_)) {
      // The whole budget went in and the section has not ended: one more byte is over it.
      FailOverHeaderLimit(in_headers);
      return {total, State::kError};
    }
  }
  return {total, State::kNeedMore};
}

void RequestParser::Recycle(Request&& used) {
  // Only into a parser that has not begun the next request, and not a large body's buffer (a
  // connection must not keep what one big request needed).
  constexpr size_t kMaxRecycledBody = size_t{64} * 1024;
  if (started_ || used.body.capacity() > kMaxRecycledBody) {
    return;
  }
  used.Clear();
  request_ = std::move(used);
}

Request RequestParser::TakeRequest() {
  if (!complete_) {
    return {};
  }
  Request out = std::move(request_);
  StartRequest();
  return out;
}

int RequestParser::OnMessageBegin(http_parser* p) {
  Self(p)->started_ = true;
  return 0;
}

int RequestParser::OnUrl(http_parser* p, const char* at, size_t length) {
  Self(p)->request_.target.append(at, length);
  return 0;
}

void RequestParser::FailOverHeaderLimit(bool in_headers) {
  Fail(431, absl::StrCat(in_headers ? "request line and headers" : "request trailers", " exceed ",
                         limits_.max_header_bytes, " bytes"));
}

int RequestParser::OnHeaderField(http_parser* p, const char* at, size_t length) {
  RequestParser& self = *Self(p);
  if (self.headers_complete_) {
    return 0;  // trailers after a chunked body: counted by Feed, not kept (nothing reads them)
  }
  std::vector<Header>& headers = self.request_.headers;
  if (headers.empty() || self.last_was_value_) {
    headers.emplace_back();
  }
  headers.back().name.append(at, length);
  self.last_was_value_ = false;
  return 0;
}

int RequestParser::OnHeaderValue(http_parser* p, const char* at, size_t length) {
  RequestParser& self = *Self(p);
  if (self.headers_complete_) {
    return 0;
  }
  std::vector<Header>& headers = self.request_.headers;
  if (headers.empty()) {
    headers.emplace_back();  // http-parser never sends a value first; stay safe if it did
  }
  headers.back().value.append(at, length);
  self.last_was_value_ = true;
  return 0;
}

int RequestParser::OnHeadersComplete(http_parser* p) {
  RequestParser& self = *Self(p);
  if (p->http_major != 1) {
    // http-parser takes any digits; mcpmw speaks HTTP/1.0 and 1.1 only.
    self.Fail(400, absl::StrCat("unsupported HTTP version ", p->http_major, ".", p->http_minor));
    return -1;
  }
  Request& r = self.request_;
  for (Header& h : r.headers) {
    absl::AsciiStrToLower(&h.name);
    absl::StripAsciiWhitespace(&h.value);
  }
  r.method = http_method_str(static_cast<http_method>(p->method));
  r.version_minor = p->http_minor;
  std::string_view target = r.target;
  target = target.substr(0, target.find('#'));
  size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  r.query = q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1));
  self.headers_complete_ = true;

  if ((p->flags & F_CONTENTLENGTH) != 0 && (p->flags & F_CHUNKED) == 0) {
    if (p->content_length > self.limits_.max_body_bytes) {
      self.Fail(413, absl::StrCat("request body of ", p->content_length, " bytes exceeds ",
                                  self.limits_.max_body_bytes, " bytes"));
      return -1;
    }
    r.body.reserve(std::min<size_t>(p->content_length, kMaxUpFrontReserve) +
                   simdjson::SIMDJSON_PADDING);
  }
  if (p->http_minor >= 1) {
    const std::string* expect = r.Find("expect");
    self.expects_continue_ = expect != nullptr && absl::EqualsIgnoreCase(*expect, "100-continue");
  }
  return 0;
}

int RequestParser::OnBody(http_parser* p, const char* at, size_t length) {
  RequestParser& self = *Self(p);
  std::string& body = self.request_.body;
  if (length > self.limits_.max_body_bytes - body.size()) {
    self.Fail(413, absl::StrCat("request body exceeds ", self.limits_.max_body_bytes, " bytes"));
    return -1;
  }
  body.append(at, length);
  return 0;
}

int RequestParser::OnChunkHeader(http_parser* p) {
  RequestParser& self = *Self(p);
  // p->content_length is this chunk's size. Checked here, at a fixed place in the stream, rather
  // than as the data arrives: http-parser hands data over at read boundaries, so a check there
  // would let the read sizes decide between 413 and a later syntax error.
  if (p->content_length > self.limits_.max_body_bytes - self.request_.body.size()) {
    self.Fail(413, absl::StrCat("request body exceeds ", self.limits_.max_body_bytes, " bytes"));
    return -1;
  }
  if (p->content_length == 0) {
    // The last chunk: stop so that Feed can hold the trailers to the header budget from here.
    self.last_chunk_ = true;
    http_parser_pause(p, 1);
  }
  return 0;
}

int RequestParser::OnMessageComplete(http_parser* p) {
  RequestParser& self = *Self(p);
  Request& r = self.request_;
  // After an Upgrade (or CONNECT) the bytes that follow are another protocol, which mcpmw does
  // not speak: the connection closes after the answer.
  r.keep_alive = http_should_keep_alive(p) != 0 && p->upgrade == 0;
  if (r.body.capacity() < r.body.size() + simdjson::SIMDJSON_PADDING) {
    r.body.reserve(r.body.size() + simdjson::SIMDJSON_PADDING);
  }
  self.complete_ = true;
  // Stop right after this request: pipelined bytes stay with the caller until it has answered.
  http_parser_pause(p, 1);
  return 0;
}

}  // namespace mcpmw::http
