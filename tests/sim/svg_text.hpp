// Test helper: the <text> elements of an SVG with an estimate of the box each one
// covers, to check that no label is cut by the picture's edge and no two overlap.
//
// Width estimate: per-character advance widths of a Helvetica-like sans-serif in em
// (digits 0.556, narrow letters and punctuation 0.22-0.33, most lower case 0.5-0.56,
// upper case 0.67-0.83), which is what the renderers' default sans-serif fonts use to
// within ~10%. The vertical extent is [y − 0.75·size, y + 0.25·size] (ascent/descent).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace preflight::sim {

struct SvgText {
  double x = 0, y = 0, size = 0;
  std::string anchor = "start";
  std::string body;  // tags removed, entities decoded
  double left = 0, right = 0, top = 0, bottom = 0;
};

inline double svg_attr(const std::string& tag, const std::string& name, double fallback) {
  const std::string key = " " + name + "=\"";
  const size_t p = tag.find(key);
  if (p == std::string::npos) return fallback;
  return std::strtod(tag.c_str() + p + key.size(), nullptr);
}

inline std::string svg_attr_text(const std::string& tag, const std::string& name, const std::string& fallback) {
  const std::string key = " " + name + "=\"";
  const size_t p = tag.find(key);
  if (p == std::string::npos) return fallback;
  const size_t b = p + key.size();
  return tag.substr(b, tag.find('"', b) - b);
}

inline double char_em(unsigned char ch) {
  if (ch >= 0x80) return 0.6 / 2;  // UTF-8 byte: about 0.6 em per (two-byte) character
  if (ch == ' ') return 0.278;
  if (std::string("il.,:;'|!").find(static_cast<char>(ch)) != std::string::npos) return 0.25;
  if (std::string("fjrt()[]-/").find(static_cast<char>(ch)) != std::string::npos) return 0.333;
  if (ch >= '0' && ch <= '9') return 0.556;
  if (ch == 'm' || ch == 'w') return 0.833;
  if (ch >= 'a' && ch <= 'z') return 0.556;
  if (ch == 'M' || ch == 'W') return 0.833;
  if (ch >= 'A' && ch <= 'Z') return 0.667;
  if (ch == '%') return 0.889;
  return 0.6;
}

inline double text_width_px(const std::string& body, double size) {
  double em = 0;
  for (unsigned char ch : body) em += char_em(ch);
  return em * size;
}

inline std::string svg_decode(std::string s) {
  // Drop nested tags (tspan), then decode the five entities.
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') {
      i = s.find('>', i);
      if (i == std::string::npos) break;
      continue;
    }
    out += s[i];
  }
  for (auto [ent, ch] : {std::pair{"&lt;", "<"}, std::pair{"&gt;", ">"}, std::pair{"&quot;", "\""},
                         std::pair{"&apos;", "'"}, std::pair{"&amp;", "&"}}) {
    for (size_t p = 0; (p = out.find(ent, p)) != std::string::npos; p += 1) out.replace(p, std::string(ent).size(), ch);
  }
  return out;
}

// The picture's size: the root's viewBox when present, else width × height.
inline std::pair<double, double> svg_size(const std::string& svg) {
  const size_t e = svg.find('>');
  const std::string root = svg.substr(0, e);
  const std::string vb = svg_attr_text(root, "viewBox", "");
  if (!vb.empty()) {
    double v[4] = {0, 0, 0, 0};
    char* p = const_cast<char*>(vb.c_str());
    for (double& x : v) x = std::strtod(p, &p);
    return {v[2], v[3]};
  }
  return {svg_attr(root, "width", 0), svg_attr(root, "height", 0)};
}

inline std::vector<SvgText> svg_texts(const std::string& svg) {
  const size_t e = svg.find('>');
  const double root_size = svg_attr(svg.substr(0, e), "font-size", 16);
  std::vector<SvgText> out;
  for (size_t p = 0; (p = svg.find("<text", p)) != std::string::npos;) {
    const size_t tag_end = svg.find('>', p);
    const size_t close = svg.find("</text>", tag_end);
    const std::string tag = svg.substr(p, tag_end - p);
    SvgText t;
    t.x = svg_attr(tag, "x", 0);
    t.y = svg_attr(tag, "y", 0);
    t.size = svg_attr(tag, "font-size", root_size);
    t.anchor = svg_attr_text(tag, "text-anchor", "start");
    t.body = svg_decode(svg.substr(tag_end + 1, close - tag_end - 1));
    const double w = text_width_px(t.body, t.size);
    t.left = t.anchor == "middle" ? t.x - w / 2 : t.anchor == "end" ? t.x - w : t.x;
    t.right = t.left + w;
    t.top = t.y - 0.75 * t.size;
    t.bottom = t.y + 0.25 * t.size;
    out.push_back(t);
    p = close;
  }
  return out;
}

// Every text inside the picture, and no two texts' boxes overlapping.
inline void expect_text_inside_and_apart(const std::string& svg) {
  const auto [W, H] = svg_size(svg);
  ASSERT_GT(W, 0);
  ASSERT_GT(H, 0);
  std::vector<SvgText> t = svg_texts(svg);
  for (const SvgText& a : t) {
    EXPECT_GE(a.left, 0) << "cut at the left: '" << a.body << "'";
    EXPECT_LE(a.right, W) << "cut at the right (width " << W << "): '" << a.body << "' ends at " << a.right;
    EXPECT_GE(a.top, 0) << "cut at the top: '" << a.body << "'";
    EXPECT_LE(a.bottom, H) << "cut at the bottom (height " << H << "): '" << a.body << "'";
  }
  std::sort(t.begin(), t.end(), [](const SvgText& a, const SvgText& b) { return a.top < b.top; });
  int reported = 0;
  for (size_t i = 0; i < t.size() && reported < 10; ++i)
    for (size_t j = i + 1; j < t.size() && t[j].top < t[i].bottom; ++j) {
      const bool overlap = t[i].left < t[j].right && t[j].left < t[i].right;
      if (overlap && reported++ < 10)
        ADD_FAILURE() << "labels overlap: '" << t[i].body << "' at (" << t[i].x << ", " << t[i].y << ") and '"
                      << t[j].body << "' at (" << t[j].x << ", " << t[j].y << ")";
    }
}

}  // namespace preflight::sim
