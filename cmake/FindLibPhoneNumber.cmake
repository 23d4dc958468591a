# libphonenumber: prefer a system installation (libphonenumber-dev). On Debian bookworm that package
# cannot be installed next to Boost 1.81, so scripts/setup.sh unpacks its headers into
# build/_deps/libphonenumber and we link the runtime libphonenumber.so.8 from the system.
find_path(PHONENUMBER_INCLUDE_DIR phonenumbers/phonenumberutil.h
  HINTS /usr/include "${PROJECT_SOURCE_DIR}/build/_deps/libphonenumber/usr/include")
find_library(PHONENUMBER_LIBRARY NAMES phonenumber libphonenumber.so.8
  PATHS /usr/lib/x86_64-linux-gnu /usr/lib)
if(NOT PHONENUMBER_LIBRARY)
  find_file(PHONENUMBER_LIBRARY libphonenumber.so.8 PATHS /usr/lib/x86_64-linux-gnu /usr/lib)
endif()
if(NOT PHONENUMBER_INCLUDE_DIR OR NOT PHONENUMBER_LIBRARY)
  message(FATAL_ERROR "libphonenumber not found: run scripts/setup.sh (it installs libphonenumber8 "
                      "and unpacks the headers into build/_deps/libphonenumber)")
endif()
find_package(Protobuf REQUIRED)
add_library(cmg_phonenumber INTERFACE)
target_include_directories(cmg_phonenumber SYSTEM INTERFACE ${PHONENUMBER_INCLUDE_DIR} ${Protobuf_INCLUDE_DIRS})
target_link_libraries(cmg_phonenumber INTERFACE ${PHONENUMBER_LIBRARY} ${Protobuf_LIBRARIES})
message(STATUS "libphonenumber: ${PHONENUMBER_LIBRARY} (headers ${PHONENUMBER_INCLUDE_DIR})")
