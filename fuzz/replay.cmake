# fuzz/replay.cmake: the corpus replayer as a ctest test. Meant to be
# include()d from tests/CMakeLists.txt (any compiler; run it in a
# -DKILN_SANITIZE=ON build to get ASan/UBSan). Safe to include twice.
if(NOT TARGET kiln_fuzz_replay)
  add_executable(kiln_fuzz_replay
                 ${CMAKE_SOURCE_DIR}/fuzz/replay.c
                 ${CMAKE_SOURCE_DIR}/fuzz/fuzz_onnx_body.c)
  target_link_libraries(kiln_fuzz_replay PRIVATE kiln_static)
  # Seed corpus plus the inputs that once broke the reader.
  add_test(NAME fuzz_onnx_replay
           COMMAND kiln_fuzz_replay ${CMAKE_SOURCE_DIR}/fuzz/corpus/onnx
                                    ${CMAKE_SOURCE_DIR}/fuzz/regressions)
  set_tests_properties(fuzz_onnx_replay PROPERTIES TIMEOUT 600)
endif()
