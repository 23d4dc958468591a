# Compiles each public C header alone as C99 with -pedantic -Werror (libgit2 tests/headertest).
# -DCC=<compiler> -DINCLUDE_DIR=<include> -DHEADERS=<h1;h2;...>
set(failed "")
foreach(h IN LISTS HEADERS)
  file(RELATIVE_PATH rel "${INCLUDE_DIR}" "${h}")
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/headertest_unit.c" "#include \"${rel}\"\nint main(void) { return 0; }\n")
  execute_process(
    COMMAND ${CC} -std=c99 -pedantic -Werror -Wall -Wextra -fsyntax-only -I${INCLUDE_DIR}
            "${CMAKE_CURRENT_BINARY_DIR}/headertest_unit.c"
    RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(STATUS "ok: ${rel}")
  else()
    message(STATUS "FAILED: ${rel}\n${err}")
    list(APPEND failed "${rel}")
  endif()
endforeach()
list(LENGTH HEADERS n)
if(n LESS 6)
  message(FATAL_ERROR "expected crmmigrate.h and the sys/ headers, got: ${HEADERS}")
endif()
if(failed)
  message(FATAL_ERROR "headers that do not compile as C99: ${failed}")
endif()
