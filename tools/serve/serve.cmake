# tools/serve/serve.cmake: `kiln serve`. The HTTP front end (libmicrohttpd)
# is its own static library linked only into the CLI; libkiln never depends
# on it. Without libmicrohttpd the CLI gets a stub that says so.
find_path(KILN_MHD_INCLUDE microhttpd.h)
find_library(KILN_MHD_LIBRARY microhttpd)
target_sources(kiln PRIVATE ${CMAKE_SOURCE_DIR}/tools/kiln_serve.c)
# The request and config parsers have no HTTP dependency (the fuzz target
# and its replay link them alone).
add_library(kiln_serve_parse STATIC
            ${CMAKE_SOURCE_DIR}/tools/serve/json.c
            ${CMAKE_SOURCE_DIR}/tools/serve/proto.c
            ${CMAKE_SOURCE_DIR}/tools/serve/config.c)
target_include_directories(kiln_serve_parse PUBLIC ${CMAKE_SOURCE_DIR}/include
                           ${CMAKE_SOURCE_DIR}/tools/serve)
target_link_libraries(kiln_serve_parse PUBLIC m)
if(KILN_MHD_INCLUDE AND KILN_MHD_LIBRARY)
  add_library(kiln_server STATIC
              ${CMAKE_SOURCE_DIR}/tools/serve/repo.c
              ${CMAKE_SOURCE_DIR}/tools/serve/server.c)
  target_include_directories(kiln_server PUBLIC ${KILN_MHD_INCLUDE} ${CMAKE_SOURCE_DIR}/tools)
  target_link_libraries(kiln_server PUBLIC kiln_serve_parse kiln_static ${KILN_MHD_LIBRARY} pthread)
  target_compile_definitions(kiln PRIVATE KILN_HAVE_SERVE)
  target_include_directories(kiln PRIVATE ${CMAKE_SOURCE_DIR}/tools)
  target_link_libraries(kiln PRIVATE kiln_server)
else()
  message(STATUS "libmicrohttpd not found: `kiln serve` is a stub (apt install libmicrohttpd-dev)")
endif()
