// Strict reading of one JSON object, shared by every config file preflight loads (model,
// hardware, layout, faults): typed fields, range checks, and unknown keys rejected, so a
// typo in a field name is an error rather than a silently ignored setting. Every error is
// one line: "<origin>: field '<path.key>' …: expected …".
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/core/error.hpp"

namespace preflight {

class JsonFields {
 public:
  // `path` names the object inside the file ("rope_scaling", "classes[2]"); "" for the top.
  JsonFields(const nlohmann::json& obj, std::string origin, std::string path = "");

  bool has(const std::string& key) const { return obj_.contains(key); }
  // The value of a present key, marked as consumed.
  const nlohmann::json& raw(const std::string& key);
  // A nested value, marked as consumed; an empty object when absent.
  const nlohmann::json& child(const std::string& key);
  void ignore(const std::string& key) { used_.insert(key); }

  // Optional fields: `out` keeps its value when the key is absent.
  void read(const std::string& key, int64_t& out);
  void read(const std::string& key, double& out);
  void read(const std::string& key, bool& out);
  void read(const std::string& key, std::string& out);
  void read(const std::string& key, std::vector<int64_t>& out);
  template <typename Enum>
  void read_enum(const std::string& key, Enum& out, const std::map<std::string, Enum>& names) {
    if (!has(key)) return;
    const nlohmann::json& v = raw(key);
    std::string allowed;
    for (const auto& [n, e] : names) allowed += (allowed.empty() ? "" : " | ") + ("\"" + n + "\"");
    if (!v.is_string() || names.find(v.get<std::string>()) == names.end()) bad(key, "one of " + allowed, v);
    out = names.at(v.get<std::string>());
  }

  // Value-returning reads with a fallback and an inclusive range.
  double number(const std::string& key, double fallback, double lo, double hi, bool required = false);
  int64_t integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi);
  bool boolean(const std::string& key, bool fallback);
  std::string text(const std::string& key, const std::string& fallback, bool required = false);
  std::string choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed);

  // "format" must be present and equal `expected` (e.g. "preflight-layout/1").
  void expect_format(const char* expected);
  void require(std::initializer_list<const char*> keys) const;
  // Every key neither consumed nor in `ignorable` is an error.
  void reject_unknown(const std::set<std::string>& ignorable = {}) const;

  [[noreturn]] void bad(const std::string& key, const std::string& expected, const nlohmann::json& got) const;
  [[noreturn]] void missing(const std::string& key) const;
  std::string field(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const std::string& origin() const { return origin_; }

 private:
  const nlohmann::json& obj_;
  std::string origin_;
  std::string path_;
  std::set<std::string> used_;
};

// "integer 7", "string \"64\"", "null", ... for error messages.
std::string describe_json_value(const nlohmann::json& v);

// json::parse for config text: every nlohmann exception (syntax errors, and also a number
// too large for a double such as 1e400, which nlohmann reports as out_of_range, not as a
// parse error) becomes one preflight::Error line "<origin>: invalid JSON: ...".
nlohmann::json parse_json(const std::string& text, const std::string& origin);

}  // namespace preflight
