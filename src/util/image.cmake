# src/util/image.cmake: ImageDecoder's codec headers (image_codecs.c). The
# libraries themselves are dlopened at run time, so only the headers matter
# here; a codec whose header is missing is built as an error that says which
# -dev package to install (scripts/setup.sh installs them all).
include(CheckIncludeFiles)
find_path(KILN_OPENJPEG_INCLUDE_DIR openjpeg.h PATH_SUFFIXES openjpeg-2.5 openjpeg-2.4)
set(_kiln_img_defs)
foreach(_h jpeglib.h png.h tiffio.h webp/decode.h)
  string(MAKE_C_IDENTIFIER "KILN_HAVE_${_h}" _var)
  string(TOUPPER "${_var}" _var)
  # jpeglib.h needs FILE and size_t declared first
  check_include_files("stddef.h;stdio.h;${_h}" ${_var})
  if(${_var})
    list(APPEND _kiln_img_defs ${_var})
  else()
    message(STATUS "ImageDecoder: ${_h} not found, that codec will be unavailable")
  endif()
endforeach()
set(_kiln_img_incs)
if(KILN_OPENJPEG_INCLUDE_DIR)
  list(APPEND _kiln_img_defs KILN_HAVE_OPENJPEG_H)
  list(APPEND _kiln_img_incs ${KILN_OPENJPEG_INCLUDE_DIR})
else()
  message(STATUS "ImageDecoder: openjpeg.h not found, JPEG 2000 will be unavailable")
endif()
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/util/image_codecs.c PROPERTIES
  COMPILE_DEFINITIONS "${_kiln_img_defs}"
  INCLUDE_DIRECTORIES "${_kiln_img_incs}")
