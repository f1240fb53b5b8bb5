#include "reference/core/json_fields.hpp"

#include <cmath>
#include <optional>
#include <vector>

namespace preflight {

using nlohmann::json;

std::string describe_json_value(const json& v) {
  if (v.is_number_integer()) return "integer " + v.dump();
  if (v.is_number()) return "number " + v.dump();
  if (v.is_string()) {
    // A whole file pasted into a field must not become a whole error message.
    const std::string s = v.dump();
    return "string " + (s.size() > 80 ? s.substr(0, 76) + "...\"" : s);
  }
  if (v.is_boolean()) return std::string("boolean ") + (v.get<bool>() ? "true" : "false");
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

namespace {

// nlohmann's DOM builder, plus the path of the value being parsed, so that an error (in
// particular a number too large for a double, which nlohmann reports only as "number
// overflow") names its field; plus a nesting limit, since no config nests deeper than a few
// levels and a deep document would otherwise cost a recursion per level wherever it is walked.
class PathTrackingSax {
 public:
  static constexpr std::size_t kMaxDepth = 64;

  explicit PathTrackingSax(json& result) : dom_(result, /*allow_exceptions=*/false) {}

  bool null() { return value(dom_.null()); }
  bool boolean(bool v) { return value(dom_.boolean(v)); }
  bool number_integer(json::number_integer_t v) { return value(dom_.number_integer(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return value(dom_.number_unsigned(v)); }
  bool number_float(json::number_float_t v, const json::string_t& s) { return value(dom_.number_float(v, s)); }
  bool string(json::string_t& v) { return value(dom_.string(v)); }
  bool binary(json::binary_t& v) { return value(dom_.binary(v)); }
  bool start_object(std::size_t n) { return open(false) && dom_.start_object(n); }
  bool key(json::string_t& k) {
    frames_.back().key = k;
    return dom_.key(k);
  }
  bool end_object() { return close(dom_.end_object()); }
  bool start_array(std::size_t n) { return open(true) && dom_.start_array(n); }
  bool end_array() { return close(dom_.end_array()); }
  bool parse_error(std::size_t position, const std::string& last_token, const nlohmann::detail::exception& ex) {
    error_position_ = position;
    error_token_ = last_token;
    error_id_ = ex.id;
    error_ = ex.what();
    error_path_ = path();
    return false;
  }

  // "rope_scaling.factor", "classes[2].rate"; "" at the top level.
  std::string path() const {
    std::string p;
    for (const Frame& f : frames_) {
      if (f.array) {
        p += "[" + std::to_string(f.index) + "]";
      } else if (f.key) {
        p += (p.empty() ? "" : ".") + *f.key;
      }
    }
    return p;
  }

  std::size_t error_position_ = 0;
  std::string error_token_, error_, error_path_;
  int error_id_ = 0;
  bool too_deep_ = false;

 private:
  struct Frame {
    bool array = false;
    std::optional<std::string> key;  // objects: the key whose value is being parsed
    std::size_t index = 0;           // arrays: the element being parsed
  };

  bool open(bool array) {
    if (frames_.size() >= kMaxDepth) {
      too_deep_ = true;
      error_path_ = path();
      return false;
    }
    frames_.push_back({array, std::nullopt, 0});
    return true;
  }
  bool close(bool ok) {
    frames_.pop_back();
    return value(ok);
  }
  // A value is complete: the enclosing array moves on to its next element.
  bool value(bool ok) {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return ok;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::vector<Frame> frames_;
};

// nlohmann's message ("[json.exception.parse_error.101] parse error at line 1, column 7:
// syntax error while parsing value - invalid literal; last read: '...'"), cut to a line a
// reader can take in: the last token can be a whole unterminated string.
std::string short_message(const std::string& what) {
  constexpr std::size_t kMax = 240;
  return what.size() > kMax ? what.substr(0, kMax) + "..." : what;
}

}  // namespace

json parse_json(const std::string& text, const std::string& origin) {
  json result;
  PathTrackingSax sax(result);
  bool ok = false;
  try {
    ok = json::sax_parse(text, &sax);
  } catch (const json::exception& e) {
    // sax_parse reports errors through parse_error; anything thrown is still one line.
    fail(origin, ": invalid JSON: ", short_message(e.what()));
  }
  if (ok) return result;
  const std::string where = sax.error_path_.empty() ? "" : "field '" + sax.error_path_ + "': ";
  if (sax.too_deep_)
    fail(origin, ": invalid JSON: ", where, "nested more than ", PathTrackingSax::kMaxDepth,
         " levels deep (a config nests a few levels)");
  // out_of_range.406: a number literal that is finite in JSON but not in a double.
  if (sax.error_id_ == 406)
    fail(origin, ": ", where.empty() ? "" : where, "number ", short_message(sax.error_token_),
         " is too large for a double: expected a finite number (at most ~1.8e308)");
  fail(origin, ": invalid JSON: ", where, short_message(sax.error_));
}

namespace {
// An integer that fits int64_t: nlohmann stores 2^63 .. 2^64-1 as unsigned, and get<int64_t>
// would wrap it to a negative number.
bool is_int64(const json& v) {
  return v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX));
}
}  // namespace

JsonFields::JsonFields(const json& obj, std::string origin, std::string path)
    : obj_(obj), origin_(std::move(origin)), path_(std::move(path)) {
  if (!obj_.is_object()) {
    if (path_.empty()) fail(origin_, ": expected a JSON object at the top level");
    fail(origin_, ": field '", path_, "': expected a JSON object, got ", describe_json_value(obj_));
  }
}

const json& JsonFields::raw(const std::string& key) {
  used_.insert(key);
  return obj_.at(key);
}

const json& JsonFields::child(const std::string& key) {
  used_.insert(key);
  static const json empty = json::object();
  return has(key) ? obj_.at(key) : empty;
}

void JsonFields::read(const std::string& key, int64_t& out) {
  if (!has(key)) return;
  const json& v = raw(key);
  if (!is_int64(v)) bad(key, "an integer (at most 2^63-1)", v);
  out = v.get<int64_t>();
}

void JsonFields::read(const std::string& key, double& out) {
  if (!has(key)) return;
  const json& v = raw(key);
  if (!v.is_number()) bad(key, "a number", v);
  out = v.get<double>();
}

void JsonFields::read(const std::string& key, bool& out) {
  if (!has(key)) return;
  const json& v = raw(key);
  if (!v.is_boolean()) bad(key, "true or false", v);
  out = v.get<bool>();
}

void JsonFields::read(const std::string& key, std::string& out) {
  if (!has(key)) return;
  const json& v = raw(key);
  if (!v.is_string()) bad(key, "a string", v);
  out = v.get<std::string>();
}

void JsonFields::read(const std::string& key, std::vector<int64_t>& out) {
  if (!has(key)) return;
  const json& v = raw(key);
  if (!v.is_array()) bad(key, "an array of integers", v);
  std::vector<int64_t> values;
  for (const json& e : v) {
    if (!is_int64(e)) bad(key, "an array of integers", v);
    values.push_back(e.get<int64_t>());
  }
  out = std::move(values);
}

double JsonFields::number(const std::string& key, double fallback, double lo, double hi, bool required) {
  used_.insert(key);
  const std::string expected = "a number in [" + json(lo).dump() + ", " + json(hi).dump() + "]";
  if (!has(key)) {
    if (required) fail(origin_, ": field '", field(key), "' is missing: expected ", expected);
    return fallback;
  }
  const json& v = obj_.at(key);
  if (!v.is_number()) bad(key, expected, v);
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) bad(key, expected, v);
  return x;
}

int64_t JsonFields::integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  used_.insert(key);
  if (!has(key)) return fallback;
  const json& v = obj_.at(key);
  const std::string expected = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (!is_int64(v)) bad(key, expected, v);
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) bad(key, expected, v);
  return x;
}

