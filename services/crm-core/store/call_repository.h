#pragma once

// What the call rules read and write (docs/architecture.md, "Calls"): the call settings and the
// users named as operators, CALL activities with the call's facts (call-backs folded into the
// open one their record has), call-backs completed by an answered outbound call, recordings
// that arrive after their call, and the unidentified calls. Each statement runs once per batch,
// whatever its size. Also the settings and list the API serves.

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "crm-core/domain/call/call.h"
#include "crm-core/domain/common/types.h"

namespace leadflow::crm {

/// The users a batch's calls name, active only: by extension, and by lower-cased e-mail.
struct CallOperators {
  std::map<std::string, int64_t> by_extension;
  std::map<std::string, int64_t> by_email;
};

/// One CALL activity to write.
struct CallActivityRow {
  domain::EntityKind owner = domain::EntityKind::kLead;
  int64_t owner_id = 0;
  std::string subject;
  std::string description;
  int64_t responsible_user_id = 0;  // 0: nobody
  bool completed = false;
  int64_t deadline_minutes = 0;  // 0: none
  std::string origin_event_id;
  bool call_back = false;
  domain::CallFacts call;
  int missed_calls = 0;
  /// When the first call it holds happened (CallFacts::at_unix; 0: now): a call-back's deadline
  /// counts from it. `call` (the latest call) gives its last attempt.
  int64_t first_at_unix = 0;
  std::string completed_by_event_id;
  /// Every call the activity holds (a call-back: each missed call folded into it); a late
  /// recording of any of them finds it.
  std::vector<std::string> call_ids;
  /// A call-back with no responsible yet: the queue whose next member gets it, should it be a
  /// call-back to make (the writer takes the turn; empty: none).
  std::string queue;
  /// The event of the answered call already on the record that makes this call-back moot
  /// (FindReached): written completed by it. Empty: none.
  std::string reached_by;
};

/// What a call-back about to be written meets on its record (FindReached).
struct ReachedCallBack {
  std::string event_id;             // the answered call that makes it moot; empty: none
  int64_t responsible_user_id = 0;  // that call's
  bool open_call_back = false;      // the record's open call-back, which it is folded into
};

/// What UpsertActivities wrote, counted by missed call: a row folding n missed calls counts
/// one created and n - 1 updated when it makes a new call-back, n updated when it is folded into
/// the record's open one, whatever the batching.
struct CallActivitiesWritten {
  size_t call_backs_created = 0;    // open or completed at once
  size_t call_backs_updated = 0;    // missed calls folded into an existing call-back
  size_t call_backs_completed = 0;  // of those written, completed (a completion in the batch)
  /// Missed calls written as a call-back completed by an answered call already on the record
  /// (CallActivityRow::reached_by): counted here only, neither created nor completed.
  size_t call_backs_already_reached = 0;
};

/// What CompleteCallBacks did.
struct CallBacksCompleted {
  std::vector<int64_t> deals;  // the deals whose call-backs were completed
  size_t call_backs = 0;
};

/// An owner whose open call-back an answered outbound call completes.
struct CallBackCompletion {
  domain::EntityKind owner = domain::EntityKind::kLead;
  int64_t owner_id = 0;
  std::string event_id;
};

/// A record holding a phone identity an answered outbound call dialled.
struct PhoneHolder {
  domain::EntityKind owner = domain::EntityKind::kLead;
  int64_t owner_id = 0;
  std::string phone;  // the E.164 identity it holds
};

struct UnidentifiedCall {
  int64_t id = 0;
  domain::CallFacts call;  // its times: started_unix, answered_unix, ended_unix (0: unknown)
  domain::UnidentifiedReason reason = domain::UnidentifiedReason::kWithheld;
  int64_t responsible_user_id = 0;
  std::string origin_event_id;
  int64_t create_micros = 0;
};

/// A record's open call-back.
struct OpenCallBack {
  int64_t owner_id = 0;
  int64_t activity_id = 0;
  int64_t missed_calls = 0;
  int64_t recordings = 0;
  std::vector<std::string> recording_urls;
};

/// The recordings a fold left out (fold_moved_call_back keeps domain::kMaxRecordingsPerCall per
/// call-back): for each call-back of `before` (read before the fold) other than `kept` (the
/// kept record's open call-back, read after it), its distinct URLs that `kept` does not hold.
/// The fold appends every URL the kept one lacks while there is room, so the ones missing were
/// cut by the cap.
int64_t RecordingsLeftOutByFold(const std::vector<OpenCallBack>& before, const OpenCallBack& kept);

/// A recording list as the statements read it (a JSON array of strings); empty when unreadable.
std::vector<std::string> RecordingUrlsFromJson(const std::string& json);

/// What AddRecordings did: the call ids that matched no call, and the URLs dropped past
/// domain::kMaxRecordingsPerCall.
struct RecordingsAdded {
  std::vector<std::string> unmatched;
  size_t dropped = 0;
};

/// What an admin sets (SettingsService's `calls`).
struct StoredCallSettings {
  int64_t call_back_sla_minutes = 15;
  bool outbound_creates_lead = false;
  std::map<std::string, std::string> line_queues;
};

class CallRepository {
 public:
  explicit CallRepository(pqxx::transaction_base& work) : work_(work) {}

