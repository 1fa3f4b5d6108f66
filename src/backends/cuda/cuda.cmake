# cuda.cmake: the CUDA backend. Included from the top-level CMakeLists.txt
# after KILN_SOURCES is globbed and before kiln_obj is declared.
#   -DKILN_CUDA=AUTO (default): build it when nvcc and the toolkit are found
#   -DKILN_CUDA=ON: require it;  -DKILN_CUDA=OFF: never
#   -DKILN_CUDA_GENCODE="..." overrides the targets (default: sm_80, sm_90a,
#   and compute_90 PTX so newer GPUs JIT-compile).
#   -DKILN_CUTLASS=AUTO (default): the SM90 fused-epilogue GEMM
#   (kernels/gemm_sm90*.cu) when CUTLASS 3.x headers are found, asking
#   python3 for the nvidia-cutlass wheel's cutlass_library package;
#   ON: require them; OFF: never. -DKILN_CUTLASS_DIR=<dir> names a folder
#   holding include/cutlass (a CUTLASS checkout or the wheel's
#   cutlass_library/source). Without them those files compile to stubs and
#   the tactic is never offered; its kernels also need sm_90a in the
#   gencode list.
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
  # CUTLASS (header-only dependency, never copied into the tree): system
  # includes, so its warnings do not fail -Werror; only the SM90 GEMM files
  # see them.
  set(KILN_CUTLASS AUTO CACHE STRING "SM90 GEMM on CUTLASS headers (AUTO, ON, OFF)")
  set(KILN_CUTLASS_DIR "" CACHE PATH "Folder holding include/cutlass (default: the nvidia-cutlass wheel)")
  set(KILN_HAVE_CUTLASS OFF)
  if(NOT KILN_CUTLASS STREQUAL "OFF")
    set(_kiln_cutlass_root "${KILN_CUTLASS_DIR}")
    if(NOT _kiln_cutlass_root)
      find_program(_kiln_python3 NAMES python3 python)
      if(_kiln_python3)
        execute_process(
          COMMAND ${_kiln_python3} -c "import os, importlib.util as u; s = u.find_spec('cutlass_library'); print(os.path.join(list(s.submodule_search_locations)[0], 'source'))"
          OUTPUT_VARIABLE _kiln_cutlass_root OUTPUT_STRIP_TRAILING_WHITESPACE
          ERROR_QUIET RESULT_VARIABLE _kiln_cutlass_rc)
        if(NOT _kiln_cutlass_rc EQUAL 0)
          set(_kiln_cutlass_root "")
        endif()
      endif()
    endif()
    if(_kiln_cutlass_root AND EXISTS "${_kiln_cutlass_root}/include/cutlass/cutlass.h" AND
       EXISTS "${_kiln_cutlass_root}/include/cute/tensor.hpp")
      set(KILN_HAVE_CUTLASS ON)
    elseif(KILN_CUTLASS STREQUAL "ON")
      message(FATAL_ERROR "KILN_CUTLASS=ON but no CUTLASS headers at '${_kiln_cutlass_root}' "
              "(pip install nvidia-cutlass==4.2.0.0, or set KILN_CUTLASS_DIR)")
    endif()
  endif()
  # the SM90 GEMMs and the INT8 implicit-GEMM convolution (q8conv_sm90.cu)
  file(GLOB _kiln_sm90_cu ${_kiln_cuda_dir}/kernels/gemm_sm90*.cu
       ${_kiln_cuda_dir}/kernels/q8conv_sm90*.cu)
  if(KILN_HAVE_CUTLASS)
    set(_kiln_sm90_opts "--system-include=${_kiln_cutlass_root}/include")
    if(EXISTS "${_kiln_cutlass_root}/tools/util/include")
      list(APPEND _kiln_sm90_opts "--system-include=${_kiln_cutlass_root}/tools/util/include")
    endif()
    set(_kiln_sm90_defs KILN_HAVE_CUTLASS=1)
    if(KILN_CUDA_GENCODE MATCHES "sm_90a")
      list(APPEND _kiln_sm90_defs KILN_CUTLASS_SM90A=1)
      message(STATUS "kiln: CUTLASS SM90 GEMM ON (${_kiln_cutlass_root})")
    else()
      message(STATUS "kiln: CUTLASS found but no sm_90a in KILN_CUDA_GENCODE: SM90 GEMM OFF")
    endif()
    set_source_files_properties(${_kiln_sm90_cu} PROPERTIES
        COMPILE_OPTIONS "${_kiln_sm90_opts}" COMPILE_DEFINITIONS "${_kiln_sm90_defs}")
  elseif(KILN_CUTLASS STREQUAL "OFF")
    message(STATUS "kiln: KILN_CUTLASS=OFF: SM90 GEMM OFF")
  else()
    message(STATUS "kiln: CUTLASS headers not found: SM90 GEMM OFF")
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
