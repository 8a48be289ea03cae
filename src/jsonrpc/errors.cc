#include "src/jsonrpc/errors.h"

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"

namespace mcpmw::jsonrpc {

namespace {

void AppendEscaped(std::string_view text, bool short_b_f, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
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

}  // namespace mcpmw::jsonrpc
