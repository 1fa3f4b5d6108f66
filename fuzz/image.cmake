# fuzz/image.cmake: ImageDecoder's decoder fuzz target (img_decode) and its
# corpus replayer. Safe to include() more than once and from anywhere:
#  - from fuzz/CMakeLists.txt (KILN_FUZZ=ON, clang): builds kiln_fuzz_image
#    (libFuzzer) and the replayer;
#  - from tests/CMakeLists.txt (any compiler): builds only the replayer and
#    registers the ctest entry fuzz_image_replay.
# The codec libraries are not instrumented: coverage guides the fuzzer
# through Kiln's own BMP/PNM parsers and the glue around each library.
set(KILN_FUZZ_DIR ${CMAKE_SOURCE_DIR}/fuzz)

if(NOT TARGET kiln_fuzz_image_replay)
  add_executable(kiln_fuzz_image_replay
                 ${KILN_FUZZ_DIR}/replay.c
                 ${KILN_FUZZ_DIR}/fuzz_image_body.c
                 ${KILN_FUZZ_DIR}/fuzz_image_replay.c)
  target_include_directories(kiln_fuzz_image_replay PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(kiln_fuzz_image_replay PRIVATE kiln_static)
  set(KILN_IMAGE_REPLAY_DIRS ${KILN_FUZZ_DIR}/corpus/image)
  if(EXISTS ${KILN_FUZZ_DIR}/regressions/image)
    list(APPEND KILN_IMAGE_REPLAY_DIRS ${KILN_FUZZ_DIR}/regressions/image)
  endif()
  add_test(NAME fuzz_image_replay
           COMMAND kiln_fuzz_image_replay ${KILN_IMAGE_REPLAY_DIRS})
  set_tests_properties(fuzz_image_replay PROPERTIES TIMEOUT 600)
endif()

if(KILN_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang" AND NOT TARGET kiln_fuzz_image)
  add_executable(kiln_fuzz_image ${KILN_FUZZ_DIR}/fuzz_image.c
                                 ${KILN_FUZZ_DIR}/fuzz_image_body.c)
  target_include_directories(kiln_fuzz_image PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(kiln_fuzz_image PRIVATE -fsanitize=fuzzer
                         -fsanitize=address,undefined
                         -fno-sanitize-recover=undefined
                         -fno-omit-frame-pointer -g)
  target_link_options(kiln_fuzz_image PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(kiln_fuzz_image PRIVATE kiln_static)
endif()
