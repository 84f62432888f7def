# Warnings for hvtel's own C/C++ targets, in one place.
function(hvtel_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers
    $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Wold-style-cast>)
  if(HVTEL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
