// The faster phone path (identity/phone.h) against libphonenumber alone, on a large generated
// corpus: every example number of every region and type libphonenumber has, mutated and written
// in many ways, read from many default regions; random texts; the fuzz corpus.

#include "identity/phone.h"

#include <gtest/gtest.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "identity/identity.h"

namespace leadflow::identity::internal {
namespace {

using ::i18n::phonenumbers::PhoneNumber;
using ::i18n::phonenumbers::PhoneNumberUtil;

struct Case {
  std::string text;
  std::string region;
};

std::string Describe(const absl::StatusOr<std::string>& result) {
  return result.ok() ? *result : result.status().ToString();
}

// The corpus, deterministic (fixed seed) so that a failure can be replayed.
class Corpus {
 public:
  Corpus() : random_(20261130) {
    const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
    std::set<std::string> regions;
    util.GetSupportedRegions(&regions);
    regions_.assign(regions.begin(), regions.end());
    static const PhoneNumberUtil::PhoneNumberType kTypes[] = {
        PhoneNumberUtil::FIXED_LINE,      PhoneNumberUtil::MOBILE,      PhoneNumberUtil::TOLL_FREE,
        PhoneNumberUtil::PREMIUM_RATE,    PhoneNumberUtil::SHARED_COST, PhoneNumberUtil::VOIP,
        PhoneNumberUtil::PERSONAL_NUMBER, PhoneNumberUtil::PAGER,       PhoneNumberUtil::UAN,
        PhoneNumberUtil::VOICEMAIL};
    std::vector<std::pair<PhoneNumber, std::string>> examples;  // number, its region
    for (const std::string& region : regions_) {
      for (auto type : kTypes) {
        PhoneNumber number;
        if (util.GetExampleNumberForType(region, type, &number)) {
          examples.emplace_back(number, region);
        }
      }
      PhoneNumber invalid;
      if (util.GetInvalidExampleNumber(region, &invalid)) {
        examples.emplace_back(invalid, region);
      }
    }
    std::set<int> global_codes;
    util.GetSupportedGlobalNetworkCallingCodes(&global_codes);
    for (int code : global_codes) {
      PhoneNumber number;
      if (util.GetExampleNumberForNonGeoEntity(code, &number)) {
        examples.emplace_back(number, "001");
      }
    }
    for (const auto& [number, region] : examples) {
      std::string national;
      util.GetNationalSignificantNumber(number, &national);
      const std::string code = absl::StrCat(number.country_code());
      for (const std::string& variant : Variants(national)) {
        AddWritings(code, variant, region);
      }
    }
    // Random international texts: most calling codes, lengths around every national length.
    for (int i = 0; i < 20000; ++i) {
      std::string digits = absl::StrCat(1 + random_() % 999);
      digits += RandomDigits(random_() % 16);
      Add(Separate("+" + digits), RandomRegion());
    }
    // Random texts over the characters the fast path looks at, and some it refuses.
    static const std::string kAlphabet = "+0123456789 -.()x#;/*,~ab";
    for (int i = 0; i < 20000; ++i) {
      std::string text;
      size_t length = 1 + random_() % 24;
      for (size_t k = 0; k < length; ++k) {
        text.push_back(kAlphabet[random_() % (i % 2 == 0 ? 13 : kAlphabet.size())]);
      }
      Add(text, RandomRegion());
    }
  }

  const std::vector<Case>& cases() const { return cases_; }

 private:
  std::string RandomDigits(size_t count) {
    std::string digits;
    for (size_t i = 0; i < count; ++i) {
      digits.push_back(static_cast<char>('0' + random_() % 10));
    }
    return digits;
  }

  const std::string& RandomRegion() { return regions_[random_() % regions_.size()]; }

  // The national number as it is, one or two digits changed, shortened, lengthened, with a
  // national prefix or a trunk zero in front, and a random number of the same length.
  std::vector<std::string> Variants(const std::string& national) {
    std::vector<std::string> variants = {national, "0" + national, "1" + national, "8" + national,
                                         RandomDigits(national.size())};
    for (int i = 0; i < 4 && !national.empty(); ++i) {
      std::string changed = national;
      changed[random_() % changed.size()] = static_cast<char>('0' + random_() % 10);
      if (i % 2 == 1) {
        changed[random_() % changed.size()] = static_cast<char>('0' + random_() % 10);
      }
      variants.push_back(changed);
    }
    if (national.size() > 1) {
      variants.push_back(national.substr(0, national.size() - 1));
    }
    if (national.size() > 2) {
      variants.push_back(national.substr(0, national.size() - 2));
    }
    variants.push_back(national + RandomDigits(1));
    variants.push_back(national + RandomDigits(2));
    return variants;
  }

  // Spaces, dashes, dots or parentheses between some digits.
  std::string Separate(const std::string& text) {
    if (random_() % 3 == 0) {
      return text;
    }
    static const char* const kSeparators[] = {" ", "-", ".", " ", "(", ")", "  ", " - "};
    std::string separated;
    for (size_t i = 0; i < text.size(); ++i) {
      separated.push_back(text[i]);
      if (i + 1 < text.size() && random_() % 4 == 0) {
        separated += kSeparators[random_() % 8];
      }
    }
    return separated;
  }

