# Every dependency comes from Debian packages (scripts/setup.sh installs them).
find_package(Boost 1.81.0 EXACT CONFIG REQUIRED COMPONENTS json)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)

find_path(LMDB_INCLUDE_DIR lmdb.h REQUIRED)
find_library(LMDB_LIBRARY lmdb REQUIRED)
add_library(cmg_lmdb INTERFACE)
target_include_directories(cmg_lmdb SYSTEM INTERFACE ${LMDB_INCLUDE_DIR})
target_link_libraries(cmg_lmdb INTERFACE ${LMDB_LIBRARY})

find_path(UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)
find_library(UTF8PROC_LIBRARY utf8proc REQUIRED)
add_library(cmg_utf8proc INTERFACE)
target_include_directories(cmg_utf8proc SYSTEM INTERFACE ${UTF8PROC_INCLUDE_DIR})
target_link_libraries(cmg_utf8proc INTERFACE ${UTF8PROC_LIBRARY})

include(FindLibPhoneNumber)
