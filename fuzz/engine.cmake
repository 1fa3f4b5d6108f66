# fuzz/engine.cmake: the engine-file (.kiln loader) fuzz target and its
# corpus replayer. Safe to include() more than once and from anywhere:
#  - from fuzz/CMakeLists.txt (KILN_FUZZ=ON, clang): builds kiln_fuzz_engine
#    (libFuzzer) and the replayer;
#  - from tests/CMakeLists.txt (any compiler): builds only the replayer and
#    registers the ctest entry fuzz_engine_replay (run it in a
#    -DKILN_SANITIZE=ON build to get ASan/UBSan).
set(KILN_FUZZ_DIR ${CMAKE_SOURCE_DIR}/fuzz)

if(NOT TARGET kiln_fuzz_engine_replay)
  add_executable(kiln_fuzz_engine_replay
                 ${KILN_FUZZ_DIR}/replay.c
                 ${KILN_FUZZ_DIR}/fuzz_engine_body.c
                 ${KILN_FUZZ_DIR}/fuzz_engine_replay.c)
  target_link_libraries(kiln_fuzz_engine_replay PRIVATE kiln_static)
  # Seed corpus plus the inputs that once broke the loader (if any).
  set(KILN_ENGINE_REPLAY_DIRS ${KILN_FUZZ_DIR}/corpus/engine)
  if(EXISTS ${KILN_FUZZ_DIR}/regressions/engine)
    list(APPEND KILN_ENGINE_REPLAY_DIRS ${KILN_FUZZ_DIR}/regressions/engine)
  endif()
  add_test(NAME fuzz_engine_replay
           COMMAND kiln_fuzz_engine_replay ${KILN_ENGINE_REPLAY_DIRS})
  set_tests_properties(fuzz_engine_replay PROPERTIES TIMEOUT 600)
endif()

if(KILN_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang" AND NOT TARGET kiln_fuzz_engine)
  add_executable(kiln_fuzz_engine ${KILN_FUZZ_DIR}/fuzz_engine.c
                                  ${KILN_FUZZ_DIR}/fuzz_engine_body.c)
  target_compile_options(kiln_fuzz_engine PRIVATE -fsanitize=fuzzer
                         -fsanitize=address,undefined
                         -fno-sanitize-recover=undefined
                         -fno-omit-frame-pointer -g)
  target_link_options(kiln_fuzz_engine PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(kiln_fuzz_engine PRIVATE kiln_static)
endif()