  domain::CallSettings ReadSettings();
  CallOperators FindOperators(const std::vector<std::string>& extensions,
                              const std::vector<std::string>& emails);
  /// Inserts the activities; an open call-back meeting its record's open one is folded into it.
  /// Records which activity holds each of the rows' call ids.
  CallActivitiesWritten UpsertActivities(const std::vector<CallActivityRow>& rows);
  /// For each of `rows` (same order) that is a call-back to write open: the answered call
  /// already on its record that makes it moot (its latest missed call, `call.at_unix`, known and
  /// before that call was answered), told to the upsert (`reached_by`); and whether the record
  /// holds an open call-back already, which the upsert folds it into. Read before the upsert.
  std::vector<ReachedCallBack> FindReached(const std::vector<CallActivityRow>& rows);
  /// The records holding one of `phones` (E.164 identities), and the deals of such contacts and
  /// companies: those an answered outbound call to that phone reaches.
  std::vector<PhoneHolder> FindPhoneHolders(const std::vector<std::string>& phones);
  /// The open call-backs of the records `owner_ids` of `owner_type` (at most one each).
  std::vector<OpenCallBack> OpenCallBacks(const std::string& owner_type,
                                          const std::vector<int64_t>& owner_ids);
  /// Completes the open call-backs of `owners`.
  CallBacksCompleted CompleteCallBacks(const std::vector<CallBackCompletion>& owners);
  /// (call id, recording URL) pairs in arrival order, a call any number of times: appended to
  /// the call's activity and unidentified call, each URL once, at most
  /// domain::kMaxRecordingsPerCall per row; `late`: recordings arriving after their call (an
  /// empty list then starts from the one URL an earlier release kept). Returns the call ids that
  /// matched no call (nothing written for them) and how many URLs the cap dropped.
  RecordingsAdded AddRecordings(const std::vector<std::pair<std::string, std::string>>& recordings,
                                bool late);
  /// Returns the calls inserted (an event's call is inserted once).
  size_t InsertUnidentified(const std::vector<UnidentifiedCall>& calls);
  /// Deletes at most `limit` unidentified calls older than `retention_days`, oldest first;
  /// returns how many.
  size_t PruneUnidentified(int retention_days, int limit);
  /// Newest first, after `before_id` (0: the first page); `reason`: only those, else all.
  std::vector<UnidentifiedCall> ListUnidentified(int64_t before_id, int limit,
                                                 std::optional<domain::UnidentifiedReason> reason);

  StoredCallSettings GetSettings();
  /// Writes the settings; `line_queues`: also replaces the per-line queues.
  void UpdateSettings(const StoredCallSettings& settings, bool line_queues);

 private:
  pqxx::transaction_base& work_;
};

}  // namespace leadflow::crm