bool JsonFields::boolean(const std::string& key, bool fallback) {
  bool out = fallback;
  used_.insert(key);
  read(key, out);
  return out;
}

std::string JsonFields::text(const std::string& key, const std::string& fallback, bool required) {
  used_.insert(key);
  if (!has(key)) {
    if (required) missing(key);
    return fallback;
  }
  std::string out;
  read(key, out);
  return out;
}

std::string JsonFields::choice(const std::string& key, const std::string& fallback,
                               const std::vector<std::string>& allowed) {
  const std::string s = text(key, fallback);
  for (const auto& a : allowed)
    if (s == a) return s;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  bad(key, "one of " + list, json(s));
}

void JsonFields::expect_format(const char* expected) {
  std::string f;
  read("format", f);
  if (f != expected) fail(origin_, ": field '", field("format"), "' = \"", f, "\": expected \"", expected, "\"");
}

void JsonFields::require(std::initializer_list<const char*> keys) const {
  for (const char* k : keys)
    if (!has(k)) missing(k);
}

void JsonFields::reject_unknown(const std::set<std::string>& ignorable) const {
  for (const auto& [key, value] : obj_.items()) {
    (void)value;
    if (used_.count(key) || ignorable.count(key)) continue;
    fail(origin_, ": unknown field '", field(key), "'");
  }
}

void JsonFields::bad(const std::string& key, const std::string& expected, const json& got) const {
  fail(origin_, ": field '", field(key), "': expected ", expected, ", got ", describe_json_value(got));
}

void JsonFields::missing(const std::string& key) const {
  fail(origin_, ": missing required field '", field(key), "'");
}

}  // namespace preflight
