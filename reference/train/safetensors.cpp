#include "reference/train/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>

#include "reference/core/error.hpp"
#include "reference/core/json_fields.hpp"

namespace preflight::train {

std::string safetensors_bytes(const std::vector<StTensor>& tensors, const std::map<std::string, std::string>& meta) {
  nlohmann::json h = nlohmann::json::object();
  int64_t off = 0;
  for (const StTensor& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes}}};
    off += t.bytes;
  }
  if (!meta.empty()) h["__metadata__"] = meta;
  std::string js = h.dump();
  while (js.size() % 8 != 0) js.push_back(' ');
  std::string out(8, '\0');
  const uint64_t n = js.size();
  std::memcpy(out.data(), &n, 8);
  out += js;
  out.reserve(out.size() + off);
  for (const StTensor& t : tensors) out.append(static_cast<const char*>(t.data), t.bytes);
  return out;
}

int64_t safetensors_dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, int64_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? -1 : it->second;
}

const StFile::Entry& StFile::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) fail("checkpoint file '", path, "': no tensor '", name, "'");
  return it->second;
}

namespace {

// Header values are untrusted: every field is checked for its JSON type and range before use,
// and every size product for overflow, so no offset can point outside the blob.
StFile::Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& v,
                          uint64_t data_bytes, int64_t base) {
  const std::string where = "checkpoint file '" + path + "': tensor '" + name + "'";
  if (!v.is_object()) fail(where, ": expected a JSON object, got ", describe_json_value(v));
  StFile::Entry e;
  const auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) fail(where, ": field 'dtype' must be a string");
  e.dtype = dt->get<std::string>();
  const int64_t elem_bytes = safetensors_dtype_bytes(e.dtype);
  if (elem_bytes < 0) fail(where, ": unknown dtype '", e.dtype, "'");
  const auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) fail(where, ": field 'shape' must be an array of non-negative integers");
  // numel ≤ data_bytes / elem_bytes keeps every product below 2^63.
  uint64_t numel = 1;
  bool too_big = false;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned()) fail(where, ": field 'shape' must be an array of non-negative integers, got ", d.dump());
    const uint64_t x = d.get<uint64_t>();
    e.shape.push_back(x > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(x));
    if (x != 0 && numel > UINT64_MAX / x) too_big = true;
    else numel *= x;
  }
  if (std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end()) numel = 0, too_big = false;
  const auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    fail(where, ": field 'data_offsets' must be two non-negative integers [begin, end]");
  const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
  if (end < begin) fail(where, ": data_offsets [", begin, ", ", end, "] end before they begin");
  if (end > data_bytes)
    fail(where, ": data_offsets [", begin, ", ", end, "] reach past the end of the data: truncated (the file has ",
         data_bytes, " bytes of tensor data)");
  if (too_big || numel > (end - begin) / static_cast<uint64_t>(elem_bytes) ||
      numel * static_cast<uint64_t>(elem_bytes) != end - begin)
    fail(where, ": data_offsets [", begin, ", ", end, "] hold ", end - begin, " bytes, its shape and dtype ", e.dtype,
         " need ", too_big ? std::string("more than 2^64") : std::to_string(numel * static_cast<uint64_t>(elem_bytes)));
  e.begin = base + static_cast<int64_t>(begin);
  e.end = base + static_cast<int64_t>(end);
  return e;
}

}  // namespace

StFile read_safetensors(const std::string& path, std::string blob) {
  StFile f;
  f.path = path;
  f.blob = std::move(blob);
  if (f.blob.size() < 8) fail("checkpoint file '", path, "': truncated (", f.blob.size(), " bytes)");
  uint64_t n = 0;
  std::memcpy(&n, f.blob.data(), 8);
  if (n > f.blob.size() - 8) fail("checkpoint file '", path, "': truncated (header says ", n, " bytes of JSON, file has ", f.blob.size(), ")");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(f.blob.substr(8, n));
  } catch (const std::exception& e) {
    fail("checkpoint file '", path, "': bad safetensors header (", e.what(), ")");
  }
  if (!h.is_object()) fail("checkpoint file '", path, "': the safetensors header is ", describe_json_value(h), ", expected a JSON object");
  const int64_t base = 8 + static_cast<int64_t>(n);
  const uint64_t data_bytes = f.blob.size() - 8 - n;
  std::vector<std::tuple<int64_t, int64_t, std::string>> spans;  // (begin, end, name)
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail("checkpoint file '", path, "': '__metadata__' must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          fail("checkpoint file '", path, "': '__metadata__' field '", m.key(), "' must be a string, got ", describe_json_value(*m));
        f.meta[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const StFile::Entry e = parse_entry(path, it.key(), *it, data_bytes, base);
    spans.emplace_back(e.begin, e.end, it.key());
    f.tensors[it.key()] = e;
  }
  // The format requires the data section to be indexed completely and without overlap.
  std::sort(spans.begin(), spans.end());
  int64_t at = base;
  for (const auto& [b, e, name] : spans) {
    if (b != at)
      fail("checkpoint file '", path, "': tensor '", name, "' starts at data offset ", b - base, ", expected ", at - base,
           " (tensors overlap or leave a gap)");
    at = e;
  }
  if (at != static_cast<int64_t>(f.blob.size()))
    fail("checkpoint file '", path, "': ", static_cast<int64_t>(f.blob.size()) - at, " bytes after the last tensor");
  return f;
}

}  // namespace preflight::train
