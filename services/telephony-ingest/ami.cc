#include "telephony-ingest/ami.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <asio.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "telephony-ingest/generic.h"

namespace leadflow::telephony {

// ---------------------------------------------------------------------------------------------
// Framing

std::string AmiMessage::Get(std::string_view key) const {
  for (const auto& [name, value] : fields) {
    if (absl::EqualsIgnoreCase(name, absl::string_view(key.data(), key.size()))) {
      return value;
    }
  }
  return "";
}

bool AmiMessage::Has(std::string_view key) const {
  for (const auto& field : fields) {
    if (absl::EqualsIgnoreCase(field.first, absl::string_view(key.data(), key.size()))) {
      return true;
    }
  }
  return false;
}

void AmiFramer::Reset() {
  buffer_.clear();
  banner_.reset();
  current_ = AmiMessage{};
  current_bytes_ = 0;
}

absl::Status AmiFramer::Feed(std::string_view bytes, std::vector<AmiMessage>* out) {
  buffer_.append(bytes.data(), bytes.size());
  size_t start = 0;
  while (true) {
    size_t end = buffer_.find('\n', start);
    if (end == std::string::npos) {
      break;
    }
    std::string_view line(buffer_.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    current_bytes_ += end - start + 1;
    start = end + 1;
    if (current_bytes_ > max_message_bytes_) {
      return absl::InvalidArgumentError("AMI message too large");
    }
    if (!banner_) {
      // The first line of a connection: "Asterisk Call Manager/<version>".
      banner_ = std::string(line);
      current_bytes_ = 0;
      if (!absl::StartsWith(*banner_, "Asterisk Call Manager/")) {
        return absl::InvalidArgumentError("not an Asterisk manager interface (banner)");
      }
      // AMI 1.x (Asterisk 11 and older) tells calls with "Dial" (SubEvent Begin/End) and
      // "Bridge" events, which are not read: every answered call would be published missed.
      const std::string version = banner_->substr(22);
      int major = 0;
      if (absl::SimpleAtoi(version.substr(0, version.find('.')), &major) && major < 2) {
        return absl::FailedPreconditionError(absl::StrCat(
            "AMI version ", version,
            " (Asterisk 11 or older) is not supported: its calls would be read wrong (answered "
            "calls as missed); Asterisk 12 or newer (AMI 2 and later) is needed"));
      }
      continue;
    }
    if (line.empty()) {
      if (!current_.fields.empty()) {
        out->push_back(std::move(current_));
      }
      current_ = AmiMessage{};
      current_bytes_ = 0;
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError("AMI line is not \"Key: Value\"");
    }
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
    current_.fields.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  buffer_.erase(0, start);
  if (current_bytes_ + buffer_.size() > max_message_bytes_) {
    return absl::InvalidArgumentError("AMI message too large");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Calls

namespace {

// CoreShowChannel's Duration, how long the channel has existed: "HH:MM:SS" (more hours written
// in full); std::nullopt for anything else.
std::optional<std::chrono::seconds> ChannelAge(const std::string& text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  int64_t hours = 0;
  int64_t minutes = 0;
  int64_t seconds = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &hours) ||
      !absl::SimpleAtoi(parts[1], &minutes) || !absl::SimpleAtoi(parts[2], &seconds) || hours < 0 ||
      hours > 1000000 || minutes < 0 || minutes > 59 || seconds < 0 || seconds > 59) {
    return std::nullopt;  // a million hours is over a century: no channel is that old
  }
  return std::chrono::hours(hours) + std::chrono::minutes(minutes) + std::chrono::seconds(seconds);
}

}  // namespace

AmiCallTracker::AmiCallTracker(const AmiOptions& options, CallAssembler* calls, Publish publish,
                               std::function<Clock::time_point()> now)
    : options_(options),
      assembler_(calls),
      publish_(std::move(publish)),
      now_(now ? std::move(now) : [] { return Clock::now(); }) {}

Clock::time_point AmiCallTracker::EventTime(const AmiMessage& event,
                                            std::map<std::string, std::string>* dropped) const {
  // With timestampevents=yes in manager.conf every event carries "Timestamp: 1700000000.123".
  double seconds = 0;
  std::string text = event.Get("Timestamp");
  if (text.empty()) {
    return now_();  // timestampevents=no
  }
  if (absl::SimpleAtod(text, &seconds) && seconds > 0 &&
      seconds < static_cast<double>(LastClockSecond())) {  // past it, the conversion overflowed
    return Clock::time_point(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  }
  (*dropped)["Timestamp"] = "no Unix time from 1970 to 2262: the event's arrival time used";
  return now_();
}

void AmiCallTracker::ReportDropped(const std::string& linkedid,
                                   const std::map<std::string, std::string>& dropped) const {
  if (!dropped.empty() && on_dropped) {
    on_dropped(absl::StrCat("asterisk:", linkedid), dropped);
  }
}

bool AmiCallTracker::IsExtension(const std::string& number) const {
  return IsInternalExtension(number, options_.extension_max_digits);
}

void AmiCallTracker::Ignore(Tracked& call, const char* reason) {
  call.internal = true;  // publishes nothing, whatever its channels do next
  ++internal_;
  if (on_ignored) {
    on_ignored(reason);
  }
}

void AmiCallTracker::Begin(const std::string& linkedid, Tracked& call, const AmiMessage& channel,
                           Clock::time_point at,
                           const std::map<std::string, std::string>& dropped) {
  std::string caller = channel.Get("CallerIDNum");
  std::string dialled = channel.Get("Exten");
  CallUpdate update;
  update.state = State::kRinging;
  update.started_at = at;
  if (IsExtension(caller)) {
    if (IsExtension(dialled) || dialled.empty() || dialled == "s") {
      Ignore(call, "internal_call");  // colleague to colleague: not a customer call
      return;
    }
    if (IsFeatureCode(dialled)) {
      Ignore(call, "feature_code");  // *97, *8, #72: the PBX's own services
      return;
    }
    const std::string& prefix = options_.outside_line_prefix;
    if (!prefix.empty() && dialled.size() > prefix.size() && absl::StartsWith(dialled, prefix)) {
      dialled.erase(0, prefix.size());  // "0" for an outside line, then the number
    }
    update.direction = CallEvent::OUTBOUND;
    call.outbound = true;
    update.from = caller;
    update.to = dialled;
    update.extension = caller;
    update.operator_name = caller;
    update.line = options_.line;
  } else {
    update.direction = CallEvent::INBOUND;
    update.from = caller == "<unknown>" ? "" : caller;
    update.to = dialled;
    update.line = options_.line.empty() ? dialled : options_.line;
  }
  update.provider_status = channel.Get("ChannelStateDesc");
  ReportDropped(linkedid, dropped);
  Apply(linkedid, std::move(update));
}

void AmiCallTracker::Apply(const std::string& linkedid, CallUpdate update) {
  update.provider = "asterisk";
  update.provider_call_id = linkedid;
  // A call taken up by Reconcile is incomplete whatever its end says: what happened before it
  // was listed (who was rung, who answered) is unknown.
  auto publish = [&](FinishedCall finished) {
    if (auto it = calls_.find(linkedid); it != calls_.end() && it->second.taken_up) {
      finished.call.set_incomplete(true);
    }
    publish_(finished);
  };
  auto result = assembler_->Apply(update, now_());
  if (!result.ok()) {
    spdlog::warn("ami: call {}: {}", linkedid, result.status().ToString());
    if (result.status().code() == absl::StatusCode::kUnavailable) {
      // The call store failed: a final state is published from what it says (AMI cannot
      // replay it), an intermediate one is lost.
      if (auto alone = CallAssembler::ApplyAlone(update, now_())) {
        if (on_decided_alone) {
          on_decided_alone();
        }
        publish(std::move(*alone));
      }
    }
    return;
  }
  if (result->finished && !result->repeated) {
    publish(*result->finished);
  }
}

void AmiCallTracker::OnEvent(const AmiMessage& event) {
  const std::string name = event.Get("Event");
  std::string linkedid = event.Get("Linkedid");
  if (linkedid.empty()) {
    // Transfers name both sides' ids; the call that goes on is the transferee's.
    linkedid = event.Get("TransfereeLinkedid");
  }
  if (linkedid.empty() && name == "Cdr") {
    // cdr_manager's records carry the first channel's UniqueID, which is the Linkedid.
    linkedid = event.Get("UniqueID");
  }
  if (name.empty() || linkedid.empty()) {
    return;  // responses, and events about something else than a channel (unknown: ignored)
  }
  if (listing_ && !calls_.contains(linkedid) &&
      !(name == "Newchannel" && event.Get("Uniqueid") == linkedid)) {
    // Perhaps a call Reconcile is about to take up: applied once it has.
    if (held_.size() < options_.max_calls) {
      held_.push_back(event);
    } else if (on_ignored) {
      on_ignored("ami_listing_backlog");
    }
    return;
  }
  // Reported only where the call takes its time from the event (its first channel's start, its
  // last channel's end), not for every event of every channel.
  std::map<std::string, std::string> dropped;
  Clock::time_point at = EventTime(event, &dropped);
  if (name == "Newchannel") {
    if (event.Get("Uniqueid") != linkedid) {
      // Another leg of a call: of one followed, it is one of its channels; of one not followed
      // (begun before we listened and not taken up), nothing, so that no entry grows past the
      // bound without its first channel.
      if (auto known = calls_.find(linkedid); known != calls_.end()) {
        known->second.channels.insert(event.Get("Uniqueid"));
        known->second.seen = at;
      }
      return;
    }
    if (calls_.contains(linkedid)) {
      return;  // its first channel again
    }
    if (!calls_.empty() && calls_.size() >= options_.max_calls) {
      // Bounded: the call heard of least recently is settled from what is known (chosen before
      // the new call is added, so never the new call itself).
      auto oldest = std::min_element(
          calls_.begin(), calls_.end(),
          [](const auto& a, const auto& b) { return a.second.seen < b.second.seen; });
      if (auto finished = assembler_->Abandon("asterisk", oldest->first, at)) {
        publish_(*finished);
      }
      calls_.erase(oldest);
    }
    Tracked& call = calls_[linkedid];
    call.channels.insert(linkedid);
    call.seen = at;
    Begin(linkedid, call, event, at, dropped);
    return;
  }
  if (name == "Hangup") {
    // A channel bridged into another call hangs up under that call's Linkedid (an attended
    // transfer to an outside number: Asterisk gives the consultation's channels the
    // transferee's); it is still its own call's, which ends with it instead of staying open
    // until its timeout. Looked for only when its Linkedid's call does not hold it.
    const std::string uniqueid = event.Get("Uniqueid");
    if (auto own = calls_.find(linkedid);
        own == calls_.end() || !own->second.channels.contains(uniqueid)) {
      auto holder = std::find_if(calls_.begin(), calls_.end(), [&](const auto& entry) {
        return entry.second.channels.contains(uniqueid);
      });
      if (holder != calls_.end()) {
        linkedid = holder->first;
      }
    }
  }
  auto it = calls_.find(linkedid);
  if (it == calls_.end()) {
    return;  // a call that began before we were connected, not listed or settled by Reconcile
  }
  Tracked& call = it->second;
  call.seen = at;
  if (name == "DialBegin") {
    call.channels.insert(event.Get("DestUniqueid"));
    if (call.internal) return;
    CallUpdate update;
    update.state = State::kRinging;
    update.attempts = 1;
    Apply(linkedid, std::move(update));
  } else if (name == "DialEnd") {
    std::string status = absl::AsciiStrToUpper(event.Get("DialStatus"));
    call.last_dial_status = status;
    if (call.internal || status != "ANSWER") return;
    std::string who = event.Get("DestCallerIDNum");
    if (who.empty() || who == "<unknown>") who = event.Get("DestExten");
    CallUpdate update;
    update.state = State::kAnswered;
    update.answered_at = at;
    if (!call.answered) {
      call.answered = true;
      call.first_answerer = who;
      if (!call.outbound) {
        // Inbound: who picked up is our operator. Outbound: it is the customer; the operator
        // is the extension that dialled, known since Newchannel.
        update.extension = who;
        update.operator_name = who;
      }
    } else if (who != call.first_answerer) {
      update.transferred_to = who;  // answered again elsewhere: the call was passed on
      if (!call.outbound) {
        // Whoever holds the call last talked to the customer last: credited as the operator.
        update.extension = who;
        update.operator_name = who;
      }
    }
    Apply(linkedid, std::move(update));
  } else if (name == "Newexten") {
    if (absl::EqualsIgnoreCase(event.Get("Application"), "VoiceMail") && !call.answered) {
      call.voicemail = true;
    }
  } else if (name == "QueueCallerAbandon") {
    if (!call.answered) {
      call.abandoned = true;  // left the queue before any agent took the call
    }
  } else if (name == "BlindTransfer" || name == "AttendedTransfer") {
    if (call.internal) return;
    CallUpdate update;
    update.state = State::kAnswered;
    if (name == "AttendedTransfer") {
      // The transferer consulted the target first: the target is on the line from now on.
      std::string target = event.Get("TransferTargetCallerIDNum");
      if (target.empty() || target == "<unknown>")
        target = event.Get("SecondTransfererCallerIDNum");
      update.transferred_to = target;
      if (!call.outbound && IsExtension(target)) {
        update.extension = target;
        update.operator_name = target;
      }
    } else {
      // Blind: the target is only rung; it becomes the operator when it answers (DialEnd,
      // BridgeEnter).
      update.transferred_to = event.Get("Extension");
    }
    Apply(linkedid, std::move(update));
  } else if (name == "BridgeEnter") {
    // A channel of ours joining the call's bridge (after a transfer without a Dial of its own,
    // a queue member): it holds the call now.
    std::string who = event.Get("CallerIDNum");
    if (call.internal || call.outbound || event.Get("Uniqueid") == linkedid || !IsExtension(who)) {
      return;
    }
    CallUpdate update;
    update.state = State::kAnswered;
    update.answered_at = at;
    if (!call.answered) {
      call.answered = true;
      call.first_answerer = who;
    } else if (who != call.first_answerer) {
      update.transferred_to = who;
    }
    update.extension = who;
    update.operator_name = who;
    Apply(linkedid, std::move(update));
  } else if (name == "Cdr") {
    // Only when cdr_manager is on, and usually after the last Hangup (then the call is already
    // settled and this changes nothing): fills in what the channel events did not say.
    if (call.internal) return;
    CallUpdate update;
    update.state = State::kRinging;
    std::string disposition = absl::AsciiStrToUpper(event.Get("Disposition"));
    // ANSWERED says the caller's channel was answered, by a person or by an application
    // (VoiceMail(), Queue(), an IVR's Answer()). The channel events tell which: a call they
    // followed from its start is answered only if they said so, and the Cdr then gives its
    // talk time. Only a call that lived through a reconnect (its DialEnd may be lost) takes
    // the Cdr's word, and only when its last application was a Dial and nothing said voicemail
    // or an abandoned queue.
    const std::string application = event.Get("LastApplication");
    const bool by_dial = application.empty() || absl::EqualsIgnoreCase(application, "Dial");
    const bool answered =
        disposition == "ANSWERED" &&
        (call.answered || (call.gap && by_dial && !call.voicemail && !call.abandoned));
    int32_t billable = 0;
    if (answered && absl::SimpleAtoi(event.Get("BillableSeconds"), &billable)) {
      update.duration_seconds = billable;
      update.answered = true;
      call.answered = true;
    }
    // cdr_manager writes its times as "2026-11-30 09:15:00" in the PBX's local time; an
    // unreadable one is left out (the channel events' times stand).
    const LocalTimes local{.zone = options_.time_zone, .now = now_()};
    std::map<std::string, std::string> unreadable;
    auto cdr_time = [&](const char* field) -> std::optional<Clock::time_point> {
      std::string text = event.Get(field);
      if (text.empty()) {
        return std::nullopt;
      }
      std::optional<Clock::time_point> time = ParseTime(text, local);
      if (!time) {
        unreadable[field] = "no local time (YYYY-MM-DD HH:MM:SS) from 1970 to 2262: left out";
      }
      return time;
    };
    update.started_at = cdr_time("StartTime");
    update.ended_at = cdr_time("EndTime");
    if (answered) {
      update.answered_at = cdr_time("AnswerTime");  // an answer time alone makes a call answered
    }
    ReportDropped(linkedid, unreadable);
    Apply(linkedid, std::move(update));
  } else if (name == "Hangup") {
    call.channels.erase(event.Get("Uniqueid"));
    call.hangup_cause = event.Get("Cause-txt");
    if (call.channels.empty()) {
      if (!call.internal) {
        ReportDropped(linkedid, dropped);
      }
      Settle(linkedid, call, at);
      calls_.erase(it);
    }
  }
}

void AmiCallTracker::Settle(const std::string& linkedid, Tracked& call, Clock::time_point at) {
  if (call.internal) {
    return;
  }
  CallUpdate update;
  update.ended_at = at;
  update.provider_status =
      call.last_dial_status.empty() ? call.hangup_cause : call.last_dial_status;
  if (call.answered) {
    update.state = State::kEnded;
    update.answered = true;
  } else if (call.voicemail) {
    update.state = State::kVoicemail;
  } else if (call.last_dial_status == "BUSY") {
    update.state = State::kBusy;
  } else if (call.last_dial_status == "CHANUNAVAIL" || call.last_dial_status == "CONGESTION") {
    update.state = State::kFailed;
  } else {
    update.state = State::kMissed;  // NOANSWER, CANCEL (the caller gave up), no dial at all
  }
  Apply(linkedid, std::move(update));
}

void AmiCallTracker::BeginListing() {
  // Events held by a listing the connection did not complete are older than this listing: the
  // calls are taken up as it lists them now.
  held_.clear();
  listing_ = true;
}

void AmiCallTracker::Reconcile(const std::set<std::string>& live,
                               const std::vector<AmiMessage>& listed) {
  for (auto it = calls_.begin(); it != calls_.end();) {
    Tracked& call = it->second;
    for (auto channel = call.channels.begin(); channel != call.channels.end();) {
      channel = live.count(*channel) ? std::next(channel) : call.channels.erase(channel);
    }
    if (!call.channels.empty()) {
      call.gap = true;  // still up, but what happened while we were away is unknown
      ++it;
      continue;
    }
    // Hung up while we were away: the end is known only to have happened.
    if (!call.internal) {
      if (auto finished = assembler_->Abandon("asterisk", it->first, now_())) {
        // Its outcome is what the states seen before the cut say; crm-core says so on the
        // activity. Counted and logged: a PBX link that drops often loses talk times.
        spdlog::warn(
            "ami: call {} ended while the connection was down; published as {} without its end "
            "(incomplete: talk time unknown)",
            it->first, CallEvent::Outcome_Name(finished->call.outcome()));
        if (on_incomplete) {
          on_incomplete();
        }
        publish_(*finished);
      }
    }
    it = calls_.erase(it);
  }
  // Calls that began while nobody listened (the connection down, the service not started): no
  // Newchannel came, and AMI cannot replay it. What CoreShowChannels lists of a call's first
  // channel begins it as its Newchannel would have, with all its channels listed; it is then
  // followed as any call. A call whose first channel is not listed (the caller is gone) says
  // nobody's number: it is left.
  std::map<std::string, std::set<std::string>> begun;  // Linkedid → its channels listed
  for (const AmiMessage& channel : listed) {
    std::string linkedid = channel.Get("Linkedid");
    if (!linkedid.empty() && !calls_.contains(linkedid)) {
      begun[linkedid].insert(channel.Get("Uniqueid"));
    }
  }
  size_t refused = 0;
  for (const AmiMessage& channel : listed) {
    const std::string linkedid = channel.Get("Linkedid");
    auto channels = begun.find(linkedid);
    if (channels == begun.end() || channel.Get("Uniqueid") != linkedid) {
      continue;  // a known call's channel, or another than the call's first
    }
    if (calls_.size() >= options_.max_calls) {
      // Bounded: the calls followed since their Newchannel are not settled early to make room
      // for one known only from here.
      ++refused;
      if (on_ignored) {
        on_ignored("ami_calls_cap");
      }
      begun.erase(channels);
      continue;
    }
    std::map<std::string, std::string> dropped;
    const Clock::time_point listed_at = EventTime(channel, &dropped);
    Clock::time_point started = listed_at;
    if (std::string duration = channel.Get("Duration"); !duration.empty()) {
      std::optional<std::chrono::seconds> age = ChannelAge(duration);
      if (age && *age <= listed_at.time_since_epoch()) {
        started -= *age;
      } else {
        dropped["Duration"] = "no HH:MM:SS since 1970: the listing's time used";
      }
    }
    // The channel bridged with the first one: who is on the line with the caller (or with the
    // extension that called out), when the call is in conversation.
    const AmiMessage* bridged = nullptr;
    if (const std::string bridge = channel.Get("BridgeId"); !bridge.empty()) {
      for (const AmiMessage& other : listed) {
        if (other.Get("Linkedid") == linkedid && other.Get("Uniqueid") != linkedid &&
            other.Get("BridgeId") == bridge) {
          bridged = &other;
          break;
        }
      }
    }
    // A listed channel's Exten is where it is in the dialplan now, not the number it dialled: an
    // extension calling out sits in the dial-out macro at "s". The party it is bridged with, or
    // its connected line, is then the number called.
    AmiMessage first = channel;
    if (IsExtension(first.Get("CallerIDNum"))) {
      const std::string exten = first.Get("Exten");
      std::string callee = bridged != nullptr ? bridged->Get("CallerIDNum") : "";
      if (callee.empty() || callee == "<unknown>") callee = first.Get("ConnectedLineNum");
      if ((exten.empty() || exten == "s") && !callee.empty() && callee != "<unknown>") {
        first.fields.emplace(first.fields.begin(), "Exten", callee);  // Get reads the first
      }
    } else if (first.Get("Exten") == "s") {
      first.fields.emplace(first.fields.begin(), "Exten", "");  // an IVR's, not the line's
    }
    Tracked& call = calls_[linkedid];
    call.channels = std::move(channels->second);
    begun.erase(channels);
    call.seen = listed_at;
    call.gap = true;
    call.taken_up = true;
    Begin(linkedid, call, first, started, dropped);
    if (!call.internal && bridged != nullptr) {
      // In conversation when listed: answered (no DialEnd ANSWER will come), by the bridged
      // party, as DialEnd would have said. Not bridged (ringing, in an IVR, in a queue): the
      // events that follow say.
      std::string who = bridged->Get("CallerIDNum");
      if (who.empty() || who == "<unknown>") who = bridged->Get("Exten");
      CallUpdate update;
      update.state = State::kAnswered;
      update.answered = true;
      call.answered = true;
      call.first_answerer = who;
      if (!call.outbound) {
        update.extension = who;
        update.operator_name = who;
      }
      Apply(linkedid, std::move(update));
    }
    if (!call.internal) {
      spdlog::info(
          "ami: call {} began while no connection was up; taken up from CoreShowChannels "
          "(published incomplete)",
          linkedid);
    }
  }
  if (refused > 0) {
    spdlog::warn(
        "ami: {} calls that began while no connection was up are not followed: {} calls are "
        "tracked already (the most); their events are ignored",
        refused, calls_.size());
  }
  listing_ = false;
  std::vector<AmiMessage> held;
  held.swap(held_);
  for (const AmiMessage& event : held) {
    OnEvent(event);
  }
}

// ---------------------------------------------------------------------------------------------
// Connection

AmiClient::AmiClient(AmiOptions options, AmiCallTracker* tracker, metrics::Registry* registry)
    : options_(std::move(options)), tracker_(tracker) {
  reconnects_ = &registry
                     ->AddCounter("telephony_ami_reconnects_total",
                                  "AMI connections lost or refused, each followed by a reconnect.")
                     .WithLabels({});
  events_ = &registry->AddCounter("telephony_ami_events_total", "AMI events read.").WithLabels({});
  protocol_errors_ = &registry
                          ->AddCounter("telephony_ami_protocol_errors_total",
                                       "AMI connections dropped for a malformed or oversized "
                                       "message, or a refused login.")
                          .WithLabels({});
  registry->AddCallbackGauge("telephony_ami_connected", "1 while logged in to AMI.",
                             [this] { return connected_ ? 1.0 : 0.0; });
}

AmiClient::~AmiClient() { Stop(); }

void AmiClient::Start() {
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void AmiClient::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (socket_fd_ >= 0) {
      ::shutdown(socket_fd_, SHUT_RDWR);  // unblocks the connection thread's read
    }
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void AmiClient::Run() {
  std::chrono::milliseconds backoff = options_.reconnect_min;
  while (!stopping_) {
    uint64_t before = logins_;
    absl::Status status = Session();
    connected_ = false;
    if (stopping_) {
      break;
    }
    reconnects_->Increment();
    if (logins_ != before) {
      backoff = options_.reconnect_min;  // it worked for a while: start over quickly
    }
    spdlog::warn("ami: {}:{}: {}; reconnecting in {} ms", options_.host, options_.port,
                 status.ToString(), backoff.count());
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, backoff, [this] { return stopping_.load(); });
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

absl::Status AmiClient::Session() {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  asio::error_code error;
  asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port), error);
  if (error) {
    return absl::UnavailableError("resolve: " + error.message());
  }
  asio::connect(socket, endpoints, error);
  if (error) {
    return absl::UnavailableError("connect: " + error.message());
  }
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      return absl::OkStatus();
    }
    socket_fd_ = socket.native_handle();
  }
  struct FdGuard {
    AmiClient* client;
    ~FdGuard() {
      std::lock_guard lock(client->mutex_);
      client->socket_fd_ = -1;
    }
  } guard{this};
  // Reads wake up at least every ping interval, so a silent peer is noticed.
  timeval timeout{};
  timeout.tv_sec = options_.ping_interval.count() / 1000;
  timeout.tv_usec = (options_.ping_interval.count() % 1000) * 1000;
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  auto send = [&](const std::string& action) -> absl::Status {
    asio::write(socket, asio::buffer(action), error);
    return error ? absl::UnavailableError("write: " + error.message()) : absl::OkStatus();
  };
  AmiFramer framer(options_.max_frame_bytes);
  std::vector<AmiMessage> messages;
  enum class Phase { kBanner, kLogin, kListing, kEvents } phase = Phase::kBanner;
  std::set<std::string> live;
  std::vector<AmiMessage> listed;
  bool ping_outstanding = false;
  char buffer[16384];
  while (!stopping_) {
    size_t read = socket.read_some(asio::buffer(buffer), error);
    if (error == asio::error::would_block || error == asio::error::try_again) {
      if (ping_outstanding) {
        return absl::DeadlineExceededError("no answer to Ping");
      }
      ping_outstanding = true;
      if (auto status = send("Action: Ping\r\nActionID: leadflow-ping\r\n\r\n"); !status.ok()) {
        return status;
      }
      continue;
    }
    if (error) {
      return stopping_ ? absl::OkStatus() : absl::UnavailableError("read: " + error.message());
    }
    ping_outstanding = false;
    messages.clear();
    if (auto status = framer.Feed(std::string_view(buffer, read), &messages); !status.ok()) {
      protocol_errors_->Increment();
      return status;
    }
    if (phase == Phase::kBanner && framer.banner()) {
      spdlog::info("ami: connected to {}", *framer.banner());
      phase = Phase::kLogin;
      if (auto status = send(absl::StrCat(
              "Action: Login\r\nActionID: leadflow-login\r\nUsername: ", options_.username,
              "\r\nSecret: ", options_.secret, "\r\nEvents: call,cdr,dialplan\r\n\r\n"));
          !status.ok()) {
        return status;
      }
    }
    for (const AmiMessage& message : messages) {
      std::string action_id = message.Get("ActionID");
      if (phase == Phase::kLogin && message.Has("Response") && action_id == "leadflow-login") {
        if (message.Get("Response") != "Success") {
          protocol_errors_->Increment();
          return absl::PermissionDeniedError("login refused: " + message.Get("Message"));
        }
        ++logins_;
        connected_ = true;
        phase = Phase::kListing;
        live.clear();
        listed.clear();
        tracker_->BeginListing();
        if (auto status = send("Action: CoreShowChannels\r\nActionID: leadflow-channels\r\n\r\n");
            !status.ok()) {
          return status;
        }
        continue;
      }
      if (phase == Phase::kListing && action_id == "leadflow-channels") {
        std::string event = message.Get("Event");
        if (event == "CoreShowChannel") {
          live.insert(message.Get("Uniqueid"));
          listed.push_back(message);
        } else if (event == "CoreShowChannelsComplete") {
          tracker_->Reconcile(live, listed);
          listed.clear();  // not held for the rest of the session
          phase = Phase::kEvents;
        } else if (message.Get("Response") == "Error") {
          return absl::UnavailableError("CoreShowChannels refused: " + message.Get("Message"));
        }
        continue;
      }
      if (message.Has("Event") && phase != Phase::kLogin) {
        if (phase == Phase::kListing) {
          // Born after the listing was taken: alive, whatever Reconcile is told.
          live.insert(message.Get("Uniqueid"));
          live.insert(message.Get("DestUniqueid"));
        }
        events_->Increment();
        tracker_->OnEvent(message);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace leadflow::telephony
