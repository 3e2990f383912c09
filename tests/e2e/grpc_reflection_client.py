"""A gRPC client that knows crm-core's API only from the server's reflection answer.

Protects: every crm-core service can be found and called by a client that has none of the
project's .proto files — only gRPC's reflection protocol (reflection.proto from Debian's
grpc-proto package, compiled by the test with protoc). The client lists the services, asks for
the file of each one, builds its descriptors from what the server sent (dependencies included,
asked for by file name when missing), and calls a representative method of every LeadFlow
service with the API key metadata, checking the answers. A service the server lists that this
script does not call fails the test, so a new service cannot be left unreachable unnoticed.

Run by grpc_reflection_e2e_test.sh:
  python3 grpc_reflection_client.py ADDRESS API_KEY GENERATED_DIR
"""

import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

sys.path.insert(0, sys.argv[3])
import reflection_pb2  # noqa: E402  (generated at test time from grpc-proto's reflection.proto)

REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
TIMEOUT = 10  # seconds, per call


class ReflectionClient:
    """Descriptors from the server's reflection answers only, and calls made with them."""

    def __init__(self, address, key):
        self.channel = grpc.insecure_channel(address)
        self.metadata = [("authorization", "Bearer " + key)]
        self.pool = descriptor_pool.DescriptorPool()
        self.factory = message_factory.MessageFactory(self.pool)
        self.files = {}  # name -> FileDescriptorProto, as the server sent them
        self.added = set()
        self.reflect = self.channel.stream_stream(
            REFLECTION,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )

    def ask(self, **request):
        answers = list(
            self.reflect(iter([reflection_pb2.ServerReflectionRequest(**request)]),
                         timeout=TIMEOUT))
        if len(answers) != 1:
            raise AssertionError(f"reflection answered {len(answers)} messages to {request}")
        answer = answers[0]
        if answer.HasField("error_response"):
            raise AssertionError(f"reflection refused {request}: "
                                 f"{answer.error_response.error_code} "
                                 f"{answer.error_response.error_message}")
        return answer

    def services(self):
        return [s.name for s in self.ask(list_services="").list_services_response.service]

    def _keep(self, answer):
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(raw)
            self.files.setdefault(file.name, file)

    def _add(self, name):
        if name in self.added:
            return
        if name not in self.files:
            self._keep(self.ask(file_by_filename=name))
        if name not in self.files:
            raise AssertionError(f"reflection did not send {name}")
        for dependency in self.files[name].dependency:
            self._add(dependency)
        self.pool.Add(self.files[name])
        self.added.add(name)

    def load(self, service):
        answer = self.ask(file_containing_symbol=service)
        self._keep(answer)
        first = descriptor_pb2.FileDescriptorProto.FromString(
            answer.file_descriptor_response.file_descriptor_proto[0])
        self._add(first.name)
        return self.pool.FindServiceByName(service)

    def message_class(self, descriptor):
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(descriptor)
        return self.factory.GetPrototype(descriptor)

    def call(self, service, method, request, metadata=None):
        """(status code, answer as a dict with the proto field names, error details)."""
        descriptor = self.pool.FindServiceByName(service).FindMethodByName(method)
        request_class = self.message_class(descriptor.input_type)
        answer_class = self.message_class(descriptor.output_type)
        stub = self.channel.unary_unary(
            f"/{service}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=answer_class.FromString,
        )
        message = json_format.ParseDict(request, request_class())
        try:
            answer = stub(message, timeout=TIMEOUT,
                          metadata=self.metadata if metadata is None else metadata)
        except grpc.RpcError as error:
            return error.code(), {}, error.details()
        return grpc.StatusCode.OK, json_format.MessageToDict(
            answer, preserving_proto_field_name=True), ""


failures = []
checks = 0


def check(name, condition, detail=""):
    global checks
    checks += 1
    if condition:
        print(f"ok: {name}")
    else:
        failures.append(name)
        print(f"FAILED: {name} {detail}")


def refused(client, name, service, method, request, code, message):
    """The call fails with `code` and its message starts with `message`."""
    got, _, details = client.call(service, method, request)
    check(name, got == code and details.startswith(message), f"{got} {details!r}")


