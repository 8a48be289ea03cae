#include "src/jsonrpc/errors.h"

#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/strings.h"

namespace mcpmw::jsonrpc {

namespace {

// `text` with every byte that does not start a well-formed UTF-8 sequence replaced by U+FFFD.
std::string ReplaceInvalidUtf8(std::string_view text) {
  std::string clean;
  clean.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (n > 0 && i + n <= text.size() && simdjson::validate_utf8(text.data() + i, n)) {
      clean.append(text.substr(i, n));
      i += n;
    } else {
      clean.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return clean;
}

void AppendEscaped(std::string_view text, bool short_b_f, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t start = out->size();
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  bool utf8_checked = false;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      continue;
    }
    if (c >= 0x80) {
      // The first non-ASCII byte: check the rest once. Bytes that are not UTF-8 (an identity
      // from a flag or a variable, say) would make the whole document invalid JSON, so such a
      // string is written with U+FFFD in their place.
      if (!utf8_checked) {
        utf8_checked = true;
        if (!simdjson::validate_utf8(text.data() + i, text.size() - i)) {
          out->resize(start);
          AppendEscaped(ReplaceInvalidUtf8(text), short_b_f, out);
          return;
        }
      }
      continue;
    }
    out->append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
      case '\f':
        if (short_b_f) {
          out->append(c == '\b' ? "\\b" : "\\f");
          break;
        }
        [[fallthrough]];
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(text.data() + run, text.size() - run);
  out->push_back('"');
}

}  // namespace

void AppendJsonString(std::string_view text, std::string* out) {
  AppendEscaped(text, /*short_b_f=*/false, out);
}

void AppendJsonStringLikeJs(std::string_view text, std::string* out) {
  AppendEscaped(text, /*short_b_f=*/true, out);
}

std::string ErrorResponse(std::string_view id, int code, std::string_view message,
                          std::string_view data_json) {
  std::string out =
      absl::StrCat(R"({"jsonrpc":"2.0","id":)", Sv(id.empty() ? std::string_view("null") : id),
                   R"(,"error":{"code":)", code, R"(,"message":)");
  AppendJsonString(message, &out);
  if (!data_json.empty()) {
    absl::StrAppend(&out, R"(,"data":)", Sv(data_json));
  }
  out.append("}}");
  return out;
}

std::string CancelledNotification(std::string_view request_id, std::string_view reason) {
  std::string out =
      absl::StrCat(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":)",
                   Sv(request_id), R"(,"reason":)");
  AppendJsonString(reason, &out);
  out.append("}}");
  return out;
}

}  // namespace mcpmw::jsonrpc
