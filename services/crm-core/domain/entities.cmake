# The CRM domain's entities and rules beyond leads: names, pipelines, deals, person matching,
# conversion and merge plans. Plain C++ (abseil, ICU for name folding): links no pqxx, gRPC or
# protobuf, so storage, the API and the inbound consumer all build on it.
find_package(ICU REQUIRED COMPONENTS uc i18n)
set(domain_dir ${CMAKE_CURRENT_LIST_DIR})
leadflow_library(NAME crm_domain_entities
  SOURCES ${domain_dir}/common/types.cc ${domain_dir}/naming/naming.cc
          ${domain_dir}/pipeline/pipeline.cc ${domain_dir}/deal/deal.cc
          ${domain_dir}/matching/matching.cc ${domain_dir}/conversion/conversion.cc
          ${domain_dir}/merge/merge.cc
  DEPS absl::status absl::statusor absl::strings ICU::uc ICU::i18n
  TESTS ${domain_dir}/naming/naming_test.cc ${domain_dir}/pipeline/pipeline_test.cc
        ${domain_dir}/deal/deal_test.cc ${domain_dir}/matching/matching_test.cc
        ${domain_dir}/conversion/conversion_test.cc ${domain_dir}/merge/merge_test.cc)
