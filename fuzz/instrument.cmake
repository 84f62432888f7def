# -DHVTEL_FUZZ=ON: every C/C++ target gets libFuzzer's coverage hooks and ASan+UBSan, so the agent
# libraries the fuzz targets link report what they reach; fuzz/CMakeLists.txt links the fuzzer driver.
# Included by the top-level CMakeLists.txt before any target exists.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
  message(FATAL_ERROR "HVTEL_FUZZ needs clang >= 16 (-DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16): "
                      "clang 14 cannot compile libstdc++'s std::expected; see scripts/fuzz.sh")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
# libstdc++ 12 hides <expected> unless __cpp_concepts >= 202002L, which clang 16 implements (P0848,
# conditionally trivial special members) but does not yet announce.
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-U__cpp_concepts> $<$<COMPILE_LANGUAGE:CXX>:-D__cpp_concepts=202002L>)
