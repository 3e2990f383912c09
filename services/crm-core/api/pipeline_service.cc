// PipelineService: deal pipelines and their stages. The rules are domain/pipeline's; this file
// reads the pipeline under its row lock, applies one domain edit, and writes the result.
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/deal_common.h"
#include "crm-core/api/deal_services.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/store/email_repository.h"

namespace leadflow::crm {

void PipelineToProto(const StoredPipeline& stored, v1::Pipeline* out) {
  out->set_id(stored.pipeline.id);
  out->set_name(stored.pipeline.name);
  out->set_sort(stored.sort);
  for (const domain::Stage& stage : stored.pipeline.stages) {
    v1::PipelineStage* added = out->add_stages();
    added->set_id(stage.id);
    added->set_name(stage.name);
    added->set_sort(stage.sort);
    added->set_semantics(SemanticsToProto(stage.semantics));
    added->set_idle_days(stage.idle_days.value_or(0));
    auto count = stored.deal_counts.find(stage.id);
    added->set_deal_count(count == stored.deal_counts.end() ? 0 : count->second);
  }
  *out->mutable_create_time() = FromMicros(stored.create_micros);
  *out->mutable_update_time() = FromMicros(stored.update_micros);
  out->set_etag(Etag(stored.version));
}

namespace {

absl::Status PipelineNotFound(int64_t id) { return domain::NotFound("pipeline", id); }

// ListPipelines' page token carries the place a page ended at, (sort, id), in its one 63-bit key
// (as FindByName's carries a kind's rank above the id): the sort offset to be non-negative in the
// high 32 bits, the id in the low 31. Read back from the pipeline instead, a pipeline deleted
// between two pages ended the listing there (an empty page, every later pipeline missing). Ids
// stay below 2^31 (a pipeline is an admin's creation); a token from the release before, an id
// alone, reads as the start of the order: that page repeats pipelines, it skips none.
constexpr int kPlaceIdBits = 31;
constexpr int64_t kPlaceIdLimit = int64_t{1} << kPlaceIdBits;

int64_t PackPlace(const PipelineRepository::Place& place) {
  const auto sort =
      static_cast<uint64_t>(static_cast<int64_t>(place.sort) - std::numeric_limits<int32_t>::min());
  return static_cast<int64_t>((sort << kPlaceIdBits) | static_cast<uint64_t>(place.id));
}

PipelineRepository::Place UnpackPlace(int64_t key) {
  return {
      .sort = static_cast<int>(static_cast<int64_t>(static_cast<uint64_t>(key) >> kPlaceIdBits) +
                               std::numeric_limits<int32_t>::min()),
      .id = key & (kPlaceIdLimit - 1)};
}

absl::StatusOr<domain::Stage> StageFromProto(const v1::PipelineStage& stage) {
  if (absl::Status text = CheckText("stage.name", stage.name()); !text.ok()) {
    return text;
  }
  std::optional<domain::Semantics> semantics = SemanticsFromProto(stage.semantics());
  if (!semantics) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stage ", domain::Quoted(stage.id()), ": semantics must be PROCESS, SUCCESS or FAILURE"));
  }
  if (stage.idle_days() < 0 || stage.idle_days() > domain::kMaxIdleDays) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stage ", domain::Quoted(stage.id()), ": idle_days must be 0 to ", domain::kMaxIdleDays));
  }
  domain::Stage out{.id = stage.id(), .name = stage.name(), .semantics = *semantics};
  if (stage.idle_days() > 0) {
    out.idle_days = stage.idle_days();
  }
  return out;
}

// One stage edit: lock, check the etag, apply `edit` to the domain pipeline, save, answer.
using Edit = std::function<absl::StatusOr<domain::Pipeline>(StoredPipeline&, PipelineRepository&)>;

