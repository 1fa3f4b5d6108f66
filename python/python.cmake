# python.cmake: the Python extension kiln._kiln, built when pyproject.toml
# (scikit-build-core) drives CMake with -DKILN_PYTHON=ON. The extension links
# libkiln statically, so the wheel needs no shared library beside it, and it
# is built on the limited API: one .abi3.so for every CPython >= 3.11.
find_package(Python 3.11 REQUIRED COMPONENTS Interpreter Development.Module)
add_library(kiln_python MODULE ${CMAKE_SOURCE_DIR}/python/kiln/_kiln.c)
target_link_libraries(kiln_python PRIVATE kiln_static Python::Module)
target_compile_definitions(kiln_python PRIVATE Py_LIMITED_API=0x030B0000)
# The stable-ABI suffix is what lets every Python 3 import the same file.
set_target_properties(kiln_python PROPERTIES OUTPUT_NAME _kiln PREFIX "" SUFFIX ".abi3.so"
                      C_VISIBILITY_PRESET hidden)
install(TARGETS kiln_python LIBRARY DESTINATION kiln COMPONENT python)
# The CLI travels inside the package for `python -m kiln`.
install(TARGETS kiln RUNTIME DESTINATION kiln/_bin COMPONENT python)
