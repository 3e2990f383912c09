# One helper makes every library, binary and test target, so that a folder reads the same
# everywhere: libs/<name> builds leadflow::<name>; its *_test.cc files become one test binary.

# leadflow_library(NAME <name> SOURCES ... [DEPS ...] [TESTS ...] [TEST_DEPS ...] [TEST_LABELS ...])
function(leadflow_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;TESTS;TEST_DEPS;TEST_LABELS" ${ARGN})
  set(target leadflow_${ARG_NAME})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(leadflow::${ARG_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/libs ${PROJECT_SOURCE_DIR}/services)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS})
  if(ARG_TESTS)
    leadflow_test(NAME ${ARG_NAME}_test SOURCES ${ARG_TESTS} DEPS ${target} ${ARG_TEST_DEPS}
                  LABELS ${ARG_TEST_LABELS})
  endif()
endfunction()

# leadflow_test(NAME <name> SOURCES ... [DEPS ...] [LABELS ...])
function(leadflow_test)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}"
                       ENVIRONMENT "LEADFLOW_BUILD_DIR=${PROJECT_BINARY_DIR}")
endfunction()