absl::Status EditStages(pqxx::connection& connection, int64_t pipeline_id, const std::string& etag,
                        const Edit& edit, v1::Pipeline* response) {
  auto expected = ParseEtag(etag);
  if (!expected.ok()) {
    return expected.status();
  }
  pqxx::work work(connection);
  PipelineRepository pipelines(work);
  std::optional<int64_t> version = pipelines.Lock(pipeline_id);
  if (!version) {
    return PipelineNotFound(pipeline_id);
  }
  if (*expected != 0 && *expected != *version) {
    return absl::AbortedError(
        absl::StrCat("pipeline ", pipeline_id, " changed since it was read (stale etag)"));
  }
  std::optional<StoredPipeline> stored = pipelines.Get(pipeline_id);
  auto edited = edit(*stored, pipelines);  // may set the pipeline's own fields too
  if (!edited.ok()) {
    return edited.status();
  }
  if (edited->name != stored->pipeline.name) {
    pipelines.LockNames();
    if (pipelines.NameTaken(edited->name, pipeline_id)) {
      return absl::AlreadyExistsError(
          absl::StrCat(domain::PipelineLabel(0, edited->name), " exists already"));
    }
  }
  stored->pipeline = *std::move(edited);
  pipelines.SaveStages(*stored);
  PipelineToProto(*pipelines.Get(pipeline_id), response);
  work.commit();
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* PipelineApi::CreatePipeline(grpc::CallbackServerContext* context,
                                                      const v1::CreatePipelineRequest* request,
                                                      v1::Pipeline* response) {
  return RunCall(context, __func__, backend_, Right::kConfigure, response,
                 [=](pqxx::connection& connection) {
                   const v1::Pipeline& given = request->pipeline();
                   if (absl::Status text = CheckText("pipeline.name", given.name()); !text.ok()) {
                     return text;
                   }
                   if (given.stages_size() > static_cast<int>(domain::kMaxStages)) {
                     return absl::InvalidArgumentError(
                         absl::StrCat("pipeline.stages: at most ", domain::kMaxStages, " stages"));
                   }
                   domain::Pipeline pipeline = domain::DefaultPipeline(0, given.name());
                   if (given.stages_size() > 0) {
                     pipeline.stages.clear();
                     for (const v1::PipelineStage& stage : given.stages()) {
                       auto parsed = StageFromProto(stage);
                       if (!parsed.ok()) {
                         return parsed.status();
                       }
                       pipeline.stages.push_back(*std::move(parsed));
                     }
                   }
                   if (absl::Status valid = domain::Validate(pipeline); !valid.ok()) {
                     return valid;
                   }
                   pqxx::work work(connection);
                   PipelineRepository pipelines(work);
                   pipelines.LockNames();
                   if (pipelines.NameTaken(pipeline.name, 0)) {
                     return absl::AlreadyExistsError(
                         absl::StrCat(domain::PipelineLabel(0, pipeline.name), " exists already"));
                   }
                   StoredPipeline stored{.pipeline = pipeline, .sort = given.sort()};
                   stored.pipeline.id = pipelines.Insert(pipeline.name, given.sort());
                   pipelines.SaveStages(stored);
                   PipelineToProto(*pipelines.Get(stored.pipeline.id), response);
                   work.commit();
                   return absl::OkStatus();
                 });
}

grpc::ServerUnaryReactor* PipelineApi::GetPipeline(grpc::CallbackServerContext* context,
                                                   const v1::GetPipelineRequest* request,
                                                   v1::Pipeline* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=](pqxx::connection& connection) {
        pqxx::read_transaction work(connection);
        std::optional<StoredPipeline> stored = PipelineRepository(work).Get(request->id());
        if (!stored) {
          return PipelineNotFound(request->id());
        }
        PipelineToProto(*stored, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PipelineApi::ListPipelines(grpc::CallbackServerContext* context,
                                                     const v1::ListPipelinesRequest* request,
                                                     v1::ListPipelinesResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto page = ParsePage(backend_.page_token_key, *request);
        if (!page.ok()) {
          return page.status();
        }
        pqxx::read_transaction work(connection);
        PipelineRepository pipelines(work);
        struct Row {
          int64_t id;  // the packed place, which FillPage puts in the next token
          int64_t pipeline_id;
        };
        std::vector<Row> rows;
        for (const PipelineRepository::Place& place : pipelines.List(
                 page->after_id == 0 ? std::nullopt : std::optional(UnpackPlace(page->after_id)),
                 page->limit())) {
          if (place.id >= kPlaceIdLimit) {
            return absl::InternalError(
                absl::StrCat("pipeline ", place.id, ": ids from 2^31 on cannot be paged"));
          }
          rows.push_back({PackPlace(place), place.id});
        }
        FillPage(
            rows, *page,
            [&](const Row& row) {
              if (auto stored = pipelines.Get(row.pipeline_id)) {
                PipelineToProto(*stored, response->add_pipelines());
              }
            },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PipelineApi::UpdatePipeline(grpc::CallbackServerContext* context,
                                                      const v1::UpdatePipelineRequest* request,
                                                      v1::Pipeline* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        auto paths =
            UpdatePaths(request->update_mask(), {"name", "sort"}, v1::Pipeline::descriptor());
        if (!paths.ok()) {
          return paths.status();
        }
        const v1::Pipeline& given = request->pipeline();
        if (absl::Status text = CheckText("pipeline.name", given.name()); !text.ok()) {
          return text;
        }
        return EditStages(
            connection, given.id(), given.etag(),
            [&](StoredPipeline& stored, PipelineRepository&) -> absl::StatusOr<domain::Pipeline> {
              if (paths->count("sort") != 0) {
                stored.sort = given.sort();
              }
              if (paths->count("name") == 0) {
                return stored.pipeline;
              }
              return domain::RenamePipeline(stored.pipeline, given.name());
            },
            response);
      });
}

grpc::ServerUnaryReactor* PipelineApi::DeletePipeline(grpc::CallbackServerContext* context,
                                                      const v1::DeletePipelineRequest* request,
                                                      google::protobuf::Empty* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        auto expected = ParseEtag(request->etag());
        if (!expected.ok()) {
          return expected.status();
        }
        pqxx::work work(connection);
        PipelineRepository pipelines(work);
        // Settings first, then the pipeline: the order UpdateSettings takes them in.
        SettingsRepository settings(work);
        settings.Lock();
        std::optional<int64_t> version = pipelines.Lock(request->id());
        if (!version) {
          return PipelineNotFound(request->id());
        }
        if (*expected != 0 && *expected != *version) {
          return absl::AbortedError(
              absl::StrCat("pipeline ", request->id(), " changed since it was read (stale etag)"));
        }
        if (settings.Get().inbound_pipeline_id == request->id()) {
          return absl::FailedPreconditionError(
              absl::StrCat("pipeline ", request->id(),
                           " is the inbound pipeline; choose another in SettingsService first"));
        }
        for (const EmailRoute& route : EmailRepository(work).ListRoutes()) {
          if (route.pipeline_id == request->id()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "pipeline ", request->id(), " is the pipeline of the email route ",
                domain::Quoted(route.address), "; change it in SettingsService first"));
          }
        }
        if (int64_t deals = pipelines.CountDeals(request->id()); deals > 0) {
          return absl::FailedPreconditionError(absl::StrCat(
              "pipeline ", request->id(), " holds ", deals, " deal(s); move or delete them first"));
        }
        pipelines.Delete(request->id());
        work.commit();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PipelineApi::AddStage(grpc::CallbackServerContext* context,
                                                const v1::AddStageRequest* request,
                                                v1::Pipeline* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        // AddStage adds PROCESS and FAILURE stages only: a pipeline has its one SUCCESS stage
        // from its creation (a SUCCESS stage given is FAILED_PRECONDITION, domain::AddStage).
        if (!SemanticsFromProto(request->stage().semantics())) {
          return absl::InvalidArgumentError(
              absl::StrCat("stage ", domain::Quoted(request->stage().id()),
                           ": semantics must be PROCESS or FAILURE (a pipeline has its one "
                           "SUCCESS stage already)"));
        }
        auto stage = StageFromProto(request->stage());
        if (!stage.ok()) {
          return stage.status();
        }
        // The deals whose stage history names the id, counted before the pipeline's row lock:
        // the count scans deal_stage_history, and under the lock CreateDeal, MoveDeal and
        // ConvertLead on the pipeline (FOR SHARE) waited for the scan. The count stays true at
        // the lock when the pipeline's version is the one read before it and that version had
        // no stage of this id: history naming a stage is written only while the stage exists
        // (entering it, the deals row's foreign key holds the stage row until the writer
        // commits; leaving it, MoveDeal holds the pipeline FOR SHARE), so every such row was
        // committed before the stage's removal, itself before the version read, itself before
        // the count; and an unchanged version means no stage of this id came back in between to
        // gain history. Otherwise (a stage edit meanwhile) it is counted again under the lock.
        std::optional<std::pair<int64_t, int64_t>> counted;  // (version, deals)
        {
          pqxx::read_transaction read(connection);
          PipelineRepository pipelines(read);
          if (std::optional<StoredPipeline> before = pipelines.Get(request->pipeline_id());
              before && domain::FindStage(before->pipeline, stage->id) == nullptr) {
            counted.emplace(before->version,
                            pipelines.CountDealsThrough(request->pipeline_id(), stage->id));
          }
        }
        return EditStages(
            connection, request->pipeline_id(), request->etag(),
            [&](const StoredPipeline& stored,
                PipelineRepository& pipelines) -> absl::StatusOr<domain::Pipeline> {
              auto added = domain::AddStage(stored.pipeline, *stage, request->before_stage_id());
              if (!added.ok()) {
                return added;
              }
              // A removed stage's id that deals' stage history names comes back only as that
              // stage: with other semantics the history would change meaning ("from SURVEY"
              // read as a lost deal), and its old semantics are not kept, so the id is refused.
              const int64_t deals =
                  counted && counted->first == stored.version
                      ? counted->second
                      : pipelines.CountDealsThrough(stored.pipeline.id, stage->id);
              if (deals > 0) {
                return absl::FailedPreconditionError(absl::StrCat(
                    "stage id ", domain::Quoted(stage->id), " was removed from ",
                    domain::PipelineLabel(stored.pipeline.id, stored.pipeline.name),
                    " and the stage history of ", deals, deals == 1 ? " deal" : " deals",
                    " names it; give the new stage another id"));
              }
              return added;
            },
            response);
      });
}

