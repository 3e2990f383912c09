// Protects: ConvertLead plans exactly what was asked (each of the six produce options, existing
// records used instead of new ones), the contact inherits the lead's identities, the lead's
// activities follow it, the lead becomes CONVERTED, and a converted or closed lead or an
// impossible request is refused with the documented code.

#include "crm-core/domain/conversion/conversion.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace leadflow::crm::domain {
namespace {

LeadToConvert Lead() {
  LeadToConvert lead;
  lead.id = 12;
  lead.title = "Paris – Marie – quote";
  lead.status_id = "IN_PROCESS";
  lead.first_name = "Marie";
  lead.last_name = "";
  lead.company_name = "Curie SARL";
  lead.source_id = "WEB_FORM";
  lead.responsible_user_id = 4;
  lead.identities = {{IdentityKind::kPhone, "+33612345678"},
                     {IdentityKind::kEmail, "marie@curie.fr"}};
  return lead;
}

ConversionOptions Options(Produce produce) {
  ConversionOptions options;
  options.produce = produce;
  options.pipeline_id = 1;
  options.first_stage_id = "NEW";
  options.success_status_id = "CONVERTED";
  return options;
}

bool HasHistory(const ConversionPlan& plan, Slot subject, std::string_view kind, Slot related) {
  for (const PlannedHistory& h : plan.history) {
    if (h.subject == subject && h.kind == kind && h.related == related) return true;
  }
  return false;
}

TEST(PlanConversion, ContactCompanyDeal) {
  absl::StatusOr<ConversionPlan> plan =
      PlanConversion(Lead(), Options(Produce::kContactCompanyDeal));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(plan->create_contact);
  EXPECT_EQ(plan->create_contact->first_name, "Marie");
  EXPECT_EQ(plan->create_contact->last_name, "Unknown");
  EXPECT_TRUE(plan->create_contact->last_is_placeholder);
  ASSERT_TRUE(plan->create_company);
  EXPECT_EQ(plan->create_company->name, "Curie SARL");
  ASSERT_TRUE(plan->create_deal);
  EXPECT_EQ(plan->create_deal->title, "Paris – Marie – quote");
  EXPECT_EQ(plan->create_deal->stage_id, "NEW");
  EXPECT_EQ(plan->contact_identities, Lead().identities);
  EXPECT_TRUE(plan->company_identities.empty());  // the person's identities stay the person's
  EXPECT_TRUE(plan->link_contact_company && plan->link_deal_contact && plan->link_deal_company);
  EXPECT_EQ(plan->activities_to, Slot::kDeal);
  EXPECT_EQ(plan->lead_status_id, "CONVERTED");
  EXPECT_EQ(plan->responsible_user_id, 4);
  EXPECT_EQ(plan->source_id, "WEB_FORM");
  EXPECT_TRUE(HasHistory(*plan, Slot::kLead, "CONVERTED", Slot::kDeal));
  // The deal's one CREATED entry is the store's (DealRepository::Insert, related: the lead).
  EXPECT_FALSE(HasHistory(*plan, Slot::kDeal, "CREATED", Slot::kLead));
  EXPECT_TRUE(HasHistory(*plan, Slot::kContact, "CREATED", Slot::kLead));
  EXPECT_TRUE(HasHistory(*plan, Slot::kDeal, "LINKED", Slot::kCompany));
  EXPECT_TRUE(HasHistory(*plan, Slot::kCompany, "LINKED", Slot::kContact));
}

TEST(PlanConversion, ActivitiesFollowTheLead) {
  EXPECT_EQ(PlanConversion(Lead(), Options(Produce::kContactCompany))->activities_to,
            Slot::kContact);
  EXPECT_EQ(PlanConversion(Lead(), Options(Produce::kContact))->activities_to, Slot::kContact);
  EXPECT_EQ(PlanConversion(Lead(), Options(Produce::kCompany))->activities_to, Slot::kCompany);
  EXPECT_EQ(PlanConversion(Lead(), Options(Produce::kContactDeal))->activities_to, Slot::kDeal);
}

TEST(PlanConversion, CompanyAloneTakesTheIdentities) {
  absl::StatusOr<ConversionPlan> plan = PlanConversion(Lead(), Options(Produce::kCompany));
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->create_contact);
  EXPECT_FALSE(plan->create_deal);
  EXPECT_EQ(plan->company_identities, Lead().identities);
  EXPECT_FALSE(plan->link_contact_company);
}

