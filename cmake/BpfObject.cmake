# bpf_object(NAME SOURCE [DEPENDS headers...])
#
# Compiles bpf/NAME.bpf.c with clang -target bpf against the checked-in vmlinux.h
# (never the build machine's BTF: the object must load on any kernel through CO-RE),
# strips DWARF (BTF is kept), and generates NAME.skel.h with bpftool. Produces an
# INTERFACE target NAME_skel that carries the include path of the generated header.
#
# Each custom command gets its own target so parallel builds never run the same
# command twice for two consumers.

find_program(BPF_CLANG NAMES clang clang-19 clang-16 clang-14 REQUIRED)
find_program(BPF_LLVM_STRIP NAMES llvm-strip llvm-strip-19 llvm-strip-16 llvm-strip-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(HVTEL_BPF_INCLUDES
  ${CMAKE_SOURCE_DIR}/bpf
  ${CMAKE_SOURCE_DIR}/bpf/vmlinux/x86
  ${CMAKE_SOURCE_DIR}/include)

function(bpf_object name source)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  set(incs)
  foreach(i ${HVTEL_BPF_INCLUDES})
    list(APPEND incs -I${i})
  endforeach()
  add_custom_command(OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            ${incs} -idirafter /usr/include/x86_64-linux-gnu
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${source} -o ${obj}.tmp
    COMMAND ${BPF_LLVM_STRIP} -g ${obj}.tmp -o ${obj}
    DEPENDS ${source} ${ARG_DEPENDS}
    COMMENT "BPF ${name}"
    VERBATIM)
  add_custom_command(OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel} ${obj})
  add_library(${name}_skel INTERFACE)
  target_include_directories(${name}_skel SYSTEM INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
  add_dependencies(${name}_skel ${name}_skel_gen)
endfunction()