grpc::ServerUnaryReactor* PipelineApi::UpdateStage(grpc::CallbackServerContext* context,
                                                   const v1::UpdateStageRequest* request,
                                                   v1::Pipeline* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        auto paths = UpdatePaths(request->update_mask(), {"name", "idle_days"},
                                 v1::PipelineStage::descriptor());
        if (!paths.ok()) {
          return paths.status();
        }
        const v1::PipelineStage& stage = request->stage();
        if (absl::Status text = CheckText("stage.name", stage.name()); !text.ok()) {
          return text;
        }
        domain::StageUpdate update;
        if (paths->count("name") != 0) {
          update.name = stage.name();
        }
        if (paths->count("idle_days") != 0) {
          if (stage.idle_days() < 0 || stage.idle_days() > domain::kMaxIdleDays) {
            return absl::InvalidArgumentError(
                absl::StrCat("stage.idle_days must be 0 (never) to ", domain::kMaxIdleDays));
          }
          update.idle_days =
              stage.idle_days() == 0 ? std::nullopt : std::optional(stage.idle_days());
        }
        return EditStages(
            connection, request->pipeline_id(), request->etag(),
            [&](const StoredPipeline& stored, PipelineRepository&) {
              return domain::UpdateStage(stored.pipeline, stage.id(), update);
            },
            response);
      });
}