def new_user_cases(client, crm, kept_contact):
    """Cases a new user tries that docs/api.md does not list, each once found wrong and fixed."""
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    refused(client, "CreateLead with a blank name and no title is refused", crm + "LeadService",
            "CreateLead", {"lead": {"first_name": "   ", "last_name": "  "}}, invalid,
            "a walk-in lead needs a title or a name")
    refused(client, "CreateLead with a blank title and no name is refused", crm + "LeadService",
            "CreateLead", {"lead": {"title": "  "}}, invalid,
            "a walk-in lead needs a title or a name")
    code, lead, details = client.call(crm + "LeadService", "CreateLead",
                                      {"lead": {"title": " ", "first_name": " Zoë "}})
    check("a blank title gives way to the name, without stray spaces",
          code == grpc.StatusCode.OK and lead.get("title") == "Visit – Zoë",
          f"{code} {details} {lead}")
    refused(client, "CreateDeal with a date not in the calendar names it", crm + "DealService",
            "CreateDeal", {"deal": {"title": "Kitchen", "expected_close_date": "2026-02-30"}},
            invalid, "expected_close_date 2026-02-30 is not a date of the calendar")
    refused(client, "a title template with a misspelt placeholder is refused",
            crm + "SettingsService", "UpdateSettings",
            {"settings": {"lead_title_template": "{city} – {nmae}"},
             "update_mask": "leadTitleTemplate"},
            invalid, "lead_title_template: unknown placeholder {nmae}")
    refused(client, "a second pipeline named alike is ALREADY_EXISTS, the name quoted",
            crm + "PipelineService", "CreatePipeline", {"pipeline": {"name": " sales "}},
            grpc.StatusCode.ALREADY_EXISTS, 'pipeline "sales" exists already')
    # A contact merged away, named as the existing contact of a conversion.
    code, folded, details = client.call(crm + "ContactService", "CreateContact", {
        "contact": {"full_name": "J.-P. de la Tour", "emails": ["jp.tour@example.com"]}})
    folded_id = int(folded.get("contact", {}).get("id", 0))
    code, _, details = client.call(crm + "ContactService", "MergeContacts",
                                   {"kept_id": kept_contact, "folded_ids": [folded_id]})
    check("MergeContacts folds the duplicate", code == grpc.StatusCode.OK, f"{code} {details}")
    code, lead, details = client.call(crm + "LeadService", "CreateLead", {
        "lead": {"first_name": "Jean-Pierre", "emails": ["jp.again@example.com"]}})
    refused(client, "ConvertLead onto a merged-away contact names the kept one",
            crm + "LeadService", "ConvertLead",
            {"lead_id": int(lead.get("id", 0)), "produce": "CONVERSION_PRODUCE_CONTACT",
             "contact_id": folded_id}, grpc.StatusCode.NOT_FOUND,
            f"contact {folded_id} not found: merged into contact {kept_contact}")


