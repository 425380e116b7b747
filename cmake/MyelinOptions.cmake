# Compiler flags shared by every myelin target, applied through the
# myelin_options interface library so third-party code is not affected.
add_library(myelin_options INTERFACE)
target_compile_options(myelin_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
  -Wcast-align -Wimplicit-fallthrough -Wformat=2)
if(MYELIN_WERROR)
  target_compile_options(myelin_options INTERFACE -Werror)
endif()
target_include_directories(myelin_options INTERFACE
  ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)

if(MYELIN_SANITIZE)
  list(JOIN MYELIN_SANITIZE "," _san)
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_san})
endif()

if(MYELIN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MYELIN_FUZZ needs clang (use the 'fuzz' preset)")
  endif()
  # Coverage instrumentation everywhere; only fuzz targets link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# myelin_add_test(NAME SOURCES ... LIBS ... [LABELS ...]): one GoogleTest
# binary in build/<preset>/bin, registered with CTest test by test. Label
# concurrency tests `concurrency`: scripts/test also runs those under tsan.
# FIXTURES names CTest fixtures the tests need (e.g. amqp_broker, the private
# RabbitMQ node), which CTest then sets up before and cleans up after them.
# SERIAL runs each of the binary's tests alone (nothing else in parallel).
function(myelin_add_test name)
  if(MYELIN_FUZZ)
    return()  # the fuzz preset builds fuzz targets only
  endif()
  cmake_parse_arguments(ARG "SERIAL" "" "SOURCES;LIBS;LABELS;FIXTURES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} myelin_options GTest::gtest GTest::gtest_main)
  # An empty property value would swallow the next key: add only the set ones.
  set(_props ENVIRONMENT "MYELIN_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  if(ARG_LABELS)
    list(APPEND _props LABELS "${ARG_LABELS}")
  endif()
  if(ARG_FIXTURES)
    list(APPEND _props FIXTURES_REQUIRED "${ARG_FIXTURES}")
  endif()
  if(ARG_SERIAL)
    list(APPEND _props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${_props})
endfunction()
