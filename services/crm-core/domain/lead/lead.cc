#include "crm-core/domain/lead/lead.h"

#include "crm-core/domain/attempt/contact_attempt.h"
#include "crm-core/domain/common/neutral_text.h"
#include "crm-core/domain/lead/title.h"

namespace leadflow::crm {

std::string LeadTitle(const std::string& title_template, const ContactAttempt& attempt) {
  // Its parts are neutral already (inbound/channels/); this cuts a long one to the API's limit.
  std::string title = domain::NeutralizeText(RenderTitle(title_template, attempt.title_parts));
  if (!title.empty()) {
    return title;
  }
  // Nothing the template names was given: say where it came from and who.
  return attempt.fallback_title;
}

}  // namespace leadflow::crm
