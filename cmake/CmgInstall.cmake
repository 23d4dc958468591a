# Install rules (README "Embedding"): headers, the static C++ core (crmmigrate::core), the shared C
# library (crmmigrate::c), the CLI, a CMake package (find_package(crmmigrate), SameMajorVersion)
# and a pkg-config file for the C library. Included from lib/CMakeLists.txt once the targets exist.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CMG_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/crmmigrate"
    CACHE STRING "Where the CMake package files of crmmigrate are installed (relative to the prefix)")

set_target_properties(crmmigrate_core PROPERTIES EXPORT_NAME core)
set_target_properties(crmmigrate_c PROPERTIES EXPORT_NAME c)

# The static core links LMDB, utf8proc, libphonenumber (+ protobuf) and OpenSSL privately; a consumer
# of the installed package must link them too. Their build-tree targets carry include paths under the
# source tree (libphonenumber's headers), so the installed interface names one imported target that
# crmmigrateConfig.cmake recreates from the libraries found at configure time.
target_link_libraries(crmmigrate_core INTERFACE "$<INSTALL_INTERFACE:crmmigrate::core_deps>")
set(CMG_CORE_DEP_FILES "${LMDB_LIBRARY};${UTF8PROC_LIBRARY};${PHONENUMBER_LIBRARY}")
foreach(lib IN LISTS Protobuf_LIBRARIES)
  # FindProtobuf may give "optimized;path;debug;path": keep the files.
  if(EXISTS "${lib}")
    list(APPEND CMG_CORE_DEP_FILES "${lib}")
  endif()
endforeach()
list(REMOVE_DUPLICATES CMG_CORE_DEP_FILES)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/crmmigrate" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        COMPONENT crmmigrate_development)
install(TARGETS crmmigrate_core crmmigrate_c
        EXPORT crmmigrateTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT crmmigrate_development
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT crmmigrate_runtime
                NAMELINK_COMPONENT crmmigrate_development
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS crmmigrate RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT crmmigrate_runtime)

install(EXPORT crmmigrateTargets NAMESPACE crmmigrate:: DESTINATION "${CMG_INSTALL_CMAKEDIR}"
        COMPONENT crmmigrate_development)
configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/crmmigrateConfig.cmake.in"
                              "${PROJECT_BINARY_DIR}/crmmigrateConfig.cmake"
                              INSTALL_DESTINATION "${CMG_INSTALL_CMAKEDIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/crmmigrateConfigVersion.cmake"
                                 VERSION "${PROJECT_VERSION}" COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/crmmigrateConfig.cmake" "${PROJECT_BINARY_DIR}/crmmigrateConfigVersion.cmake"
        DESTINATION "${CMG_INSTALL_CMAKEDIR}" COMPONENT crmmigrate_development)

# pkg-config (the C library). Relocatable: the prefix is derived from the .pc file's own directory,
# so `cmake --install --prefix DIR` works whatever CMAKE_INSTALL_PREFIX was at configure time.
file(RELATIVE_PATH CMG_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file("${CMAKE_CURRENT_LIST_DIR}/crmmigrate.pc.in" "${PROJECT_BINARY_DIR}/crmmigrate.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/crmmigrate.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
        COMPONENT crmmigrate_development)
