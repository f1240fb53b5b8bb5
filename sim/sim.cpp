// Placeholder translation unit so the library exists before its first component.
namespace preflight::sim {
int library_anchor() { return 0; }
}  // namespace preflight::sim
