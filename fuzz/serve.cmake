# fuzz/serve.cmake: the `kiln serve` request/config parser fuzz target and
# its corpus replayer (same shape as engine.cmake). Needs the
# kiln_serve_parse library from tools/serve/serve.cmake.
set(KILN_FUZZ_DIR ${CMAKE_SOURCE_DIR}/fuzz)
if(TARGET kiln_serve_parse AND NOT TARGET kiln_fuzz_serve_replay)
  add_executable(kiln_fuzz_serve_replay ${KILN_FUZZ_DIR}/replay.c
                 ${KILN_FUZZ_DIR}/fuzz_serve_body.c ${KILN_FUZZ_DIR}/fuzz_serve_replay.c)
  target_link_libraries(kiln_fuzz_serve_replay PRIVATE kiln_serve_parse)
  set(KILN_SERVE_REPLAY_DIRS ${KILN_FUZZ_DIR}/corpus/serve)
  if(EXISTS ${KILN_FUZZ_DIR}/regressions/serve)
    list(APPEND KILN_SERVE_REPLAY_DIRS ${KILN_FUZZ_DIR}/regressions/serve)
  endif()
  add_test(NAME fuzz_serve_replay COMMAND kiln_fuzz_serve_replay ${KILN_SERVE_REPLAY_DIRS})
  set_tests_properties(fuzz_serve_replay PROPERTIES TIMEOUT 300)
endif()
if(KILN_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang" AND TARGET kiln_serve_parse
   AND NOT TARGET kiln_fuzz_serve)
  # The parser sources are compiled into the target itself so that they get
  # libFuzzer's coverage instrumentation.
  add_executable(kiln_fuzz_serve ${KILN_FUZZ_DIR}/fuzz_serve.c ${KILN_FUZZ_DIR}/fuzz_serve_body.c
                 ${CMAKE_SOURCE_DIR}/tools/serve/json.c ${CMAKE_SOURCE_DIR}/tools/serve/proto.c
                 ${CMAKE_SOURCE_DIR}/tools/serve/config.c)
  target_include_directories(kiln_fuzz_serve PRIVATE ${CMAKE_SOURCE_DIR}/include
                             ${CMAKE_SOURCE_DIR}/tools/serve)
  target_compile_options(kiln_fuzz_serve PRIVATE -fsanitize=fuzzer -fsanitize=address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
  target_link_options(kiln_fuzz_serve PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(kiln_fuzz_serve PRIVATE m)
endif()
