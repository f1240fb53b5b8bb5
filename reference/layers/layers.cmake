# CPU reference layers: forward/backward free functions (docs/REFERENCE.md).
# Included from reference/CMakeLists.txt; paths are relative to this file's directory.
file(GLOB PREFLIGHT_REFERENCE_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_library(preflight_reference STATIC ${PREFLIGHT_REFERENCE_SOURCES})
target_include_directories(preflight_reference PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(preflight_reference PUBLIC preflight::core OpenMP::OpenMP_CXX)
add_library(preflight::reference ALIAS preflight_reference)
