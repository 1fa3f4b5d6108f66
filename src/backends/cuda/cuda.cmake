# cuda.cmake: the CUDA backend. Included from the top-level CMakeLists.txt
# after KILN_SOURCES is globbed and before kiln_obj is declared.
#   -DKILN_CUDA=AUTO (default): build it when nvcc and the toolkit are found
#   -DKILN_CUDA=ON: require it;  -DKILN_CUDA=OFF: never
#   -DKILN_CUDA_GENCODE="..." overrides the targets (default: sm_80, sm_90a,
#   and compute_90 PTX so newer GPUs JIT-compile).
# The CUDA runtime is linked statically (it finds the driver lazily, so the
# library still loads where there is none); cuBLASLt and cuDNN are dlopened
# (cuda_libs.c). Without the backend, cuda_absent.c makes kiln_backend_cuda()
# return NULL.
set(KILN_CUDA AUTO CACHE STRING "Build the CUDA backend (AUTO, ON, OFF)")
set(_kiln_cuda_dir ${CMAKE_SOURCE_DIR}/src/backends/cuda)
set(KILN_HAVE_CUDA OFF)
if(NOT KILN_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    find_package(CUDAToolkit QUIET)
  endif()
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND
     EXISTS ${CUDAToolkit_INCLUDE_DIRS}/cudnn.h)
    set(KILN_HAVE_CUDA ON)
  elseif(KILN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "KILN_CUDA=ON but nvcc, the CUDA toolkit or cudnn.h was not found")
  endif()
endif()

file(GLOB _kiln_cuda_c ${_kiln_cuda_dir}/*.c)
list(REMOVE_ITEM KILN_SOURCES ${_kiln_cuda_c})
if(KILN_HAVE_CUDA)
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_ARCHITECTURES OFF)
  set(KILN_CUDA_GENCODE
      "-gencode=arch=compute_80,code=sm_80;-gencode=arch=compute_90a,code=sm_90a;-gencode=arch=compute_90,code=compute_90"
      CACHE STRING "nvcc -gencode flags for the CUDA backend")
  list(REMOVE_ITEM _kiln_cuda_c ${_kiln_cuda_dir}/cuda_absent.c)
  file(GLOB _kiln_cuda_cu CONFIGURE_DEPENDS ${_kiln_cuda_dir}/kernels/*.cu)
  list(APPEND KILN_SOURCES ${_kiln_cuda_c} ${_kiln_cuda_cu})
  set_source_files_properties(${_kiln_cuda_c} PROPERTIES
      INCLUDE_DIRECTORIES "${CUDAToolkit_INCLUDE_DIRS}")
  set(KILN_CUDA_COMPILE_OPTIONS ${KILN_CUDA_GENCODE} -Xcompiler=-fPIC,-Wall,-Wextra,-Wno-unused-parameter
      --expt-relaxed-constexpr -lineinfo)
  if(KILN_WERROR)
    list(APPEND KILN_CUDA_COMPILE_OPTIONS -Werror=all-warnings -Xcompiler=-Werror)
  endif()
  # stdc++: the kernels' host code (static-local guards) for static-library users
  set(KILN_CUDA_LINK CUDA::cudart_static ${CMAKE_DL_LIBS} rt stdc++)
  message(STATUS "kiln: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION})")
else()
  list(APPEND KILN_SOURCES ${_kiln_cuda_dir}/cuda_absent.c)
  set(KILN_CUDA_LINK "")
  message(STATUS "kiln: CUDA backend OFF")
endif()

# GPU micro-benchmarks (bench/cuda_attn_bench.c: the flash attention
# kernels; bench/cuda_elt_bench.c: elementwise kernels, old against new;
# bench/cuda_gemm_bench.c: BERT's FFN GEMMs, cuBLASLt against cuDNN's graph):
# built only with the backend, deferred like gemm_bench so they get the
# other programs' compile and link options.
function(_kiln_cuda_add_bench)
  foreach(_b cuda_attn_bench cuda_elt_bench cuda_gemm_bench)
    if(KILN_HAVE_CUDA AND EXISTS ${CMAKE_SOURCE_DIR}/bench/${_b}.c AND TARGET kiln_static)
      add_executable(${_b} ${CMAKE_SOURCE_DIR}/bench/${_b}.c)
      target_include_directories(${_b} PRIVATE ${CMAKE_SOURCE_DIR}/src
                                 ${CMAKE_SOURCE_DIR}/include ${CUDAToolkit_INCLUDE_DIRS})
      target_link_libraries(${_b} PRIVATE kiln_static)
    endif()
  endforeach()
endfunction()
cmake_language(DEFER CALL _kiln_cuda_add_bench)
