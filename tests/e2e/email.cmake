# email-ingest end to end: the built binary driven with Python's smtplib (tests/e2e/email_client.py)
# over SMTP and LMTP, events read back from librdkafka's mock cluster. Included from
# tests/e2e/CMakeLists.txt.
leadflow_test(NAME email_e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/email_e2e_test.cc
              DEPS leadflow::testing leadflow::ingest leadflow::kafka leadflow::proto
                   nlohmann_json::nlohmann_json
              LABELS e2e)
add_dependencies(email_e2e_test email-ingest)
