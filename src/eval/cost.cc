#include "src/eval/cost.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "src/common/sha256.h"
#include "src/eval/access.h"

namespace mcpmw::eval {
namespace {

struct Line {
  std::string_view category;
  double quantity;
  double unit_price;
};

JsonValue Record(std::string_view invocation_id, const Line (&lines)[3]) {
  JsonValue items = JsonValue::Array();
  double sum = 0;
  for (const Line& line : lines) {
    const double subtotal = line.quantity * line.unit_price;
    sum += subtotal;
    JsonValue item = JsonValue::Object();
    item.Set("category", line.category);
    item.Set("dimensionKey", invocation_id);
    item.Set("quantity", line.quantity);
    item.Set("unitPriceUsd", line.unit_price);
    item.Set("subtotalUsd", subtotal);
    items.Append(std::move(item));
  }
  const double total = RoundHalfEven4(sum);
  JsonValue usage = JsonValue::Object();
  usage.Set("inputTokens", lines[1].quantity);
  usage.Set("outputTokens", lines[2].quantity);
  usage.Set("totalTokens", lines[1].quantity + lines[2].quantity);
  JsonValue out = JsonValue::Object();
  out.Set("costRecordId", Sha256Hex({invocation_id, CanonicalJson(items), ToFixed(total, 4)}));
  out.Set("invocationId", invocation_id);
  out.Set("lineItems", std::move(items));
  out.Set("totalUsd", total);
  out.Set("usage", std::move(usage));
  return out;
}

double Tokens(double estimate) { return estimate > 0 ? std::floor(estimate) : 0; }

}  // namespace

double RoundHalfEven4(double x) {
  const double n = x * 1e4;
  const double f = std::floor(n);
  const double d = n - f;
  const double epsilon = 1e-12 * std::max(1.0, std::abs(n));
  double rounded = f;
  if (d > 0.5 + epsilon) {
    rounded = f + 1;
  } else if (d >= 0.5 - epsilon && std::fmod(f, 2.0) != 0) {
    rounded = f + 1;
  }
  // + 0.0 turns -0 into 0, as the prototype's total prints (and hashes) it.
  return rounded / 1e4 + 0.0;
}

JsonValue MeterCost(const JsonValue& ctx, const JsonValue& upstream) {
  const JsonValue* pricing = ctx.Find("pricing");
  auto price = [pricing](std::string_view key) -> const JsonValue* {
    const JsonValue* p = pricing != nullptr ? pricing->Find(key) : nullptr;
    return p != nullptr && p->is_number() ? p : nullptr;
  };
  const JsonValue* base = price("requestBaseFeeUsd");
  const JsonValue* input = price("inputTokenPriceUsd");
  const JsonValue* output = price("outputTokenPriceUsd");
  if (base == nullptr || input == nullptr || output == nullptr) {
    const Line zero[3] = {{"base-request", 0, 0}, {"input-tokens", 0, 0}, {"output-tokens", 0, 0}};
    return Record("", zero);
  }
  const double output_tokens =
      StrOf(upstream, "status") == "deny" ? 0 : Tokens(NumOf(ctx, "responseTokenEstimate"));
  const Line lines[3] = {
      {"base-request", 1, base->as_number()},
      {"input-tokens", Tokens(NumOf(ctx, "requestTokenEstimate")), input->as_number()},
      {"output-tokens", output_tokens, output->as_number()},
  };
  return Record(StrOf(ctx, "invocationId"), lines);
}

}  // namespace mcpmw::eval
