# ctest embedding.install_and_consume: `cmake --install` the build tree into a fresh prefix, check its
# layout, the installed C library's exports (cmg_* only) and SONAME, then build and run against that
# prefix only (plain CMake, no Conan):
#   tests/consumer/c      C program, find_package(crmmigrate COMPONENTS c) → crmmigrate::c
#   tests/consumer/cpp    C++ program + examples/cpp/custom_source.cpp → crmmigrate::core
#                         (also checks SameMajorVersion: find_package(crmmigrate 1.0) fails)
#   conan/test_package    the Conan test package's CMakeLists.txt
#   pkg-config            the C program compiled with `pkg-config --cflags --libs crmmigrate`
# byte-compiles conan/conanfile.py and conan/test_package/conanfile.py, and, when the Python module
# is part of the build, checks that `import crmmigrate` works from the prefix.
#
#   cmake -DBUILD_DIR=… -DSOURCE_DIR=… -DWORK_DIR=… -DGENERATOR=… -DCC=… -DCXX=… -DLIBDIR=…
#         [-DEXPECT_PYTHON=1 -DPYTHON_DIR=<relative dir>] [-DFLAGS=…] -P install_and_consume.cmake
cmake_minimum_required(VERSION 3.22)
foreach(v BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CC CXX LIBDIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "install_and_consume.cmake: -D${v}=… is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (exit ${rc}): ${cmd}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(RUN_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(PREFIX "${WORK_DIR}/prefix")

# 1. Install.
run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}")
foreach(f include/crmmigrate/crmmigrate.h include/crmmigrate/sys/source.h include/crmmigrate/pipeline/stages.hpp
          include/crmmigrate/pipeline/migration.hpp "${LIBDIR}/libcrmmigrate.a" "${LIBDIR}/libcrmmigrate_c.so"
          "${LIBDIR}/libcrmmigrate_c.so.0" bin/crmmigrate "${LIBDIR}/cmake/crmmigrate/crmmigrateConfig.cmake"
          "${LIBDIR}/cmake/crmmigrate/crmmigrateConfigVersion.cmake" "${LIBDIR}/cmake/crmmigrate/crmmigrateTargets.cmake"
          "${LIBDIR}/pkgconfig/crmmigrate.pc")
  if(NOT EXISTS "${PREFIX}/${f}")
    message(FATAL_ERROR "not installed: ${PREFIX}/${f}")
  endif()
endforeach()
run("${PREFIX}/bin/crmmigrate" --help)
# The installed C library still exports cmg_* only, and its SONAME carries the major version.
find_program(NM nm REQUIRED)
run("${CMAKE_COMMAND}" "-DNM=${NM}" "-DLIBRARY=${PREFIX}/${LIBDIR}/libcrmmigrate_c.so"
    -P "${SOURCE_DIR}/tests/c/symbol_test.cmake")
find_program(READELF readelf REQUIRED)
run("${READELF}" -d "${PREFIX}/${LIBDIR}/libcrmmigrate_c.so")
if(NOT RUN_OUTPUT MATCHES "SONAME[^\n]*\\[libcrmmigrate_c\\.so\\.0\\]")
  message(FATAL_ERROR "libcrmmigrate_c.so has no SONAME libcrmmigrate_c.so.0:\n${RUN_OUTPUT}")
endif()
message(STATUS "installed into ${PREFIX}")

# A fresh copy of the small migration the C and C++ programs run.
function(fixture name out_dir)
  set(dir "${WORK_DIR}/run_${name}")
  file(MAKE_DIRECTORY "${dir}/out")
  file(COPY "${SOURCE_DIR}/tests/consumer/same_report/people.csv" "${SOURCE_DIR}/tests/consumer/same_report/migration.json"
       DESTINATION "${dir}")
  set(${out_dir} "${dir}" PARENT_SCOPE)
endfunction()

set(common_args -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${PREFIX}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF "-DEXPECTED_PREFIX=${PREFIX}" "-DCMAKE_C_COMPILER=${CC}"
    "-DCMAKE_CXX_COMPILER=${CXX}")
if(FLAGS)
  # A sanitizer build's static core needs the same runtime in the consumer.
  list(APPEND common_args "-DCMAKE_C_FLAGS=${FLAGS}" "-DCMAKE_CXX_FLAGS=${FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${FLAGS}")
endif()

