#pragma once

// The bounds put on what a caller or an event gives a record, one constant per kind of field,
// shared by every service that takes that kind (the table in docs/api.md, "Limits"). The inbound
// path never refuses an event for a length: it cuts what it stores to these (NeutralizeText), so
// that any record it writes can be saved back unchanged over the API.

#include <cstddef>

namespace leadflow::crm::domain {

/// Free text: titles, subjects, comments, descriptions (CheckText).
inline constexpr size_t kMaxTextBytes = 10000;
/// A customer's name or short label: a lead's first_name, last_name, company_name and city; a
/// contact's first_name, last_name, full_name and position; a company's name, industry and
/// website; an email's From display name and attachment names.
inline constexpr size_t kMaxNameBytes = 500;
/// A name the business configures: pipeline, stage and status names, users' names, the role of a
/// contact in a company, the last-name placeholder.
inline constexpr size_t kMaxLabelBytes = 200;
/// Phones, emails and messenger ids a request gives one lead, contact or company, per kind.
inline constexpr int kMaxIdentitiesPerKind = 50;
/// One phone, email or messenger id as given (an email address: 64 + 1 + 255), over the API or
/// in an inbound event.
inline constexpr size_t kMaxIdentityBytes = 320;
/// Contacts a request links to one deal (CreateDeal's contact_ids).
inline constexpr int kMaxDealContacts = 100;

}  // namespace leadflow::crm::domain
