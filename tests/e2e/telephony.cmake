# telephony-ingest end to end: the built binary driven with curl (generic API, Twilio's
# callbacks) and by a scripted AMI peer, events read back from the mock Kafka cluster.
# Included from tests/e2e/CMakeLists.txt.
leadflow_test(NAME telephony_e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/telephony_e2e_test.cc
              DEPS leadflow::testing leadflow::ingest leadflow::kafka leadflow::proto
                   telephony_ami_peer nlohmann_json::nlohmann_json
              LABELS e2e)
target_compile_definitions(telephony_e2e_test PRIVATE LEADFLOW_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(telephony_e2e_test telephony-ingest)

# The telephony channel through crm-core: telephony-ingest, the dev broker and crm-core built,
# results read over gRPC with crmctl.
leadflow_test(NAME telephony_crm_e2e_test
              SOURCES ${CMAKE_CURRENT_LIST_DIR}/telephony_crm_e2e_test.cc
              DEPS leadflow_e2e_stack leadflow::ingest leadflow::proto telephony_ami_peer
                   absl::time
              LABELS e2e)
target_compile_definitions(telephony_crm_e2e_test PRIVATE
                           LEADFLOW_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(telephony_crm_e2e_test telephony-ingest crm-core crmctl dev-broker)