# 2. C consumer (crmmigrate::c).
run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/consumer/c" -B "${WORK_DIR}/c" ${common_args})
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/c")
fixture(c c_run)
run("${WORK_DIR}/c/consumer_c" "${c_run}")
message(STATUS "C consumer: ${RUN_OUTPUT}")

# 3. C++ consumer (crmmigrate::core) and the stages example.
run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/consumer/cpp" -B "${WORK_DIR}/cpp" ${common_args}
    "-DCMG_EXAMPLES_DIR=${SOURCE_DIR}/examples")
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/cpp")
fixture(cpp cpp_run)
run("${WORK_DIR}/cpp/consumer_cpp" "${cpp_run}")
message(STATUS "C++ consumer:\n${RUN_OUTPUT}")
run("${WORK_DIR}/cpp/custom_source" "${WORK_DIR}/run_custom_source")
message(STATUS "stages example:\n${RUN_OUTPUT}")

# 4. conan/test_package with plain CMake.
run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}/conan/test_package" -B "${WORK_DIR}/test_package" ${common_args})
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/test_package")
run("${WORK_DIR}/test_package/test_package")
message(STATUS "conan test_package: ${RUN_OUTPUT}")

# 5. pkg-config.
find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  set(ENV{PKG_CONFIG_PATH} "${PREFIX}/${LIBDIR}/pkgconfig")
  run("${PKG_CONFIG}" --modversion crmmigrate)
  string(STRIP "${RUN_OUTPUT}" pc_version)
  # The .pc file derives its prefix from its own location (relocatable): both directories must
  # resolve into this prefix.
  file(REAL_PATH "${PREFIX}" real_prefix)
  foreach(var_dir "includedir;include" "libdir;${LIBDIR}")
    list(GET var_dir 0 var)
    list(GET var_dir 1 want)
    run("${PKG_CONFIG}" "--variable=${var}" crmmigrate)
    string(STRIP "${RUN_OUTPUT}" got)
    file(REAL_PATH "${got}" got)
    if(NOT got STREQUAL "${real_prefix}/${want}")
      message(FATAL_ERROR "pkg-config ${var} is ${got}, expected ${real_prefix}/${want}")
    endif()
  endforeach()
  run("${PKG_CONFIG}" --cflags --libs crmmigrate)
  string(STRIP "${RUN_OUTPUT}" pc_flags)
  separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
  separate_arguments(extra UNIX_COMMAND "${FLAGS}")
  run("${CC}" -std=c99 -Wall -Wextra -Wpedantic -Werror ${extra} "${SOURCE_DIR}/tests/consumer/c/main.c" -o
      "${WORK_DIR}/consumer_c_pkgconfig" ${pc_flags})
  fixture(pkgconfig pc_run)
  set(ENV{LD_LIBRARY_PATH} "${PREFIX}/${LIBDIR}")
  run("${WORK_DIR}/consumer_c_pkgconfig" "${pc_run}")
  unset(ENV{LD_LIBRARY_PATH})
  message(STATUS "pkg-config (crmmigrate ${pc_version}): ${RUN_OUTPUT}")
else()
  message(FATAL_ERROR "pkg-config is not installed")
endif()

# 6. The Conan recipe byte-compiles (Conan itself is not installed here); caches go to WORK_DIR.
set(ENV{PYTHONPYCACHEPREFIX} "${WORK_DIR}/pycache")
run(/usr/bin/python3 -m py_compile "${SOURCE_DIR}/conan/conanfile.py" "${SOURCE_DIR}/conan/test_package/conanfile.py")
message(STATUS "conan recipes byte-compile")

# 7. The Python package, importable from the prefix.
if(EXPECT_PYTHON)
  if(PYTHON_DIR)
    set(pydir "${PREFIX}/${PYTHON_DIR}")
  else()
    file(GLOB_RECURSE init "${PREFIX}/*/crmmigrate/__init__.py")
    list(GET init 0 init)
    get_filename_component(pydir "${init}" DIRECTORY)
    get_filename_component(pydir "${pydir}" DIRECTORY)
  endif()
  set(ENV{PYTHONPATH} "${pydir}")
  run(/usr/bin/python3 -c "print(__import__('crmmigrate').__file__)")
  string(STRIP "${RUN_OUTPUT}" where)
  if(NOT where MATCHES "^${PREFIX}/")
    message(FATAL_ERROR "import crmmigrate found ${where}, not the package under ${PREFIX}")
  endif()
  message(STATUS "python: import crmmigrate → ${where}")
endif()
message(STATUS "install and consume: all good")