grpc::ServerUnaryReactor* PipelineApi::ReorderStages(grpc::CallbackServerContext* context,
                                                     const v1::ReorderStagesRequest* request,
                                                     v1::Pipeline* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        if (request->stage_ids_size() > static_cast<int>(domain::kMaxStages)) {
          return absl::InvalidArgumentError(
              absl::StrCat("stage_ids: at most ", domain::kMaxStages));
        }
        std::vector<std::string> ids(request->stage_ids().begin(), request->stage_ids().end());
        return EditStages(
            connection, request->pipeline_id(), request->etag(),
            [&](const StoredPipeline& stored, PipelineRepository&) {
              return domain::ReorderStages(stored.pipeline, ids);
            },
            response);
      });
}

grpc::ServerUnaryReactor* PipelineApi::RemoveStage(grpc::CallbackServerContext* context,
                                                   const v1::RemoveStageRequest* request,
                                                   v1::Pipeline* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        return EditStages(
            connection, request->pipeline_id(), request->etag(),
            [&](const StoredPipeline& stored, PipelineRepository&) {
              // Deals entering a stage hold the pipeline FOR SHARE: the count read
              // under this FOR UPDATE lock cannot grow before the commit.
              auto count = stored.deal_counts.find(request->stage_id());
              return domain::RemoveStage(stored.pipeline, request->stage_id(),
                                         count == stored.deal_counts.end() ? 0 : count->second);
            },
            response);
      });
}

}  // namespace leadflow::crm
