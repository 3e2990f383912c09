// Fuzz target: telephony-ingest's AMI framing and call assembly. The input is cut into reads
// at the positions its first bytes choose, fed to the framer, and every message to the call
// tracker (CoreShowChannel events reconciling it at each CoreShowChannelsComplete, as the
// client does). Invariants: the same stream gives the same messages whatever the chunking; the
// framer never holds more than its limit; a reconciliation takes up no call past max_calls;
// every published call has an outcome and an id.

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz.h"
#include "telephony-ingest/ami.h"

namespace {

using leadflow::telephony::AmiFramer;
using leadflow::telephony::AmiMessage;

bool Frame(std::string_view stream, const std::vector<size_t>& cuts,
           std::vector<AmiMessage>* messages) {
  AmiFramer framer(4096);
  size_t start = 0;
  for (size_t cut : cuts) {
    cut = std::min(cut, stream.size());
    if (cut < start) continue;
    if (!framer.Feed(stream.substr(start, cut - start), messages).ok()) return false;
    start = cut;
  }
  return framer.Feed(stream.substr(start), messages).ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leadflow;
  std::string_view input = fuzz::AsText(data, size);
  std::vector<size_t> cuts;
  size_t position = 0;
  for (size_t i = 0; i < std::min<size_t>(4, input.size()); ++i) {
    position += static_cast<unsigned char>(input[i]);
    cuts.push_back(position);
  }
  std::string stream = "Asterisk Call Manager/9.0.0\r\n" + std::string(input);
  std::vector<AmiMessage> whole;
  std::vector<AmiMessage> chunked;
  bool whole_ok = Frame(stream, {}, &whole);
  bool chunked_ok = Frame(stream, cuts, &chunked);
  if (whole_ok && chunked_ok) {
    fuzz::Check(whole.size() == chunked.size(), "chunking changed the messages");
    for (size_t i = 0; i < whole.size(); ++i) {
      fuzz::Check(whole[i].fields == chunked[i].fields, "chunking changed a message");
    }
  }
  telephony::CallAssembler calls({});
  telephony::AmiOptions options;
  options.max_calls = 8;
  int published = 0;
  telephony::AmiCallTracker tracker(options, &calls, [&](const telephony::FinishedCall& call) {
    fuzz::Check(!call.event_id.empty(), "a call without event id");
    fuzz::Check(call.call.outcome() != events::v1::CallEvent::OUTCOME_UNSPECIFIED,
                "a call without outcome");
    ++published;
  });
  std::set<std::string> live;
  std::vector<AmiMessage> listed;
  for (const AmiMessage& message : whole) {
    const std::string event = message.Get("Event");
    if (event == "CoreShowChannel") {
      if (listed.empty()) {
        tracker.BeginListing();  // as the client, when it sends CoreShowChannels
      }
      live.insert(message.Get("Uniqueid"));
      listed.push_back(message);
    } else if (event == "CoreShowChannelsComplete") {
      const size_t before = tracker.calls();
      tracker.Reconcile(live, listed);
      fuzz::Check(tracker.calls() <= std::max(before, options.max_calls),
                  "calls taken up past max_calls");
      live.clear();
      listed.clear();
    } else {
      tracker.OnEvent(message);
    }
  }
  tracker.Reconcile({});
  fuzz::Check(tracker.calls() == 0, "calls left after reconciling with no live channel");
  return 0;
}
