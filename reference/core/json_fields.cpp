#include "reference/core/json_fields.hpp"

#include <cmath>

namespace preflight {

using nlohmann::json;

std::string describe_json_value(const json& v) {
  if (v.is_number_integer()) return "integer " + v.dump();
  if (v.is_number()) return "number " + v.dump();
  if (v.is_string()) return "string " + v.dump();
  if (v.is_boolean()) return std::string("boolean ") + (v.get<bool>() ? "true" : "false");
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

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
  if (!v.is_number_integer()) bad(key, "an integer", v);
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
    if (!e.is_number_integer()) bad(key, "an array of integers", v);
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
  if (!v.is_number_integer()) bad(key, expected, v);
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
