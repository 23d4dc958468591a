# Warning and sanitizer flags shared by every target of the project (not exported).
add_library(cmg_build_flags INTERFACE)
target_compile_options(cmg_build_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wnon-virtual-dtor>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wshadow=local>
  $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wpedantic>)
if(CMG_SANITIZE)
  target_compile_options(cmg_build_flags INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                         -fno-sanitize-recover=undefined)
  target_link_options(cmg_build_flags INTERFACE -fsanitize=address,undefined)
endif()
