// http-baseline: the HTTP server the ingestion services run on (leadflow::http, same limits,
// threads and routes), answering webform-ingest's submission route and telephony-ingest's
// call-event route with a constant 202: the baseline of bench (c) and (d).
//   http-baseline PORT [THREADS]

#include <cstdlib>
#include <string>

#include "http/server.h"
#include "metrics/metrics.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    return 2;
  }
  leadflow::metrics::Registry registry;
  leadflow::http::ServerOptions options;
  options.port = std::atoi(argv[1]);
  options.threads = argc > 2 ? std::atoi(argv[2]) : 2;
  options.max_body_bytes = 64 * 1024;
  options.handle_signals = true;
  leadflow::http::Server server(options, &registry);
  server.Route("POST", "/v1/forms/:form_id/submissions",
               [](const leadflow::http::Request&, leadflow::http::Responder responder) {
                 responder.Send(leadflow::http::Response::Json(202, R"({"event_id":"x"})"));
               });
  server.Route("POST", "/v1/calls/events",
               [](const leadflow::http::Request&, leadflow::http::Responder responder) {
                 responder.Send(leadflow::http::Response::Json(202, R"({"event_id":"x"})"));
               });
  return server.Run().ok() ? 0 : 1;
}