TEST(PlanConversion, ExistingRecordsInsteadOfNewOnes) {
  ConversionOptions options = Options(Produce::kContactCompanyDeal);
  options.contact_id = 5;
  options.company_id = 7;
  absl::StatusOr<ConversionPlan> plan = PlanConversion(Lead(), options);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->create_contact);
  EXPECT_FALSE(plan->create_company);
  EXPECT_EQ(plan->use_contact_id, 5);
  EXPECT_EQ(plan->use_company_id, 7);
  EXPECT_EQ(plan->contact_identities, Lead().identities);  // the existing contact gets them
  EXPECT_TRUE(plan->create_deal);
  EXPECT_FALSE(HasHistory(*plan, Slot::kContact, "CREATED", Slot::kLead));
  EXPECT_TRUE(HasHistory(*plan, Slot::kLead, "CONVERTED", Slot::kContact));
}

TEST(PlanConversion, DealOnlyNeedsAContactOrCompany) {
  absl::Status s = PlanConversion(Lead(), Options(Produce::kDeal)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("a deal needs a contact or a company"),
            std::string::npos);
  ConversionOptions options = Options(Produce::kDeal);
  options.company_id = 7;
  absl::StatusOr<ConversionPlan> plan = PlanConversion(Lead(), options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->create_deal);
  EXPECT_TRUE(plan->link_deal_company);
  EXPECT_FALSE(plan->link_deal_contact);
  EXPECT_EQ(plan->use_company_id, 7);
}

TEST(PlanConversion, ExistingIdOutsideProduceIsALink) {
  ConversionOptions options = Options(Produce::kCompany);
  options.contact_id = 5;
  absl::StatusOr<ConversionPlan> plan = PlanConversion(Lead(), options);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->create_company);
  EXPECT_EQ(plan->use_contact_id, 5);
  EXPECT_TRUE(plan->link_contact_company);
  EXPECT_TRUE(plan->company_identities.empty());
}

TEST(PlanConversion, AlreadyConvertedNamesWhatItProduced) {
  LeadToConvert lead = Lead();
  lead.status_id = "CONVERTED";
  lead.status_semantics = Semantics::kSuccess;
  lead.produced = Produced{.contact_id = 5, .company_id = 7, .deal_id = 9};
  absl::Status s = PlanConversion(lead, Options(Produce::kContact)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "lead 12 is already converted into contact 5, company 7, deal 9");
}

