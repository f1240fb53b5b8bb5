#include "reference/train/safetensors.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

#include "reference/core/error.hpp"

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

const StFile::Entry& StFile::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) fail("checkpoint file '", path, "': no tensor '", name, "'");
  return it->second;
}

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
  const int64_t base = 8 + static_cast<int64_t>(n);
  int64_t data_end = 0;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (auto m = it->begin(); m != it->end(); ++m) f.meta[m.key()] = m->get<std::string>();
      continue;
    }
    StFile::Entry e;
    e.dtype = it->at("dtype").get<std::string>();
    e.shape = it->at("shape").get<std::vector<int64_t>>();
    e.begin = base + it->at("data_offsets")[0].get<int64_t>();
    e.end = base + it->at("data_offsets")[1].get<int64_t>();
    if (e.end < e.begin) fail("checkpoint file '", path, "': tensor '", it.key(), "' has negative size");
    data_end = std::max(data_end, e.end);
    f.tensors[it.key()] = e;
  }
  if (data_end > static_cast<int64_t>(f.blob.size()))
    fail("checkpoint file '", path, "': truncated (", f.blob.size(), " bytes, tensors need ", data_end, ")");
  return f;
}

}  // namespace preflight::train
