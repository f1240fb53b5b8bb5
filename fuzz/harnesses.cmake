# The fuzz harnesses (fuzz/<name>.cpp), the libraries each links, and the directories of the
# tree whose files are seed inputs for it (besides fuzz/corpus/<name>/); shared by the
# libFuzzer build (fuzz/CMakeLists.txt), the ctest replay of their inputs (tests/fuzz/) and
# scripts/fuzz.sh (which reads the SEEDS lines: keep each on one line).
set(PREFLIGHT_FUZZ_HARNESSES model_config hardware layout faults safetensors checkpoint tokens)
set(PREFLIGHT_FUZZ_LIBS_model_config preflight::core)
set(PREFLIGHT_FUZZ_LIBS_hardware preflight::sim preflight::core)
set(PREFLIGHT_FUZZ_LIBS_layout preflight::sim preflight::core)
set(PREFLIGHT_FUZZ_LIBS_faults preflight::sim preflight::core)
set(PREFLIGHT_FUZZ_LIBS_safetensors preflight::train)
set(PREFLIGHT_FUZZ_LIBS_checkpoint preflight::train)
set(PREFLIGHT_FUZZ_LIBS_tokens preflight::train)
set(PREFLIGHT_FUZZ_SEEDS_model_config configs/models tests/data)
set(PREFLIGHT_FUZZ_SEEDS_hardware configs/hardware)
set(PREFLIGHT_FUZZ_SEEDS_layout configs/layouts)
set(PREFLIGHT_FUZZ_SEEDS_faults configs/faults)