TEST(PlanConversion, ClosedLeadRefused) {
  LeadToConvert lead = Lead();
  lead.status_id = "JUNK";
  lead.status_semantics = Semantics::kFailure;
  EXPECT_EQ(PlanConversion(lead, Options(Produce::kContact)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Protects: a lead is known converted by its status's semantics, not by the id CONVERTED: a
// business that calls its SUCCESS status otherwise gets the same refusal, and a conversion sets
// whichever status has SUCCESS semantics (none configured: refused, nothing planned).
TEST(PlanConversion, ConvertedIsTheSuccessSemanticsNotAnId) {
  LeadToConvert won = Lead();
  won.status_id = "WON_LEAD";
  won.status_semantics = Semantics::kSuccess;
  EXPECT_EQ(PlanConversion(won, Options(Produce::kContact)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  LeadToConvert open = Lead();
  open.status_id = "CONVERTED_BY_PHONE";  // a custom PROCESS status whose id says otherwise
  ConversionOptions options = Options(Produce::kContact);
  options.success_status_id = "WON_LEAD";
  absl::StatusOr<ConversionPlan> plan = PlanConversion(open, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->lead_status_id, "WON_LEAD");
  options.success_status_id = "";
  EXPECT_EQ(PlanConversion(open, options).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PlanConversion, BadOptions) {
  ConversionOptions pipeline_without_deal = Options(Produce::kContact);
  pipeline_without_deal.pipeline_requested = true;
  EXPECT_EQ(PlanConversion(Lead(), pipeline_without_deal).status().code(),
            absl::StatusCode::kInvalidArgument);
  ConversionOptions no_pipeline = Options(Produce::kContactDeal);
  no_pipeline.pipeline_id = 0;
  EXPECT_EQ(PlanConversion(Lead(), no_pipeline).status().code(),
            absl::StatusCode::kInvalidArgument);
  ConversionOptions bad_id = Options(Produce::kContact);
  bad_id.contact_id = -3;
  EXPECT_EQ(PlanConversion(Lead(), bad_id).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PlanConversion, NamelessLead) {
  LeadToConvert lead = Lead();
  lead.first_name = "";
  absl::StatusOr<ConversionPlan> plan = PlanConversion(lead, Options(Produce::kContactCompany));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->create_contact->first_name, "+33612345678");
  EXPECT_EQ(plan->create_contact->last_name, "Unknown");
  EXPECT_EQ(plan->create_company->name, "Curie SARL");
}

// Protects: a web form's lead holding the whole name in first_name (last name empty) gives a
// contact with the name split by the naming rule; the placeholder only for a single word; a
// given last name is kept.
TEST(PlanConversion, AWholeNameInFirstNameIsSplit) {
  struct Case {
    std::string first, last, want_first, want_last;
    bool placeholder;
  };
  for (const Case& c :
       std::vector<Case>{{"Jean Dupont", "", "Jean", "Dupont", false},
                         {"Jean-Pierre de la Tour", "  ", "Jean-Pierre", "de la Tour", false},
                         {"Marie", "", "Marie", "Inconnu", true},
                         {"Jean Paul", "Sartre", "Jean Paul", "Sartre", false}}) {
    LeadToConvert lead = Lead();
    lead.first_name = c.first;
    lead.last_name = c.last;
    ConversionOptions options = Options(Produce::kContactDeal);
    options.last_name_placeholder = "Inconnu";
    absl::StatusOr<ConversionPlan> plan = PlanConversion(lead, options);
    ASSERT_TRUE(plan.ok()) << plan.status();
    ASSERT_TRUE(plan->create_contact);
    EXPECT_EQ(plan->create_contact->first_name, c.want_first) << c.first;
    EXPECT_EQ(plan->create_contact->last_name, c.want_last) << c.first;
    EXPECT_EQ(plan->create_contact->last_is_placeholder, c.placeholder) << c.first;
  }
}

// Protects: a company is never named after the lead's title or the person: a lead without a
// company name asked for a new company is FAILED_PRECONDITION saying how to go on; with an
// existing company_id, or producing no company, it converts.
TEST(PlanConversion, NoCompanyNameNoNewCompany) {
  LeadToConvert lead = Lead();
  lead.company_name = "  ";
  lead.title = "Jean Dupont – Website form";
  for (Produce produce :
       {Produce::kContactCompanyDeal, Produce::kContactCompany, Produce::kCompany}) {
    absl::Status status = PlanConversion(lead, Options(produce)).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << ToString(produce);
    EXPECT_EQ(status.message(),
              "lead 12 has no company name to give the new company: set the lead's company_name "
              "(UpdateLead), give company_id, or convert without a company");
  }
  ConversionOptions existing = Options(Produce::kContactCompanyDeal);
  existing.company_id = 8;
  absl::StatusOr<ConversionPlan> plan = PlanConversion(lead, existing);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->create_company);
  EXPECT_EQ(plan->use_company_id, 8);
  EXPECT_TRUE(PlanConversion(lead, Options(Produce::kContactDeal)).ok());
}

TEST(Produce, NamesRoundTrip) {
  for (Produce produce :
       {Produce::kContactCompanyDeal, Produce::kContactCompany, Produce::kContactDeal,
        Produce::kContact, Produce::kCompany, Produce::kDeal}) {
    EXPECT_EQ(ParseProduce(ToString(produce)), produce);
  }
  EXPECT_EQ(ToString(Produce::kContactDeal), "CONTACT_DEAL");
  EXPECT_EQ(ParseProduce("EVERYTHING"), std::nullopt);
  EXPECT_EQ(ParseCrmMode(ToString(CrmMode::kSimple)), CrmMode::kSimple);
  EXPECT_EQ(ParseCrmMode("classic"), std::nullopt);
  EXPECT_EQ(ParseSemantics(ToString(Semantics::kFailure)), Semantics::kFailure);
}

}  // namespace
}  // namespace leadflow::crm::domain