def main():
    address, key = sys.argv[1], sys.argv[2]
    client = ReflectionClient(address, key)
    crm = "leadflow.crm.v1."
    called = set()

    def ok(service, method, request):
        code, answer, details = client.call(crm + service, method, request)
        called.add(crm + service)
        check(f"{service}/{method} answers OK", code == grpc.StatusCode.OK,
              f"{code} {details}")
        return answer

    listed = client.services()
    check("reflection lists the health and reflection services",
          "grpc.health.v1.Health" in listed
          and "grpc.reflection.v1alpha.ServerReflection" in listed, str(listed))
    ours = sorted(s for s in listed if s.startswith(crm))
    check("reflection lists the CRM services", len(ours) >= 12, str(ours))
    for service in ours:
        descriptor = client.load(service)
        check(f"{service}: methods resolved from reflection", len(descriptor.methods) > 0)

    # Without the key: refused before anything runs.
    code, _, _ = client.call(crm + "LeadService", "ListLeads", {}, metadata=[])
    check("a call without the API key is UNAUTHENTICATED",
          code == grpc.StatusCode.UNAUTHENTICATED, str(code))

    user = ok("UserService", "CreateUser",
              {"user": {"name": "Ann Seller", "email": "ann@example.com"}})
    user_id = int(user.get("id", 0))
    check("CreateUser gives an id", user_id > 0, str(user))

    lead = ok("LeadService", "CreateLead", {"lead": {
        "first_name": "Jean-Pierre de la Tour", "phones": ["06 12 34 56 78"],
        "emails": ["JP@Example.com"], "comments": "Wants three offices fitted out",
        "responsible_user_id": user_id}})
    lead_id = int(lead.get("id", 0))
    check("CreateLead normalises the phone and the email",
          lead.get("phones") == ["+33612345678"] and lead.get("emails") == ["jp@example.com"],
          str(lead))
    got = ok("LeadService", "GetLead", {"id": lead_id})
    check("GetLead answers the lead", got.get("first_name") == "Jean-Pierre de la Tour"
          and got.get("status_id") == "NEW", str(got))
    listed_leads = ok("LeadService", "ListLeads", {"status_id": "NEW", "page_size": 10})
    check("ListLeads with a status filter finds it",
          [int(x["id"]) for x in listed_leads.get("leads", [])] == [lead_id], str(listed_leads))
    none = ok("LeadService", "ListLeads", {"status_id": "IN_PROCESS"})
    check("ListLeads with another status finds nothing", not none.get("leads"), str(none))

    pipelines = ok("PipelineService", "ListPipelines", {"page_size": 50})
    names = [p["name"] for p in pipelines.get("pipelines", [])]
    check("ListPipelines has the seeded Sales pipeline", names == ["Sales"], str(names))
    kitchens = ok("PipelineService", "CreatePipeline", {"pipeline": {"name": "Kitchens"}})
    kitchens_id = int(kitchens.get("id", 0))
    check("CreatePipeline gives the default stages",
          [s["id"] for s in kitchens.get("stages", [])][0:1] == ["NEW"], str(kitchens))

    converted = ok("LeadService", "ConvertLead", {
        "lead_id": lead_id, "produce": "CONVERSION_PRODUCE_CONTACT_DEAL",
        "pipeline_id": kitchens_id, "request_id": "reflection-1"})
    contact_id = int(converted.get("contact_id", 0))
    deal_id = int(converted.get("deal_id", 0))
    check("ConvertLead makes a contact and a deal", contact_id > 0 and deal_id > 0,
          str(converted))
    again = ok("LeadService", "ConvertLead", {
        "lead_id": lead_id, "produce": "CONVERSION_PRODUCE_CONTACT_DEAL",
        "pipeline_id": kitchens_id, "request_id": "reflection-1"})
    check("ConvertLead retried answers the same deal, replayed",
          again.get("replayed") is True and int(again.get("deal_id", 0)) == deal_id, str(again))

    contact = ok("ContactService", "GetContact", {"id": contact_id})
    check("the contact has the lead's name split",
          (contact.get("first_name"), contact.get("last_name")) == ("Jean-Pierre", "de la Tour"),
          str(contact))
    deal = ok("DealService", "GetDeal", {"id": deal_id})
    check("the deal is in the pipeline's first stage",
          int(deal.get("pipeline_id", 0)) == kitchens_id and deal.get("stage_id") == "NEW",
          str(deal))
    deals = ok("DealService", "ListDeals", {"pipeline_id": kitchens_id, "contact_id": contact_id})
    check("ListDeals filtered by pipeline and contact finds it",
          [int(d["id"]) for d in deals.get("deals", [])] == [deal_id], str(deals))

    company = ok("CompanyService", "CreateCompany", {"company": {
        "name": "Atelier de la Tour", "phones": ["+33 1 23 45 67 89"]}})
    company_id = int(company.get("company", {}).get("id", 0))
    check("CreateCompany gives an id", company_id > 0, str(company))
    ok("ContactService", "LinkCompany",
       {"contact_id": contact_id, "company_id": company_id, "role": "Manager"})
    companies = ok("CompanyService", "GetCompany", {"id": company_id})
    check("the link shows from the company's side",
          [int(c.get("contact_id", 0)) for c in companies.get("contacts", [])] == [contact_id],
          str(companies))

    found = ok("SearchService", "FindByCommunication", {"phone": "+33 (0)6 12 34 56 78"})
    kinds = sorted((m["entity"]["type"], int(m["entity"]["id"])) for m in found.get("matches", []))
    check("FindByCommunication finds the lead and the contact by the phone in another format",
          kinds == sorted([("OWNER_TYPE_LEAD", lead_id), ("OWNER_TYPE_CONTACT", contact_id)]),
          str(found))
    by_name = ok("SearchService", "FindByName", {"prefix": "jean-pie"})
    check("FindByName finds the contact by a folded prefix",
          any(m["entity"]["type"] == "OWNER_TYPE_CONTACT" for m in by_name.get("matches", [])),
          str(by_name))

    settings = ok("SettingsService", "GetSettings", {})
    check("GetSettings reads classic mode", settings.get("settings", settings).get("mode")
          == "CRM_MODE_CLASSIC", str(settings))
    statuses = ok("StatusService", "ListStatuses", {"kind": "STATUS_KIND_LEAD_STATUS"})
    check("ListStatuses has the seeded statuses",
          [s["id"] for s in statuses.get("statuses", [])][:2] == ["NEW", "IN_PROCESS"],
          str(statuses))
    history = ok("HistoryService", "ListHistory",
                 {"entity": {"type": "OWNER_TYPE_LEAD", "id": lead_id}})
    check("ListHistory shows the lead's conversion",
          any(e.get("kind") == "CONVERTED" for e in history.get("entries", [])), str(history))
    activity = ok("ActivityService", "CreateActivity", {"activity": {
        "type": "ACTIVITY_TYPE_CALL", "subject": "Call back about the offices",
        "owner_type": "OWNER_TYPE_DEAL", "owner_id": deal_id}})
    activities = ok("ActivityService", "ListActivities",
                    {"owner_type": "OWNER_TYPE_DEAL", "owner_id": deal_id})
    check("ListActivities by owner finds the new activity",
          [a["id"] for a in activities.get("activities", [])] == [activity.get("id")],
          str(activities))
    calls = ok("CallService", "ListUnidentifiedCalls", {"page_size": 10})
    check("ListUnidentifiedCalls answers an empty list", not calls.get("calls"), str(calls))

    # Errors come back as canonical codes with the record named.
    code, _, details = client.call(crm + "LeadService", "GetLead", {"id": 424242})
    check("GetLead of an unknown id is NOT_FOUND naming it",
          code == grpc.StatusCode.NOT_FOUND and details.startswith("lead 424242 not found"),
          f"{code} {details}")

    new_user_cases(client, crm, contact_id)

    missing = sorted(set(ours) - called)
    check("every CRM service listed by reflection was called", not missing, str(missing))
    print(f"grpc_reflection_e2e: {checks} checks, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
