#include "identity/identity.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace leadflow::identity {
namespace {

using events::v1::Identity;

// Protects: the usual ways people type a French number all become one E.164 key.
TEST(NormalizePhoneTest, NationalAndInternationalFormsAgree) {
  for (const char* raw : {"06 12 34 56 78", "0612345678", "+33 6 12 34 56 78", "+33612345678",
                          "(0)6-12-34-56-78", "  06.12.34.56.78\t", "0033612345678"}) {
    auto phone = NormalizePhone(raw, "FR");
    ASSERT_TRUE(phone.ok()) << raw << ": " << phone.status();
    EXPECT_EQ(*phone, "+33612345678") << raw;
  }
}

// Protects: the Unicode spaces that text pasted from a document or a web page puts between digit
// groups — French typography's narrow no-break space (U+202F) first, then the no-break, thin,
// figure and ideographic spaces — separate digits like a plain space, in national and
// international forms and without the '+' (a number written with them stayed unidentified,
// so its calls and forms matched no one).
TEST(NormalizePhoneTest, UnicodeSpacesSeparateDigitGroups) {
  for (const char* space :
       {"\u202F", "\u00A0", "\u2009", "\u2007", "\u2002", "\u205F", "\u3000", "\u1680"}) {
    for (const std::string& raw :
         {absl::StrCat("06", space, "12", space, "34", space, "56", space, "78"),
          absl::StrCat("+33", space, "6", space, "12", space, "34", space, "56", space, "78"),
          absl::StrCat(space, "0033", space, "612345678", space)}) {
      auto phone = NormalizePhone(raw, "FR");
      ASSERT_TRUE(phone.ok()) << raw << ": " << phone.status();
      EXPECT_EQ(*phone, "+33612345678") << raw;
    }
    auto without_plus = NormalizePhone(absl::StrCat("44", space, "7911", space, "123456"), "FR");
    ASSERT_TRUE(without_plus.ok()) << without_plus.status();
    EXPECT_EQ(*without_plus, "+447911123456");
  }
  // Only spaces: empty, as "   " is.
  EXPECT_EQ(NormalizePhone("\u202F\u00A0 ", "FR").status().message(), "empty");
  EXPECT_EQ(NormalizePhone("   ", "FR").status().message(), "empty");
  // Other characters between digits are not spaces: still refused.
  for (const char* other : {"\u200B", "\u00B7", "\u2013\u2013"}) {
    EXPECT_FALSE(NormalizePhone(absl::StrCat("06", other, "12345678", other, "9"), "FR").ok())
        << other;
  }
}

// Protects: the default region decides how a national number is read.
TEST(NormalizePhoneTest, DefaultRegionApplies) {
  auto us = NormalizePhone("(650) 253-0000", "US");
  ASSERT_TRUE(us.ok()) << us.status();
  EXPECT_EQ(*us, "+16502530000");
  auto explicit_country = NormalizePhone("+44 20 7946 0958", "FR");
  ASSERT_TRUE(explicit_country.ok()) << explicit_country.status();
  EXPECT_EQ(*explicit_country, "+442079460958");
}

// Protects: hostile or meaningless input is rejected with InvalidArgument, never crashes.
TEST(NormalizePhoneTest, RejectsHostileInput) {
  const std::string cases[] = {
      "",
      "   ",
      "+",
      "++",
      "abc",
      "hello world",
      "06 12",                    // too short
      "+33 6 12 34 56 78 9 0 1",  // too long for France
      std::string(10000, '6'),
      std::string("06\0"
                  "12345678",
                  11),
      "06 12 34 56 78\n",  // trailing newline is whitespace: accepted below, so use inner one
      "06\n12 34 56 78",
      "\xff\xfe",
      "\xc3\x28",                                    // invalid UTF-8
      "٠٦١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠",  // long Arabic-Indic digits
      "+999 1234567",                                // unassigned country code
  };
  for (const std::string& raw : cases) {
    auto phone = NormalizePhone(raw, "FR");
    if (raw == "06 12 34 56 78\n") {
      EXPECT_TRUE(phone.ok()) << phone.status();
      continue;
    }
    EXPECT_FALSE(phone.ok()) << "accepted: " << raw;
    if (!phone.ok()) {
      EXPECT_EQ(phone.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

// Protects: a number a SIP trunk or PBX sends in international form without its '+' becomes
// that country's number, from whatever default region: it is not valid in the default region
// but is with a '+' in front (the trial's UK and US missed calls that stayed unidentified).
TEST(NormalizePhoneTest, ForeignNumberWithoutPlusIsInternational) {
  const std::pair<const char*, const char*> cases[] = {
      {"447911123456", "+447911123456"},      // United Kingdom, mobile
      {"12125551234", "+12125551234"},        // United States
      {"4915112345678", "+4915112345678"},    // Germany, mobile
      {"393123456789", "+393123456789"},      // Italy, mobile
      {"5511987654321", "+5511987654321"},    // Brazil, São Paulo mobile
      {"34612345678", "+34612345678"},        // Spain, mobile
      {" 44 7911 123456 ", "+447911123456"},  // as a person types it
      {"44-7911-123456", "+447911123456"},    // dashes
      {"sip-free 447911123456", ""},          // not digits: no international reading
  };
  for (const auto& [raw, e164] : cases) {
    auto phone = NormalizePhone(raw, "FR");
    if (std::string(e164).empty()) {
      EXPECT_FALSE(phone.ok()) << raw << ": " << *phone;
      continue;
    }
    ASSERT_TRUE(phone.ok()) << raw << ": " << phone.status();
    EXPECT_EQ(*phone, e164) << raw;
  }
  for (const char* region : {"US", "ES", "BR", "JP"}) {
    auto uk = NormalizePhone("447911123456", region);
    ASSERT_TRUE(uk.ok()) << region << ": " << uk.status();
    EXPECT_EQ(*uk, "+447911123456") << region;
  }
  auto french_from_us = NormalizePhone("33612345678", "US");
  ASSERT_TRUE(french_from_us.ok()) << french_from_us.status();
  EXPECT_EQ(*french_from_us, "+33612345678");
}

// Protects: a number valid in the default region keeps its national reading even when it would
// also be valid as international (FR 06 87 73 27 72 is not New Caledonia's +687 732772), and a
// number starting with the region's trunk prefix, or too short, is never read as international.
TEST(NormalizePhoneTest, NationalNumberStaysNational) {
  const std::tuple<const char*, const char*, const char*> national[] = {
      {"687732772", "FR", "+33687732772"},  // also +687 732772 (New Caledonia)
      {"494152677", "FR", "+33494152677"},  // also +49 4152677 (Germany)
      {"612345678", "FR", "+33612345678"},
      {"33612345601", "FR", "+33612345601"},      // the region's own code, as before
      {"6092189000", "US", "+16092189000"},       // also +60 92189000 (Malaysia)
      {"447911123456", "DE", "+49447911123456"},  // a valid German number (area code 4479)
      {"07911123456", "GB", "+447911123456"},
  };
  for (const auto& [raw, region, e164] : national) {
    auto phone = NormalizePhone(raw, region);
    ASSERT_TRUE(phone.ok()) << raw << " from " << region << ": " << phone.status();
    EXPECT_EQ(*phone, e164) << raw << " from " << region;
  }
  // Trunk prefix: "0 44 79 11 12 34 56" is a wrong French number, not a British one; "1 44…"
  // from the US likewise.
  EXPECT_FALSE(NormalizePhone("0447911123456", "FR").ok());
  EXPECT_FALSE(NormalizePhone("1447911123456", "US").ok());
  // Fewer than kMinDigitsReadAsInternational digits: an extension or a local number without its
  // area code, even where '+' would make it valid (+352 2959 is in Luxembourg, +43 13733 in
  // Vienna).
  EXPECT_TRUE(NormalizePhone("+3522959", "US").ok());
  EXPECT_FALSE(NormalizePhone("352-2959", "US").ok());
  EXPECT_FALSE(NormalizePhone("4313733", "FR").ok());
  EXPECT_FALSE(NormalizePhone("3010", "FR").ok());
}

// Protects: region codes from configuration are checked at start-up.
TEST(ValidateRegionTest, KnownAndUnknown) {
  EXPECT_TRUE(ValidateRegion("FR").ok());
  EXPECT_TRUE(ValidateRegion("US").ok());
  EXPECT_FALSE(ValidateRegion("fr").ok());
  EXPECT_FALSE(ValidateRegion("XX").ok());
  EXPECT_FALSE(ValidateRegion("").ok());
}

// Protects: emails match on equality after trimming and lower-casing.
TEST(NormalizeEmailTest, TrimsAndLowerCases) {
  auto email = NormalizeEmail("  Jean.Dupont+Shop@Example.FR \t");
  ASSERT_TRUE(email.ok()) << email.status();
  EXPECT_EQ(*email, "jean.dupont+shop@example.fr");
  auto unicode = NormalizeEmail("JOSÉ@exämple.com");
  ASSERT_TRUE(unicode.ok()) << unicode.status();
  EXPECT_EQ(*unicode, "josé@exämple.com");
}

// Protects (D23): the local part is folded the Unicode way the domain is (NFKC, root-locale
// lower-casing, NFKC), not only its ASCII letters: "İnci@Örnek.example" and its other spellings
// (capitals, decomposed accents, a full-width letter) are one address; ß stays ß as in a domain;
// folding twice changes nothing.
TEST(NormalizeEmailTest, LocalPartFoldedAsTheDomain) {
  for (const char* raw : {"İnci@Örnek.example", "i\u0307nci@örnek.example", "İNCI@ÖRNEK.EXAMPLE",
                          "I\u0307nci@O\u0308rnek.example"}) {
    auto email = NormalizeEmail(raw);
    ASSERT_TRUE(email.ok()) << raw << ": " << email.status();
    EXPECT_EQ(*email, "i\u0307nci@örnek.example") << raw;
  }
  auto sharp = NormalizeEmail("Straße@Example.DE");
  ASSERT_TRUE(sharp.ok());
  EXPECT_EQ(*sharp, "straße@example.de");
  auto wide = NormalizeEmail("ＪＯＳＥ\u0301@example.com");  // full-width letters, combining accent
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(*wide, "josé@example.com");
  // A compatibility '@' or space becomes one when folded: refused, as if written so.
  EXPECT_FALSE(NormalizeEmail("a\uFF20b@example.com").ok());
  EXPECT_FALSE(NormalizeEmail("a\u3000b@example.com").ok());
  for (const char* raw : {"Ελένη@Example.GR", "ДМИТРИЙ@пример.рф", "İnci@Örnek.example"}) {
    auto once = NormalizeEmail(raw);
    ASSERT_TRUE(once.ok()) << raw;
    auto twice = NormalizeEmail(*once);
    ASSERT_TRUE(twice.ok()) << raw;
    EXPECT_EQ(*twice, *once) << raw;
  }
}

// Protects (D23): an A-label that decodes to a character IDNA2008 disallows (xn--stanbul-cja is
// "stanb§ul": UTS #46 lets § through) is refused, and so is the same character written in
// Unicode, rather than stored as an address no registry could issue; real IDNs still pass.
TEST(NormalizeEmailTest, DisallowedDomainCharactersRefused) {
  for (const char* raw :
       {"a@xn--stanbul-cja.example", "a@stanb§ul.example", "a@i❤.example", "a@xn--i-7iq.example"}) {
    auto email = NormalizeEmail(raw);
    EXPECT_FALSE(email.ok()) << raw << " → " << (email.ok() ? *email : "");
    if (!email.ok()) {
      EXPECT_EQ(email.status().code(), absl::StatusCode::kInvalidArgument) << raw;
      EXPECT_NE(email.status().message().find("IDNA2008"), std::string::npos) << raw;
    }
  }
  for (const char* raw :
       {"a@xn--bcher-kva.example", "a@straße.example", "a@例え.jp", "a@xn--80ak6aa92e.com"}) {
    auto email = NormalizeEmail(raw);
    EXPECT_TRUE(email.ok()) << raw << ": " << email.status();
  }
}

// Protects: one normal form for internationalised domains (trial E5: mail from
// max@xn--bcher-kva.example was kept as max@bücher.example, as GMime reads it, while the API
// kept the A-label, so FindByCommunication found nothing and an upsert made a second person):
// the A-label, the U-label and its capitals are one address, in Unicode; plain domains, and
// domains IDNA refuses, are only lower-cased as before.
TEST(NormalizeEmailTest, InternationalisedDomainsHaveOneForm) {
  for (const char* raw : {"max@xn--bcher-kva.example", "Max@XN--BCHER-KVA.Example",
                          "max@bücher.example", "MAX@BÜCHER.example"}) {
    auto email = NormalizeEmail(raw);
    ASSERT_TRUE(email.ok()) << raw << ": " << email.status();
    EXPECT_EQ(*email, "max@bücher.example") << raw;
  }
  auto mixed = NormalizeEmail("info@xn--mnchen-3ya.xn--bcher-kva.de");
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ(*mixed, "info@münchen.bücher.de");
  auto plain = NormalizeEmail("A_B@Mail_Server.Example.COM");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, "a_b@mail_server.example.com");
  auto refused = NormalizeEmail("a@xn--zz-.example");  // not a valid A-label
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(*refused, "a@xn--zz-.example");
  // Normalising twice changes nothing.
  auto again = NormalizeEmail(*NormalizeEmail("max@xn--bcher-kva.example"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, "max@bücher.example");
}

// Protects: malformed and hostile addresses are rejected with InvalidArgument.
TEST(NormalizeEmailTest, RejectsMalformed) {
  const std::string cases[] = {
      "",
      "   ",
      "plainaddress",
      "@example.com",
      "a@",
      "a@b",
      "a@@b.com",
      "a@b@c.com",
      "a b@c.com",
      "a@b .com",
      "a@.com",
      "a@b..com",
      "a@b.com.",
      "a@b,com.fr",
      std::string("a\0b@c.com", 9),
      "a\r\nBcc: x@y.com@c.com",
      "\xc3\x28@c.com",
      std::string(65, 'a') + "@example.com",
      "a@" + std::string(250, 'b') + ".com",
      std::string(100000, 'x'),
  };
  for (const std::string& raw : cases) {
    auto email = NormalizeEmail(raw);
    EXPECT_FALSE(email.ok()) << "accepted: " << raw;
    if (!email.ok()) {
      EXPECT_EQ(email.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

Identity Make(Identity::Kind kind, const std::string& value) {
  Identity identity;
  identity.set_kind(kind);
  identity.set_value(value);
  return identity;
}

// Protects: the Kafka key is the same whatever order identities were collected in, and a phone
// wins over an email (so one person's events share a partition).
TEST(CanonicalOrderTest, PhoneBeforeEmailAndDeduplicated) {
  google::protobuf::RepeatedPtrField<Identity> identities;
  *identities.Add() = Make(Identity::EMAIL, "b@x.fr");
  *identities.Add() = Make(Identity::PHONE, "+33700000000");
  *identities.Add() = Make(Identity::EMAIL, "a@x.fr");
  *identities.Add() = Make(Identity::PHONE, "+33612345678");
  *identities.Add() = Make(Identity::EMAIL, "a@x.fr");
  EXPECT_EQ(PrimaryKey(identities), "+33612345678");
  Canonicalize(&identities);
  ASSERT_EQ(identities.size(), 4);
  EXPECT_EQ(identities[0].value(), "+33612345678");
  EXPECT_EQ(identities[1].value(), "+33700000000");
  EXPECT_EQ(identities[2].value(), "a@x.fr");
  EXPECT_EQ(identities[3].value(), "b@x.fr");
  EXPECT_EQ(PrimaryKey({}), "");
}

// Protects: the UTF-8 check used on untrusted input.
TEST(Utf8Test, AcceptsWellFormedRejectsMalformed) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("Ça va? 日本 🎉"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

// Protects: the repair of untrusted text (a Latin-1 name) gives well-formed UTF-8 with U+FFFD
// where the bytes were not UTF-8, keeps every well-formed character, and leaves UTF-8 alone
// (including a U+FFFD that was written, and a NUL).
TEST(Utf8Test, ToValidUtf8ReplacesOnlyWhatIsNotUtf8) {
  EXPECT_EQ(ToValidUtf8("H\xe9l\xe8ne"), "H\uFFFDl\uFFFDne");
  EXPECT_EQ(ToValidUtf8("\xed\xa0\x80 \xc0\xaf"), "\uFFFD\uFFFD\uFFFD \uFFFD\uFFFD");
  EXPECT_EQ(ToValidUtf8("\xe2\x82"), "\uFFFD");
  EXPECT_EQ(ToValidUtf8("Ça va? 日本 🎉 \uFFFD"), "Ça va? 日本 🎉 \uFFFD");
  EXPECT_EQ(ToValidUtf8(std::string("a\0b", 3)), std::string("a\0b", 3));
  for (const char* text : {"\xff\xfe", "x\xf4\x90\x80\x80y", "\x80\x80\x80"}) {
    EXPECT_TRUE(IsValidUtf8(ToValidUtf8(text))) << text;
  }
}

}  // namespace
}  // namespace leadflow::identity

namespace leadflow::identity {
namespace {

// Protects: a call's lead title shows the number as people read it, and anything that is not a
// number in E.164 comes back unchanged (never an empty or invented title).
TEST(FormatPhoneForReadingTest, GroupsE164AndKeepsTheRest) {
  EXPECT_EQ(FormatPhoneForReading("+33612345678"), "+33 6 12 34 56 78");
  EXPECT_EQ(FormatPhoneForReading("+14155550123"), "+1 415-555-0123");
  EXPECT_EQ(FormatPhoneForReading("anonymous"), "anonymous");
  EXPECT_EQ(FormatPhoneForReading("+"), "+");
  EXPECT_EQ(FormatPhoneForReading(""), "");
}

}  // namespace
}  // namespace leadflow::identity
