// mcpmw eval: the JavaScript string semantics the prototype's outputs depend on (seed §3.3,
// §3.6), on UTF-8 strings. Inputs are valid UTF-8 (ParseJson rejects anything else).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mcpmw::eval {

// Orders `a` and `b` as JS's `<` does: by UTF-16 code units. Equals byte order except that
// U+E000..U+FFFF sort after astral characters. Returns <0, 0 or >0.
int CompareCodeUnits(std::string_view a, std::string_view b);

// String.prototype.trim: strips ECMAScript WhiteSpace and LineTerminator code points (ASCII
// space and \t \n \v \f \r, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F,
// U+3000, U+FEFF) from both ends. The view points into `s`.
std::string_view JsTrim(std::string_view s);

// String.prototype.toLowerCase for ASCII, Latin-1, Latin Extended-A, Greek and Coptic (without
// the final-sigma rule), Cyrillic, Armenian and fullwidth Latin letters; other code points are
// kept. U+0130 becomes "i̇" (i + U+0307), as in JS.
std::string JsToLower(std::string_view s);

// String.prototype.slice(0, units): the longest prefix of at most `units` UTF-16 code units.
// Where JS would split a surrogate pair, the whole astral character is left out.
std::string_view Utf16Prefix(std::string_view s, size_t units);

}  // namespace mcpmw::eval