  void AddWritings(const std::string& code, const std::string& national,
                   const std::string& region) {
    const std::string own = region == "001" ? "FR" : region;
    for (const std::string& reader : {own, std::string("FR"), RandomRegion()}) {
      Add("+" + code + national, reader);
      Add(Separate("+" + code + " " + national), reader);
      Add("00" + code + national, reader);
    }
    Add("+" + code + " (0)" + national, own);
    Add(national, own);
    Add(Separate(national), own);
    Add("+" + national, own);
    Add("+" + code + national, "001");
    Add("+" + code + national, "ZZ");
  }

  void Add(std::string text, const std::string& region) {
    cases_.push_back({std::move(text), region});
  }

  std::mt19937 random_;
  std::vector<std::string> regions_;
  std::vector<Case> cases_;
};

const Corpus& TheCorpus() {
  static const Corpus* const corpus = new Corpus();
  return *corpus;
}

// Protects: NormalizePhone's answer is libphonenumber's own (Parse, IsValidNumber, Format E.164),
// value and error alike, for every kind of number of every region, written in many ways and read
// from many default regions; and the fast path is taken often enough for that to mean something.
TEST(PhoneDifferentialTest, SameAnswerAsLibphonenumberOnGeneratedCorpus) {
  const std::vector<Case>& cases = TheCorpus().cases();
  size_t fast = 0, fast_valid = 0, fast_shared_code = 0, mismatches = 0;
  for (const Case& c : cases) {
    absl::StatusOr<std::string> expected = NormalizePhoneReference(c.text, c.region);
    absl::StatusOr<std::string> actual = NormalizePhone(c.text, c.region);
    if (Describe(actual) != Describe(expected) || actual.ok() != expected.ok()) {
      if (++mismatches <= 20) {
        ADD_FAILURE() << "'" << c.text << "' from " << c.region << ": " << Describe(actual)
                      << ", libphonenumber: " << Describe(expected);
      }
    }
    if (auto parsed = ParseInternational(c.text, c.region)) {
      ++fast;
      fast_valid += actual.ok();
      std::list<std::string> regions;
      PhoneNumberUtil::GetInstance()->GetRegionCodesForCountryCallingCode(parsed->country_code,
                                                                          &regions);
      fast_shared_code += regions.size() > 1;
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << cases.size();
  std::printf("%zu cases, %zu on the fast path (%zu valid, %zu with a shared calling code)\n",
              cases.size(), fast, fast_valid, fast_shared_code);
  // The corpus must exercise the fast path: valid and invalid answers, and calling codes shared
  // by several regions (+1, +7, +44, ...).
  EXPECT_GT(cases.size(), 100000u);
  EXPECT_GT(fast, cases.size() / 5);
  EXPECT_GT(fast_valid, 5000u);
  EXPECT_GT(fast - fast_valid, 5000u);
  EXPECT_GT(fast_shared_code, 2000u);
}

// Protects: the same on every input of the identity fuzz corpus, read from every region the fuzz
// target uses.
TEST(PhoneDifferentialTest, SameAnswerAsLibphonenumberOnFuzzCorpus) {
  const std::filesystem::path corpus =
      std::filesystem::path(LEADFLOW_SOURCE_DIR) / "tests/fuzz/corpus/identity";
  size_t inputs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    std::ifstream file(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (bytes.empty()) {
      continue;
    }
    ++inputs;
    for (const char* region : {"FR", "US", "DE", "GB", "BR", "IN", "JP", "CH"}) {
      for (const std::string& text : {bytes.substr(1), bytes}) {
        EXPECT_EQ(Describe(NormalizePhone(text, region)),
                  Describe(NormalizePhoneReference(text, region)))
            << "'" << text << "' from " << region << " (" << entry.path() << ")";
      }
    }
  }
  EXPECT_GT(inputs, 0u);
}

// Protects: the per-thread matchers give the same answers when threads normalise at once.
TEST(PhoneDifferentialTest, ConcurrentThreadsAgree) {
  const std::vector<Case>& cases = TheCorpus().cases();
  std::vector<std::string> expected;
  const size_t count = std::min<size_t>(cases.size(), 4000);
  for (size_t i = 0; i < count; ++i) {
    expected.push_back(Describe(NormalizePhoneReference(cases[i].text, cases[i].region)));
  }
  std::vector<size_t> wrong(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < count; ++i) {
        size_t k = (i + t * count / 4) % count;
        wrong[t] += Describe(NormalizePhone(cases[k].text, cases[k].region)) != expected[k];
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(wrong, std::vector<size_t>(4, 0));
}

// Protects: the bench's and the forms' usual shape takes the fast path and gives E.164.
TEST(PhoneFastPathTest, InternationalFrenchMobile) {
  auto parsed = ParseInternational("+33 6 12 34 56 78", "FR");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->country_code, 33);
  EXPECT_EQ(parsed->national_number, "612345678");
  EXPECT_EQ(IsValidNumber(33, "612345678"), std::optional<bool>(true));
  EXPECT_EQ(IsValidNumber(33, "012345678"), std::optional<bool>(false));
  // A national prefix after the calling code is libphonenumber's to strip.
  EXPECT_FALSE(ParseInternational("+33 0612345678", "FR").has_value());
  auto phone = NormalizePhone("+33 (0)6 12 34 56 78", "US");
  ASSERT_TRUE(phone.ok()) << phone.status();
  EXPECT_EQ(*phone, "+33612345678");
}

}  // namespace
}  // namespace leadflow::identity::internal
