// A web form submission: a lead with an open "process the request" task.
#include "absl/strings/str_cat.h"
#include "crm-core/inbound/channels/channels.h"

namespace leadflow::crm {

void FromWebForm(const events::v1::InboundEvent& event, ContactAttempt& attempt) {
  const events::v1::WebFormSubmission& form = event.web_form();
  const std::string need = Need(form.message());
  attempt.comments = form.message();
  attempt.title_parts["need"] = need;
  attempt.title_parts["form"] = form.form_id();
  attempt.fallback_title = absl::StrCat("Web form request from ", event.identities(0).value());
  attempt.activity = {
      .type = "TASK",
      .subject = "Process the request",
      .repeat_subject = need.empty() ? "Repeated request" : "Repeated request: " + need,
      .description = absl::StrCat(form.message(), form.message().empty() ? "" : "\n\n",
                                  "Form: ", form.form_id()),
      .completed = false,
      .has_deadline = true};
  attempt.source_id = "WEB_FORM";
  auto put = [&](const std::string& key, const std::string& value) {
    if (!value.empty()) {
      attempt.source_details[key] = value;
    }
  };
  put("reference", form.form_id());
  put("page_url", form.page_url());
  put("referrer", form.referrer());
  put("utm_source", form.utm().source());
  put("utm_medium", form.utm().medium());
  put("utm_campaign", form.utm().campaign());
  put("utm_content", form.utm().content());
  put("utm_term", form.utm().term());
  for (const auto& [name, value] : form.custom_fields()) {
    attempt.source_details["field:" + name] = value;
  }
}

}  // namespace leadflow::crm
