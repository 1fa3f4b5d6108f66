# cpu.cmake: per-file ISA flags for the CPU backend's kernels. Include from
# the top-level CMakeLists.txt (same directory scope as the kiln_obj target):
#   include(${CMAKE_SOURCE_DIR}/src/backends/cpu/cpu.cmake)
# Only these files get -mavx2/-mavx512f; everything else stays baseline
# x86-64, and the tactics check the host's features before running them.
# Without this file the ISA kernels compile as stubs that report
# "unavailable" (portable tactics only).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64" AND
   CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  set(_kiln_cpu ${CMAKE_CURRENT_LIST_DIR})
  set_source_files_properties(
    ${_kiln_cpu}/cpu_gemm_avx2.c
    ${_kiln_cpu}/cpu_dwconv_avx2.c
    ${_kiln_cpu}/cpu_nchwc_avx2.c
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  set_source_files_properties(
    ${_kiln_cpu}/cpu_gemm_avx512.c
    ${_kiln_cpu}/cpu_nchwc_avx512.c
    PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx2;-mfma")
  set_source_files_properties(
    ${_kiln_cpu}/cpu_int8_avx2.c
    PROPERTIES COMPILE_OPTIONS "-mavx2")
  set_source_files_properties(
    ${_kiln_cpu}/cpu_int8_avx512.c
    PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni;-mavx2")
  # AMX tiles, AVX-512 packing (the epilogue it calls is cpu_int8_avx512.c's)
  set_source_files_properties(
    ${_kiln_cpu}/cpu_int8_amx.c
    PROPERTIES COMPILE_OPTIONS "-mamx-tile;-mamx-int8;-mavx512f;-mavx512bw")
  # transformer kernels (cpu_xf_kern.h)
  set_source_files_properties(${_kiln_cpu}/cpu_xf_avx2.c
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  set_source_files_properties(${_kiln_cpu}/cpu_xf_avx512.c
    PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx2;-mfma")
endif()

# Micro-benchmark of the GEMM / conv tactics against the reference kernels
# (bin/gemm_bench). Deferred to the end of the including directory so it
# gets the same compile/link options (sanitizers) as the other programs
# wherever this file is included.
function(_kiln_cpu_add_bench)
  if(EXISTS ${CMAKE_SOURCE_DIR}/bench/gemm_bench.c AND TARGET kiln_static)
    add_executable(gemm_bench ${CMAKE_SOURCE_DIR}/bench/gemm_bench.c)
    target_include_directories(gemm_bench PRIVATE ${CMAKE_SOURCE_DIR}/src
                               ${CMAKE_SOURCE_DIR}/include)
    target_link_libraries(gemm_bench PRIVATE kiln_static)
  endif()
  if(EXISTS ${CMAKE_SOURCE_DIR}/bench/pool_bench.c AND TARGET kiln_static)
    add_executable(pool_bench ${CMAKE_SOURCE_DIR}/bench/pool_bench.c)
    target_include_directories(pool_bench PRIVATE ${CMAKE_SOURCE_DIR}/src
                               ${CMAKE_SOURCE_DIR}/include)
    target_link_libraries(pool_bench PRIVATE kiln_static)
  endif()
endfunction()
cmake_language(DEFER CALL _kiln_cpu_add_bench)
