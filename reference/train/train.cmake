# The reference trainer (docs/TRAINING.md): data, checkpoints (safetensors + manifest), the
# training loop and its safeguards. Included from reference/CMakeLists.txt after optim.cmake.
file(GLOB PREFLIGHT_TRAIN_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_library(preflight_train STATIC ${PREFLIGHT_TRAIN_SOURCES})
target_include_directories(preflight_train PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(preflight_train PUBLIC preflight::optim preflight::reference preflight::core OpenMP::OpenMP_CXX)
add_library(preflight::train ALIAS preflight_train)
