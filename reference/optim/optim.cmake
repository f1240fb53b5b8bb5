# Optimizers (AdamW, Muon), MuonClip/QK-Clip, gradient clipping and the training schedules
# (docs/OPTIMIZERS.md). Included from reference/CMakeLists.txt after layers.cmake, whose
# preflight::reference provides the GEMM that Newton-Schulz runs on.
file(GLOB PREFLIGHT_OPTIM_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_library(preflight_optim STATIC ${PREFLIGHT_OPTIM_SOURCES})
target_include_directories(preflight_optim PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(preflight_optim PUBLIC preflight::reference preflight::core OpenMP::OpenMP_CXX)
add_library(preflight::optim ALIAS preflight_optim)
