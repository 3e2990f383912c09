# webform-ingest end to end: the built dev-broker and webform-ingest driven with curl, events
# read back from Kafka. Included from tests/e2e/CMakeLists.txt.
leadflow_test(NAME webform_e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/webform_e2e_test.cc
              DEPS leadflow_e2e_stack leadflow::kafka leadflow::proto nlohmann_json::nlohmann_json
              LABELS e2e)
add_dependencies(webform_e2e_test webform-ingest dev-broker)
