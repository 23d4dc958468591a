// The reference scenario generator. Everything random comes from one splitmix64 stream with our own
// range function (std:: distributions differ between standard libraries), and every container
// iterated while generating is ordered, so the same seed gives byte-identical sandboxes everywhere.
#include "crmmigrate/sandbox/reference.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <set>

#include <boost/json.hpp>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "sandbox/sandbox_internal.hpp"

namespace cmg::sandbox {

namespace json = boost::json;
using internal::civil_to_ms;

namespace {

// ---- randomness ----

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n) for n > 0 (modulo bias below 2^-40 for our n).
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  /// Uniform in [lo, hi].
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <typename T, std::size_t N>
  const T& pick(const std::array<T, N>& a) {
    return a[below(N)];
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::uint64_t state_;
};

// ---- embedded lists ----

const std::array<const char*, 64> kFirstNames = {
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel", "Lisa",
    "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley", "Paul", "Emily", "Andrew", "Donna",
    "Joshua", "Michelle", "Kevin", "Carol", "Brian", "Amanda", "Wei", "Melissa", "Aisha", "Deborah", "Ravi",
    "Stephanie", "Kenji", "Rebecca", "Omar", "Laura", "José", "Sharon", "Zoë", "Cynthia", "Mateo", "Renée", "Ethan",
    "Amy", "Noah", "Angela", "Liam", "Fatima", "Lukas", "Ingrid"};

const std::array<const char*, 64> kLastNames = {
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "O'Brien", "Müller", "Kowalski", "Singh", "Tanaka",
    "Okafor", "Johansson", "Dubois", "Rossi", "Novak", "Cohen", "Byrne", "Fischer", "Da Silva"};

const std::array<const char*, 60> kOrgWordsA = {
    "Northwind", "Bluebird", "Summit", "Pioneer", "Redwood", "Silverline", "Harbor", "Evergreen", "Granite",
    "Lakeside", "Brightwater", "Cobalt", "Keystone", "Meridian", "Orchard", "Riverbend", "Sterling", "Tidewater",
    "Westbrook", "Aurora", "Beacon", "Cedar", "Clearwater", "Crescent", "Falcon", "Frontier", "Golden Gate",
    "Highland", "Ironwood", "Juniper", "Lighthouse", "Maple", "Nimbus", "Oakridge", "Pinnacle", "Quantum", "Rainier",
    "Sable", "Sequoia", "Skyline", "Solstice", "Spruce", "Stonebridge", "Sunrise", "Trident", "Union", "Vantage",
    "Vertex", "Willow", "Zenith", "Atlas", "Copperfield", "Delta", "Echo Park", "Fulcrum", "Horizon", "Lumen",
    "Mosaic", "Nova", "Prairie"};

const std::array<const char*, 40> kOrgWordsB = {
    "Analytics", "Logistics", "Health", "Foods", "Robotics", "Software", "Systems", "Energy", "Capital",
    "Consulting", "Labs", "Media", "Manufacturing", "Networks", "Solutions", "Biotech", "Dental", "Legal", "Realty",
    "Outfitters", "Apparel", "Insurance", "Freight", "Design", "Engineering", "Security", "Pharma", "Textiles",
    "Hospitality", "Marine", "Aerospace", "Learning", "Staffing", "Brewing", "Coffee Roasters", "Fitness",
    "Printing", "Studios", "Supply", "Ventures"};

const std::array<const char*, 11> kOrgSuffixes = {"Inc", "Inc.", "LLC", "Ltd", "Group", "Co", "Partners", "Corp.",
                                                   "", "", ""};

struct City {
  const char* name;
  const char* state;
  int zip;
};
const std::array<City, 16> kCities = {{{"San Francisco", "CA", 94107}, {"Austin", "TX", 78701},
                                       {"Chicago", "IL", 60601}, {"Boston", "MA", 2110},
                                       {"Seattle", "WA", 98101}, {"Denver", "CO", 80202},
                                       {"Atlanta", "GA", 30303}, {"Miami", "FL", 33131},
                                       {"New York", "NY", 10001}, {"Portland", "OR", 97204},
                                       {"Minneapolis", "MN", 55401}, {"Raleigh", "NC", 27601},
                                       {"Las Vegas", "NV", 89101}, {"San Diego", "CA", 92101},
                                       {"Dallas", "TX", 75201}, {"Los Angeles", "CA", 90012}}};

const std::array<const char*, 12> kStreets = {"Main St",     "Market St",   "Oak Ave",        "Pine St",
                                              "Maple Ave",   "Cedar Blvd",  "Lake Shore Dr",  "Broadway",
                                              "Mission St",  "Elm St",      "Industrial Pkwy", "Commerce Way"};

const std::array<int, 20> kAreaCodes = {212, 213, 206, 303, 305, 312, 404, 415, 503, 512,
                                        617, 646, 702, 720, 919, 612, 469, 858, 971, 347};

const std::array<const char*, 6> kFreeMail = {"gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me",
                                              "hotmail.com"};

const std::array<const char*, 10> kTopics = {"pricing",         "the renewal",      "onboarding timeline",
                                             "security review", "the pilot scope", "integration with their ERP",
                                             "seat count",      "contract terms",   "support SLAs",
                                             "the Q3 budget"};

const std::array<const char*, 8> kNextSteps = {"send proposal", "book demo", "loop in legal", "share case study",
                                               "schedule follow-up call", "prepare quote", "intro to CTO",
                                               "wait for budget approval"};

const std::array<const char*, 9> kProducts = {"Annual license", "50 seats", "Pilot", "Renewal", "Enterprise upgrade",
                                              "Onboarding package", "Support contract", "Expansion", "Team plan"};

const std::array<const char*, 8> kLifecycle = {"subscriber", "lead", "lead", "marketingqualifiedlead",
                                               "salesqualifiedlead", "opportunity", "customer", "customer"};

// ---- users ----

struct SeedUser {
  const char* id;
  const char* name;
  const char* email;
};
const std::array<SeedUser, 8> kSourceUsers = {{{"1", "Avery Chen", "avery.chen@brightpath-sales.com"},
                                               {"2", "Jordan Patel", "jordan.patel@brightpath-sales.com"},
                                               {"3", "Samira Haddad", "samira.haddad@brightpath-sales.com"},
                                               {"4", "Lucas Moreau", "lucas.moreau@brightpath-sales.com"},
                                               {"5", "Priya Raman", "priya.raman@brightpath-sales.com"},
                                               {"6", "Diego Alvarez", "diego.alvarez@brightpath-sales.com"},
                                               {"7", "Hannah Kim", "hannah.kim@brightpath-sales.com"},
                                               {"8", "Morgan Blake", "morgan.blake@brightpath-sales.com"}}};
// Owners 1–6 share the users' addresses (3 in other letter case), 7 has the name of user 7 but
// another address, 8 and 9 exist only in HubSpot.
const std::array<SeedUser, 9> kOwners = {{{"70000001", "Avery Chen", "avery.chen@brightpath-sales.com"},
                                          {"70000002", "Jordan Patel", "jordan.patel@brightpath-sales.com"},
                                          {"70000003", "Samira Haddad", "Samira.Haddad@Brightpath-Sales.com"},
                                          {"70000004", "Lucas Moreau", "lucas.moreau@brightpath-sales.com"},
                                          {"70000005", "Priya Raman", "priya.raman@brightpath-sales.com"},
                                          {"70000006", "Diego Alvarez", "diego.alvarez@brightpath-sales.com"},
                                          {"70000007", "Hannah Kim", "hkim@brightpath.io"},
                                          {"70000008", "Riley Ortiz", "riley.ortiz@brightpath-sales.com"},
                                          {"70000009", "Casey Nguyen", "casey.nguyen@brightpath-sales.com"}}};
constexpr const char* kReassignOwner = "70000008";
constexpr int kUnprovisionedUser = 8;

// ---- scenario sizes ----

constexpr int kOrgs = 600;
constexpr int kPreexistingOrgs = 40;
constexpr int kUnrelatedCompanies = 30;
constexpr int kPersons = 4200;
constexpr int kDeletedPersons = 12;
constexpr int kUnprovisionedPersons = 34;
constexpr int kEmailDuplicates = 120;
constexpr int kPhoneDuplicates = 30;
constexpr int kPreexistingByEmail = 250;
constexpr int kPreexistingByPhone = 50;
constexpr int kSwitchboardPersons = 10;
constexpr int kUnrelatedContacts = 200;
constexpr int kDeals = 1800;
constexpr int kOnHoldDeals = 140;
constexpr int kUnprovisionedDeals = 20;
constexpr int kNotes = 6000;
constexpr int kDealNotes = 2400;
constexpr int kActivitiesPerType = 100;

// ---- text helpers ----

std::string lower(std::string s) { return internal::ascii_lower(s); }

std::string upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

// ASCII form of a name for email addresses: letters and digits lowercased, a few accented letters
// transliterated, everything else dropped.
std::string email_part(std::string_view s) {
  static const std::array<std::pair<const char*, char>, 6> kFold = {
      {{"\xC3\xA9", 'e'}, {"\xC3\xAB", 'e'}, {"\xC3\xBC", 'u'}, {"\xC3\xB6", 'o'}, {"\xC3\xA1", 'a'}, {"\xC3\xB1", 'n'}}};
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      out += c;
    } else if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      for (const auto& [utf8, ascii] : kFold) {
        if (s.substr(i, 2) == utf8) {
          out += ascii;
          ++i;
          break;
        }
      }
    }
  }
  return out;
}

// Capitalises the first letter of the address and of every part after '.', '_', '-' or '@'.
std::string title_case_email(const std::string& e) {
  std::string out = e;
  bool start = true;
  for (char& c : out) {
    if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    start = c == '.' || c == '_' || c == '-' || c == '@';
  }
  return out;
}

// The same address in another letter case (never identical to `e`).
std::string case_variant(const std::string& e, Rng& rng) {
  std::vector<std::string> options = {title_case_email(e), upper(e), lower(e), title_case_email(lower(e))};
  rng.shuffle(options);
  for (const auto& o : options)
    if (o != e) return o;
  return upper(e);
}

std::string format_phone(std::uint64_t n, int style) {
  unsigned area = static_cast<unsigned>(n / 10000000), exch = static_cast<unsigned>(n / 10000 % 1000),
           line = static_cast<unsigned>(n % 10000);
  char buf[40];
  switch (style) {
    case 0: std::snprintf(buf, sizeof buf, "(%03u) %03u-%04u", area, exch, line); break;
    case 1: std::snprintf(buf, sizeof buf, "%03u-%03u-%04u", area, exch, line); break;
    case 2: std::snprintf(buf, sizeof buf, "%03u.%03u.%04u", area, exch, line); break;
    case 3: std::snprintf(buf, sizeof buf, "+1 %03u %03u %04u", area, exch, line); break;
    case 4: std::snprintf(buf, sizeof buf, "%03u%03u%04u", area, exch, line); break;
    case 5: std::snprintf(buf, sizeof buf, "+1-%03u-%03u-%04u", area, exch, line); break;
    case 6: std::snprintf(buf, sizeof buf, "1 (%03u) %03u-%04u", area, exch, line); break;
    default: std::snprintf(buf, sizeof buf, "+1%03u%03u%04u", area, exch, line); break;
  }
  return buf;
}
constexpr int kPhoneStyles = 8;

int other_style(int style, Rng& rng) { return (style + 1 + static_cast<int>(rng.below(kPhoneStyles - 1))) % kPhoneStyles; }

// ---- generated entities ----

struct Org {
  std::string id;
  std::string name;
  std::string domain;
  std::int64_t add = 0, upd = 0;
};

enum class PersonRole {
  kNormal,
  kUnprovisioned,   // owned by user 8
  kEmailOriginal,
  kEmailDuplicate,
  kPhoneOriginal,
  kPhoneDuplicate,
  kPreexistingEmail,
  kPreexistingPhone,
  kSwitchboard,
  kDeleted,
};

struct Person {
  PersonRole role = PersonRole::kNormal;
  std::string id;
  std::string first, last;
  std::string email;   // primary, as written ("" = none)
  std::string email2;  // a second, non-primary address
  std::uint64_t phone_number = 0;
  std::string phone;   // as written ("" = none)
  int phone_style = 0;
  int org = -1;        // index into orgs
  int owner = 1;
  std::int64_t add = 0, upd = 0;
};

struct Deal {
  std::string id;
  int person = -1;
  int org = -1;
  bool queued = false;
  std::int64_t add = 0;
};

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) { manifest_.seed = seed; }

  Result<ReferenceManifest> run(const std::string& source_dir, const std::string& destination_dir) {
    CMG_ASSIGN_OR_RETURN(src_, SandboxCrm::create(source_dir, "pipedrive"));
    CMG_ASSIGN_OR_RETURN(dst_, SandboxCrm::create(destination_dir, "hubspot"));
    CMG_RETURN_IF_ERROR(users());
    CMG_RETURN_IF_ERROR(organizations());
    CMG_RETURN_IF_ERROR(persons());
    CMG_RETURN_IF_ERROR(destination_records());
    CMG_RETURN_IF_ERROR(deals());
    CMG_RETURN_IF_ERROR(notes());
    CMG_RETURN_IF_ERROR(activities());
    CMG_RETURN_IF_ERROR(finish_manifest());
    std::string path = source_dir + "/manifest.json";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << json::serialize(manifest_.to_json()) << "\n";
    out.close();
    if (!out) return io_error("cannot write the reference manifest " + path);
    return std::move(manifest_);
  }

 private:
  // A time in [lo, hi] with second precision, as Pipedrive shows them.
  std::int64_t time_between(std::int64_t lo, std::int64_t hi) {
    lo = std::max(lo, kStart);
    if (hi < lo) hi = lo;
    return rng_.between(lo / 1000, hi / 1000) * 1000;
  }
  // An update time: unchanged since creation for about half of the records.
  // A time up to `days` after `lo` (and not after the end of the scenario), so that children follow
  // their parents without piling up at the end of the range.
  std::int64_t within(std::int64_t lo, int days) { return time_between(lo, std::min(kEnd, lo + days * kDay)); }
  // An update time: unchanged since creation for about half of the records.
  std::int64_t update_after(std::int64_t add) { return rng_.chance(50) ? add : within(add, 365); }

  std::uint64_t new_phone_number() {
    for (;;) {
      std::uint64_t area = static_cast<std::uint64_t>(rng_.pick(kAreaCodes));
      auto exch = static_cast<std::uint64_t>(rng_.between(200, 999));
      if (exch % 100 == 11 || exch == 555) continue;  // N11 service codes and 555 are not real exchanges
      auto line = static_cast<std::uint64_t>(rng_.between(0, 9999));
      std::uint64_t n = area * 10000000 + exch * 10000 + line;
      if (phones_.insert(n).second) return n;
    }
  }

  std::string new_email(const std::string& first, const std::string& last, const std::string& domain) {
    std::string f = email_part(first), l = email_part(last);
    std::string local;
    switch (rng_.below(5)) {
      case 0: local = f + "." + l; break;
      case 1: local = f.substr(0, 1) + l; break;
      case 2: local = f + "_" + l; break;
      case 3: local = f + l.substr(0, 1); break;
      default: local = f + "." + l; break;
    }
    std::string email = local + "@" + domain;
    while (!emails_.insert(lower(email)).second)
      email = local + std::to_string(rng_.between(2, 999)) + "@" + domain;
    // Some exports keep the capitalisation people typed.
    return rng_.chance(10) ? title_case_email(email) : email;
  }

  std::string person_domain(int org) {
    return org >= 0 && rng_.chance(85) ? orgs_[static_cast<std::size_t>(org)].domain : std::string(rng_.pick(kFreeMail));
  }

  std::string address() {
    const City& c = rng_.pick(kCities);
    char buf[160];
    std::snprintf(buf, sizeof buf, "%d %s, %s, %s %05d", static_cast<int>(rng_.between(1, 9800)), rng_.pick(kStreets),
                  c.name, c.state, c.zip + static_cast<int>(rng_.below(20)));
    return buf;
  }

  static json::array pd_list(const std::string& value, const char* label, const std::string& second = {}) {
    json::array a;
    a.push_back(json::object{{"value", value}, {"primary", true}, {"label", value.empty() ? "" : label}});
    if (!second.empty()) a.push_back(json::object{{"value", second}, {"primary", false}, {"label", "home"}});
    return a;
  }

  static json::value id_or_null(const std::string& id) {
    return id.empty() ? json::value() : json::value(static_cast<std::int64_t>(std::stoll(id)));
  }
  json::value org_ref(int org) const {
    return org < 0 ? json::value() : id_or_null(orgs_[static_cast<std::size_t>(org)].id);
  }
  json::value person_ref(int person) const {
    return person < 0 ? json::value() : id_or_null(persons_[static_cast<std::size_t>(person)].id);
  }

  std::int64_t parent_time(int person, int org) const {
    std::int64_t t = kStart;
    if (person >= 0) t = std::max(t, persons_[static_cast<std::size_t>(person)].add);
    if (org >= 0) t = std::max(t, orgs_[static_cast<std::size_t>(org)].add);
    return t;
  }

  Status users() {
    for (const auto& u : kSourceUsers) CMG_RETURN_IF_ERROR(src_->set_user(User{u.id, u.email, u.name, true}));
    for (const auto& o : kOwners) CMG_RETURN_IF_ERROR(dst_->set_user(User{o.id, o.email, o.name, true}));
    for (const auto& u : kSourceUsers) {
      OwnerMatch m{u.id, "", ""};
      for (const auto& o : kOwners) {
        if (std::string(o.email) == u.email) {
          m = {u.id, o.id, "email"};
        } else if (lower(o.email) == lower(u.email)) {
          m = {u.id, o.id, "email_case"};
        } else if (std::string(o.name) == u.name && m.destination_owner_id.empty()) {
          m = {u.id, o.id, "name"};
        }
      }
      manifest_.owners.push_back(m);
    }
    manifest_.unprovisioned_user_id = std::to_string(kUnprovisionedUser);
    manifest_.reassign_owner_id = kReassignOwner;
    return Status::ok();
  }

  // Organisation names are unique by their core words (A + B), so no two differ only by a suffix
  // or punctuation that a name normaliser might drop.
  std::string new_org_name(std::string& domain) {
    for (;;) {
      std::size_t a = rng_.below(kOrgWordsA.size()), b = rng_.below(kOrgWordsB.size());
      if (!org_cores_.insert(a * 100 + b).second) continue;
      std::string suffix = rng_.pick(kOrgSuffixes);
      domain = email_part(kOrgWordsA[a]) + email_part(kOrgWordsB[b]) + (rng_.chance(80) ? ".com" : ".io");
      return std::string(kOrgWordsA[a]) + " " + kOrgWordsB[b] + (suffix.empty() ? "" : " " + suffix);
    }
  }

  Status organizations() {
    const std::size_t html = rng_.below(kOrgs);
    std::vector<NewRecord> rows;
    for (std::size_t i = 0; i < kOrgs; ++i) {
      Org o;
      if (i == html) {
        o.name = "Acme <b>Bold</b> & Co";
        o.domain = "acmebold.co";
      } else {
        o.name = new_org_name(o.domain);
      }
      o.add = time_between(kStart, kEnd - 30 * kDay);
      o.upd = update_after(o.add);
      json::object f;
      f["name"] = o.name;
      f["address"] = rng_.chance(80) ? json::value(address()) : json::value();
      f["owner_id"] = rng_.between(1, 7);
      f["visible_to"] = rng_.chance(90) ? "3" : "1";
      f["label"] = rng_.chance(15) ? json::value(rng_.between(1, 4)) : json::value();
      rows.push_back({std::move(f), o.upd, o.add});
      orgs_.push_back(std::move(o));
    }
    CMG_ASSIGN_OR_RETURN(auto ids, src_->insert_many("organizations", rows));
    for (std::size_t i = 0; i < ids.size(); ++i) orgs_[i].id = ids[i];
    manifest_.html_org_id = orgs_[html].id;

    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < kOrgs; ++i)
      if (i != html) candidates.push_back(i);
    rng_.shuffle(candidates);
    preexisting_orgs_.assign(candidates.begin(), candidates.begin() + kPreexistingOrgs);
    std::sort(preexisting_orgs_.begin(), preexisting_orgs_.end());
    switchboard_org_ = static_cast<int>(candidates[kPreexistingOrgs]);
    manifest_.switchboard_org_id = orgs_[static_cast<std::size_t>(switchboard_org_)].id;
    return Status::ok();
  }

  std::vector<PersonRole> person_roles() {
    std::vector<PersonRole> roles;
    auto add = [&](PersonRole r, int n) { roles.insert(roles.end(), static_cast<std::size_t>(n), r); };
    add(PersonRole::kUnprovisioned, kUnprovisionedPersons);
    add(PersonRole::kEmailOriginal, kEmailDuplicates);
    add(PersonRole::kEmailDuplicate, kEmailDuplicates);
    add(PersonRole::kPhoneOriginal, kPhoneDuplicates);
    add(PersonRole::kPhoneDuplicate, kPhoneDuplicates);
    add(PersonRole::kPreexistingEmail, kPreexistingByEmail);
    add(PersonRole::kPreexistingPhone, kPreexistingByPhone);
    add(PersonRole::kSwitchboard, kSwitchboardPersons);
    add(PersonRole::kDeleted, kDeletedPersons);
    add(PersonRole::kNormal, kPersons + kDeletedPersons - static_cast<int>(roles.size()));
    rng_.shuffle(roles);
    return roles;
  }

  Status persons() {
    const auto roles = person_roles();
    const std::uint64_t switchboard = new_phone_number();
    const int switchboard_style = static_cast<int>(rng_.below(kPhoneStyles));
    std::vector<int> normal_slots;
    for (std::size_t i = 0; i < roles.size(); ++i)
      if (roles[i] == PersonRole::kNormal) normal_slots.push_back(static_cast<int>(i));
    script_person_ = rng_.pick(normal_slots);
    persons_.resize(roles.size());
    for (std::size_t i = 0; i < roles.size(); ++i) {
      Person& p = persons_[i];
      p.role = roles[i];
      p.first = rng_.pick(kFirstNames);
      p.last = static_cast<int>(i) == script_person_ ? "Mallory" : rng_.pick(kLastNames);
      p.owner = p.role == PersonRole::kUnprovisioned ? kUnprovisionedUser : static_cast<int>(rng_.between(1, 7));
      p.org = p.role == PersonRole::kSwitchboard ? switchboard_org_
              : rng_.chance(85)                  ? static_cast<int>(rng_.below(orgs_.size()))
                                                 : -1;
      const bool normal = p.role == PersonRole::kNormal;
      if (!normal || rng_.chance(95)) p.email = new_email(p.first, p.last, person_domain(p.org));
      if (normal && rng_.chance(3)) p.email2 = new_email(p.first, p.last, rng_.pick(kFreeMail));
      if (p.role == PersonRole::kSwitchboard) {
        p.phone_number = switchboard;
        // The switchboard number, written as each person typed it, sometimes with their extension.
        p.phone = format_phone(switchboard, rng_.chance(50) ? switchboard_style : static_cast<int>(rng_.below(kPhoneStyles)));
        if (rng_.chance(50)) p.phone += " ext. " + std::to_string(rng_.between(100, 399));
      } else if (!normal || rng_.chance(92)) {
        p.phone_number = new_phone_number();
        p.phone_style = static_cast<int>(rng_.below(kPhoneStyles));
        p.phone = format_phone(p.phone_number, p.phone_style);
        if (normal && rng_.chance(5)) p.phone += rng_.chance(50) ? " x" + std::to_string(rng_.between(10, 999))
                                                                 : " ext. " + std::to_string(rng_.between(100, 9999));
      }
      p.add = within(parent_time(-1, p.org), 400);
      p.upd = update_after(p.add);
      if (static_cast<int>(i) == script_person_) p.last += "<script>alert('x')</script>";
    }
    pair_duplicates(PersonRole::kEmailOriginal, PersonRole::kEmailDuplicate, "email");
    pair_duplicates(PersonRole::kPhoneOriginal, PersonRole::kPhoneDuplicate, "phone");


    std::vector<NewRecord> rows;
    for (const Person& p : persons_) {
      json::object f;
      f["name"] = p.first + " " + p.last;
      f["first_name"] = p.first;
      f["last_name"] = p.last;
      f["email"] = pd_list(p.email, "work", p.email2);
      f["phone"] = pd_list(p.phone, "work");
      f["org_id"] = org_ref(p.org);
      f["owner_id"] = p.owner;
      f["label"] = json::value();
      f["visible_to"] = "3";
      rows.push_back({std::move(f), p.upd, p.add});
    }
    CMG_ASSIGN_OR_RETURN(auto ids, src_->insert_many("persons", rows));
    for (std::size_t i = 0; i < ids.size(); ++i) persons_[i].id = ids[i];
    for (const Person& p : persons_) {
      if (p.role == PersonRole::kDeleted) {
        CMG_ASSIGN_OR_RETURN(bool removed, src_->remove("persons", p.id));
        if (!removed) return internal_error("reference generator: deleted person " + p.id + " was not stored");
        manifest_.deleted_person_ids.push_back(p.id);
      }
      if (p.role == PersonRole::kUnprovisioned) manifest_.unprovisioned_owner_person_ids.push_back(p.id);
      if (p.role == PersonRole::kSwitchboard) manifest_.switchboard_person_ids.push_back(p.id);
    }
    manifest_.script_person_id = persons_[static_cast<std::size_t>(script_person_)].id;
    return Status::ok();
  }

  // Makes the k-th duplicate a messy copy of the k-th original (by position) and records the pair.
  void pair_duplicates(PersonRole original, PersonRole duplicate, const char* key) {
    std::vector<std::size_t> originals, duplicates;
    for (std::size_t i = 0; i < persons_.size(); ++i) {
      if (persons_[i].role == original) originals.push_back(i);
      if (persons_[i].role == duplicate) duplicates.push_back(i);
    }
    for (std::size_t k = 0; k < originals.size(); ++k) {
      const Person& o = persons_[originals[k]];
      Person& d = persons_[duplicates[k]];
      phones_.erase(d.phone_number);
      emails_.erase(lower(d.email));
      d.first = o.first;
      d.last = o.last;
      d.owner = o.owner;
      d.org = o.org;
      d.phone_number = o.phone_number;
      d.phone_style = other_style(o.phone_style, rng_);
      d.phone = format_phone(o.phone_number, d.phone_style);
      if (std::string(key) == "email") {
        switch (rng_.below(3)) {
          case 0: d.email = case_variant(o.email, rng_); break;
          case 1: d.email = " " + o.email + " "; break;
          default: d.email = case_variant(o.email, rng_) + " "; break;
        }
        // Real duplicates are rarely complete: one of them misses what the other has.
        switch (rng_.below(4)) {
          case 0: d.phone.clear(); d.phone_number = 0; break;
          case 1: d.org = -1; break;
          default: break;
        }
      } else {
        d.email.clear();
      }
      d.add = std::max(d.add, o.add);
      d.upd = std::max(d.upd, d.add);
      pending_pairs_.push_back({key, originals[k], duplicates[k]});
    }
  }

  Status destination_records() {
    // Companies: 40 source organisations in other case/spacing, 30 unrelated, in mixed order.
    struct Company {
      json::object fields;
      int org = -1;
      std::int64_t add = 0;
    };
    std::vector<Company> companies;
    for (std::size_t idx : preexisting_orgs_) {
      const Org& o = orgs_[idx];
      std::string name;
      switch (rng_.below(4)) {
        case 0: name = upper(o.name); break;
        case 1: name = lower(o.name); break;
        case 2: {
          name = o.name;
          name.insert(name.find(' '), " ");
          name += " ";
          break;
        }
        default: name = " " + lower(o.name); break;
      }
      companies.push_back({{{"name", name}, {"domain", o.domain}}, static_cast<int>(idx), 0});
    }
    for (int i = 0; i < kUnrelatedCompanies; ++i) {
      std::string domain;
      std::string name = new_org_name(domain);
      companies.push_back({{{"name", name}, {"domain", domain}}, -1, 0});
    }
    rng_.shuffle(companies);
    std::vector<NewRecord> rows;
    for (auto& c : companies) {
      c.fields["phone"] = rng_.chance(60) ? json::value(format_phone(new_phone_number(), 0)) : json::value();
      c.fields["hubspot_owner_id"] = rng_.pick(kOwners).id;
      c.add = time_between(kStart, kEnd - 60 * kDay);
      rows.push_back({c.fields, update_after(c.add), c.add});
    }
    CMG_ASSIGN_OR_RETURN(auto company_ids, dst_->insert_many("companies", rows));
    std::map<int, std::string> company_of_org;
    for (std::size_t i = 0; i < companies.size(); ++i) {
      if (companies[i].org < 0) continue;
      company_of_org[companies[i].org] = company_ids[i];
      manifest_.preexisting.push_back({"organizations", orgs_[static_cast<std::size_t>(companies[i].org)].id,
                                       "companies", company_ids[i], "name"});
    }

    // Contacts: 250 source persons by email (other case), 50 by phone only, 200 unrelated.
    struct Contact {
      json::object fields;
      int person = -1;
      const char* key = "";
    };
    std::vector<Contact> contacts;
    for (std::size_t i = 0; i < persons_.size(); ++i) {
      const Person& p = persons_[i];
      if (p.role != PersonRole::kPreexistingEmail && p.role != PersonRole::kPreexistingPhone) continue;
      json::object f;
      const bool by_email = p.role == PersonRole::kPreexistingEmail;
      if (by_email) f["email"] = case_variant(p.email, rng_);
      f["firstname"] = p.first;
      f["lastname"] = p.last;
      int style = rng_.chance(50) ? 7 : static_cast<int>(rng_.below(kPhoneStyles));
      if (!by_email && style == p.phone_style) style = other_style(style, rng_);
      if (!by_email || rng_.chance(50)) f["phone"] = format_phone(p.phone_number, style);
      if (p.org >= 0) {
        f["company"] = orgs_[static_cast<std::size_t>(p.org)].name;
        if (auto it = company_of_org.find(p.org); it != company_of_org.end()) f["associations.companies"] = it->second;
      }
      contacts.push_back({std::move(f), static_cast<int>(i), by_email ? "email" : "phone"});
    }
    for (int i = 0; i < kUnrelatedContacts; ++i) {
      json::object f;
      std::string first = rng_.pick(kFirstNames), last = rng_.pick(kLastNames);
      f["email"] = new_email(first, last, rng_.chance(50) ? std::string(rng_.pick(kFreeMail))
                                                           : "example-" + email_part(rng_.pick(kOrgWordsA)) + ".com");
      f["firstname"] = first;
      f["lastname"] = last;
      if (rng_.chance(80)) f["phone"] = format_phone(new_phone_number(), static_cast<int>(rng_.below(kPhoneStyles)));
      contacts.push_back({std::move(f), -1, ""});
    }
    rng_.shuffle(contacts);
    rows.clear();
    for (auto& c : contacts) {
      c.fields["lifecyclestage"] = rng_.pick(kLifecycle);
      c.fields["hubspot_owner_id"] = rng_.pick(kOwners).id;
      std::int64_t add = time_between(kStart, kEnd - 60 * kDay);
      rows.push_back({c.fields, update_after(add), add});
    }
    CMG_ASSIGN_OR_RETURN(auto contact_ids, dst_->insert_many("contacts", rows));
    for (std::size_t i = 0; i < contacts.size(); ++i) {
      if (contacts[i].person < 0) continue;
      manifest_.preexisting.push_back({"persons", persons_[static_cast<std::size_t>(contacts[i].person)].id,
                                       "contacts", contact_ids[i], contacts[i].key});
    }
    std::sort(manifest_.preexisting.begin(), manifest_.preexisting.end(), [](const auto& a, const auto& b) {
      return std::make_pair(a.source_object, std::stoll(a.source_id)) <
             std::make_pair(b.source_object, std::stoll(b.source_id));
    });
    return Status::ok();
  }

  bool person_usable(int i) const { return persons_[static_cast<std::size_t>(i)].role != PersonRole::kDeleted; }
  bool person_queued(int i) const {
    return i >= 0 && persons_[static_cast<std::size_t>(i)].role == PersonRole::kUnprovisioned;
  }

  Status deals() {
    enum class Role { kNormal, kOnHold, kUnprovisioned };
    std::vector<Role> roles(kDeals, Role::kNormal);
    std::fill(roles.begin(), roles.begin() + kOnHoldDeals, Role::kOnHold);
    std::fill(roles.begin() + kOnHoldDeals, roles.begin() + kOnHoldDeals + kUnprovisionedDeals, Role::kUnprovisioned);
    rng_.shuffle(roles);

    std::vector<int> regular, unprovisioned;
    for (int i = 0; i < static_cast<int>(persons_.size()); ++i) {
      if (!person_usable(i)) continue;
      (person_queued(i) ? unprovisioned : regular).push_back(i);
    }
    std::vector<NewRecord> rows;
    for (Role role : roles) {
      Deal d;
      if (role == Role::kUnprovisioned) {
        d.person = rng_.pick(unprovisioned);
      } else if (rng_.chance(90)) {
        d.person = rng_.pick(regular);
      }
      const int person_org = d.person >= 0 ? persons_[static_cast<std::size_t>(d.person)].org : -1;
      if (d.person < 0 || rng_.chance(70)) d.org = person_org >= 0 ? person_org : static_cast<int>(rng_.below(orgs_.size()));
      d.queued = role != Role::kNormal;

      std::int64_t pipeline = 1, stage = 0;
      if (role == Role::kOnHold) {
        pipeline = 2;
        stage = 9;
      } else if (rng_.chance(75)) {
        stage = rng_.between(1, 5);
      } else {
        pipeline = 2;
        stage = rng_.between(6, 8);
      }
      std::string status = "open";
      if (role != Role::kOnHold) {
        auto roll = rng_.below(100);
        status = roll < 65 ? "open" : roll < 85 ? "won" : "lost";
      }
      d.add = within(parent_time(d.person, d.org), 300);
      const std::int64_t upd = update_after(d.add);
      std::string title = d.org >= 0 ? orgs_[static_cast<std::size_t>(d.org)].name
                                     : persons_[static_cast<std::size_t>(d.person)].last;
      title += std::string(" \xE2\x80\x93 ") + rng_.pick(kProducts);  // en dash, as people type titles
      json::object f;
      f["title"] = title;
      std::int64_t hundreds = rng_.between(10, 2500);
      f["value"] = rng_.chance(70) ? json::value(hundreds * 100) : json::value(static_cast<double>(hundreds) * 100 + 0.5);
      auto cur = rng_.below(100);
      f["currency"] = cur < 80 ? "USD" : cur < 92 ? "EUR" : "GBP";
      f["status"] = status;
      f["pipeline_id"] = pipeline;
      f["stage_id"] = stage;
      f["person_id"] = person_ref(d.person);
      f["org_id"] = org_ref(d.org);
      f["user_id"] = rng_.between(1, 7);
      f["expected_close_date"] =
          rng_.chance(80) ? json::value(internal::format_date(within(d.add, 180))) : json::value();
      f["probability"] = rng_.chance(50) ? json::value() : json::value(rng_.between(1, 9) * 10);
      rows.push_back({std::move(f), upd, d.add});
      deals_.push_back(d);
      deal_roles_.push_back(static_cast<int>(role));
    }
    CMG_ASSIGN_OR_RETURN(auto ids, src_->insert_many("deals", rows));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      deals_[i].id = ids[i];
      if (deal_roles_[i] == static_cast<int>(Role::kOnHold)) manifest_.unmapped_stage_deal_ids.push_back(ids[i]);
      if (deal_roles_[i] == static_cast<int>(Role::kUnprovisioned)) manifest_.parent_queued_deal_ids.push_back(ids[i]);
    }
    return Status::ok();
  }

  std::string note_text(int person) {
    const std::string first = person >= 0 ? persons_[static_cast<std::size_t>(person)].first : std::string("the team");
    switch (rng_.below(5)) {
      case 0:
        return "<p>Spoke with " + first + " about " + rng_.pick(kTopics) + ". Next step: " + rng_.pick(kNextSteps) +
               ".</p>";
      case 1: return "Left a voicemail for " + first + ".";
      case 2:
        return "<p>" + first + " asked for a revised quote.<br>Budget approved for Q" +
               std::to_string(rng_.between(1, 4)) + ".</p>";
      case 3:
        return "Intro call: team of " + std::to_string(rng_.between(3, 250)) + ", main concern is " +
               rng_.pick(kTopics) + ".";
      default: return std::string("Follow-up: ") + rng_.pick(kNextSteps) + " (" + rng_.pick(kTopics) + ").";
    }
  }

  Status notes() {
    enum class Role { kPerson, kDeal, kOrphan };
    std::vector<Role> roles(kNotes, Role::kPerson);
    std::fill(roles.begin(), roles.begin() + kDealNotes, Role::kDeal);
    std::fill(roles.begin() + kDealNotes, roles.begin() + kDealNotes + kDeletedPersons, Role::kOrphan);
    rng_.shuffle(roles);
    std::vector<int> live, deleted;
    for (int i = 0; i < static_cast<int>(persons_.size()); ++i) (person_usable(i) ? live : deleted).push_back(i);
    std::size_t next_deleted = 0;

    std::vector<NewRecord> rows;
    std::vector<int> kinds;  // 0 fine, 1 parent queued, 2 orphan
    for (Role role : roles) {
      int person = -1, org = -1, deal = -1, kind = 0;
      if (role == Role::kOrphan) {
        person = deleted[next_deleted++ % deleted.size()];
        kind = 2;
      } else if (role == Role::kPerson) {
        person = rng_.pick(live);
        if (rng_.chance(50)) org = persons_[static_cast<std::size_t>(person)].org;
        kind = person_queued(person) ? 1 : 0;
      } else {
        deal = static_cast<int>(rng_.below(deals_.size()));
        const Deal& d = deals_[static_cast<std::size_t>(deal)];
        person = d.person;
        org = d.org;
        kind = d.queued || person_queued(person) ? 1 : 0;
      }
      std::int64_t lo = parent_time(person, org);
      if (deal >= 0) lo = std::max(lo, deals_[static_cast<std::size_t>(deal)].add);
      const std::int64_t add = within(lo, 240);
      json::object f;
      f["content"] = note_text(person);
      f["person_id"] = person_ref(person);
      f["deal_id"] = deal >= 0 ? id_or_null(deals_[static_cast<std::size_t>(deal)].id) : json::value();
      f["org_id"] = org_ref(org);
      f["user_id"] = rng_.between(1, 7);
      rows.push_back({std::move(f), update_after(add), add});
      kinds.push_back(kind);
    }
    CMG_ASSIGN_OR_RETURN(auto ids, src_->insert_many("notes", rows));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (kinds[i] == 1) manifest_.parent_queued_note_ids.push_back(ids[i]);
      if (kinds[i] == 2) manifest_.orphan_note_ids.push_back(ids[i]);
    }
    return Status::ok();
  }

  Status activities() {
    static const std::array<const char*, 4> kTypes = {"call", "meeting", "task", "email"};
    std::vector<int> types;
    for (int t = 0; t < 4; ++t) types.insert(types.end(), kActivitiesPerType, t);
    rng_.shuffle(types);
    std::vector<int> live, queued_deals;
    for (int i = 0; i < static_cast<int>(persons_.size()); ++i)
      if (person_usable(i)) live.push_back(i);
    for (int i = 0; i < static_cast<int>(deals_.size()); ++i)
      if (deals_[static_cast<std::size_t>(i)].queued) queued_deals.push_back(i);

    std::vector<NewRecord> rows;
    std::vector<bool> queued;
    for (std::size_t i = 0; i < types.size(); ++i) {
      const std::string type = kTypes[static_cast<std::size_t>(types[i])];
      int person = -1, deal = -1;
      auto roll = rng_.below(100);
      // Every 50th activity sits on a queued deal, so each seed has some waiting with their parent.
      if (i % 50 == 7) {
        deal = rng_.pick(queued_deals);
        if (rng_.chance(50)) person = deals_[static_cast<std::size_t>(deal)].person;
      } else if (roll < 35) {
        person = rng_.pick(live);
      } else {
        deal = static_cast<int>(rng_.below(deals_.size()));
        if (roll >= 60) person = deals_[static_cast<std::size_t>(deal)].person;
      }
      const int org = deal >= 0 ? deals_[static_cast<std::size_t>(deal)].org
                                : persons_[static_cast<std::size_t>(person)].org;
      std::int64_t lo = parent_time(person, org);
      if (deal >= 0) lo = std::max(lo, deals_[static_cast<std::size_t>(deal)].add);
      const std::int64_t add = within(lo, 240);
      const std::string who = person >= 0 ? persons_[static_cast<std::size_t>(person)].first : "the buying committee";
      std::string subject;
      if (type == "call") subject = "Call " + who + " about " + rng_.pick(kTopics);
      if (type == "meeting") subject = "Demo with " + who;
      if (type == "task") subject = std::string(rng_.pick(kNextSteps)) + " for " + who;
      if (type == "email") subject = "Re: " + std::string(rng_.pick(kTopics));
      subject[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(subject[0])));
      json::object f;
      f["type"] = type;
      f["subject"] = subject;
      f["note"] = rng_.chance(60) ? json::value(note_text(person)) : json::value("");
      f["due_date"] = internal::format_date(within(add, 21));
      char due_time[8];
      std::snprintf(due_time, sizeof due_time, "%02d:%02d", static_cast<int>(rng_.between(8, 17)),
                    static_cast<int>(rng_.below(4) * 15));
      f["due_time"] = rng_.chance(80) ? std::string(due_time) : std::string();
      f["done"] = rng_.chance(60);
      f["person_id"] = person_ref(person);
      f["deal_id"] = deal >= 0 ? id_or_null(deals_[static_cast<std::size_t>(deal)].id) : json::value();
      f["org_id"] = org_ref(org);
      f["user_id"] = rng_.between(1, 7);
      rows.push_back({std::move(f), update_after(add), add});
      queued.push_back(person_queued(person) || (deal >= 0 && deals_[static_cast<std::size_t>(deal)].queued));
    }
    CMG_ASSIGN_OR_RETURN(auto ids, src_->insert_many("activities", rows));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      ExpectedOutcome& e = manifest_.expected_activities[kTypes[static_cast<std::size_t>(types[i])]];
      e.destination = std::string(kTypes[static_cast<std::size_t>(types[i])]) + "s";
      ++e.source;
      if (queued[i]) {
        manifest_.parent_queued_activity_ids.push_back(ids[i]);
        ++e.queued;
        ++e.queued_by_reason["parent_queued"];
      } else {
        ++e.written;
      }
    }
    return Status::ok();
  }

  Status finish_manifest() {
    for (const auto& p : pending_pairs_) {
      manifest_.duplicate_pairs.push_back(
          {p.key, persons_[p.original].id, persons_[p.duplicate].id});
    }
    for (const char* object : {"organizations", "persons", "deals", "notes", "activities"}) {
      CMG_ASSIGN_OR_RETURN(manifest_.source_counts[object], src_->count(object));
    }
    CMG_ASSIGN_OR_RETURN(auto dst_schema, dst_->schema());
    for (const auto& [name, obj] : dst_schema.objects) {
      CMG_ASSIGN_OR_RETURN(manifest_.destination_counts[name], dst_->count(name));
    }

    auto outcome = [](const char* destination, std::int64_t source, std::int64_t merged,
                      std::map<std::string, std::int64_t> queued_by_reason) {
      ExpectedOutcome e;
      e.destination = destination;
      e.source = source;
      e.merged = merged;
      for (const auto& [reason, n] : queued_by_reason) e.queued += n;
      e.queued_by_reason = std::move(queued_by_reason);
      e.written = source - e.merged - e.queued - e.skipped;
      return e;
    };
    std::int64_t preexisting_orgs = 0, preexisting_persons = 0;
    for (const auto& m : manifest_.preexisting) (m.source_object == "persons" ? preexisting_persons : preexisting_orgs)++;
    const auto n = [](const std::vector<std::string>& v) { return static_cast<std::int64_t>(v.size()); };
    manifest_.expected["organizations"] = outcome("companies", manifest_.source_counts["organizations"], preexisting_orgs, {});
    manifest_.expected["persons"] =
        outcome("contacts", manifest_.source_counts["persons"],
                static_cast<std::int64_t>(manifest_.duplicate_pairs.size()) + preexisting_persons,
                {{"owner_unprovisioned", n(manifest_.unprovisioned_owner_person_ids)}});
    manifest_.expected["deals"] = outcome("deals", manifest_.source_counts["deals"], 0,
                                          {{"unmapped_value", n(manifest_.unmapped_stage_deal_ids)},
                                           {"parent_queued", n(manifest_.parent_queued_deal_ids)}});
    manifest_.expected["notes"] = outcome("notes", manifest_.source_counts["notes"], 0,
                                          {{"parent_queued", n(manifest_.parent_queued_note_ids)},
                                           {"orphan_reference", n(manifest_.orphan_note_ids)}});
    manifest_.expected["activities"] = outcome("calls|meetings|tasks|emails", manifest_.source_counts["activities"], 0,
                                               {{"parent_queued", n(manifest_.parent_queued_activity_ids)}});
    return Status::ok();
  }

  struct PendingPair {
    const char* key;
    std::size_t original;
    std::size_t duplicate;
  };

  static constexpr std::int64_t kDay = 86400000;
  const std::int64_t kStart = civil_to_ms(2023, 1, 1);
  const std::int64_t kEnd = civil_to_ms(2025, 6, 30, 23, 59, 59);

  Rng rng_;
  ReferenceManifest manifest_;
  std::shared_ptr<SandboxCrm> src_, dst_;
  std::vector<Org> orgs_;
  std::vector<Person> persons_;
  std::vector<Deal> deals_;
  std::vector<int> deal_roles_;
  std::vector<std::size_t> preexisting_orgs_;
  std::vector<PendingPair> pending_pairs_;
  int switchboard_org_ = 0;
  int script_person_ = 0;
  std::set<std::uint64_t> phones_;
  std::set<std::string> emails_;  // lower-cased
  std::set<std::size_t> org_cores_;
};

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.push_back(json::string(s));
  return a;
}

json::object outcome_json(const ExpectedOutcome& e) {
  json::object reasons;
  for (const auto& [r, n] : e.queued_by_reason) reasons[r] = n;
  return {{"destination", e.destination}, {"source", e.source},   {"written", e.written},
          {"merged", e.merged},           {"queued", e.queued},   {"skipped", e.skipped},
          {"queued_by_reason", std::move(reasons)}};
}

}  // namespace

json::object ReferenceManifest::to_json() const {
  json::object o;
  o["seed"] = seed;
  json::object sc, dc;
  for (const auto& [k, v] : source_counts) sc[k] = v;
  for (const auto& [k, v] : destination_counts) dc[k] = v;
  o["source_counts"] = std::move(sc);
  o["destination_counts"] = std::move(dc);
  json::array owner_list;
  for (const auto& m : owners)
    owner_list.push_back(json::object{{"source_user_id", m.source_user_id},
                                      {"destination_owner_id", m.destination_owner_id},
                                      {"match", m.match}});
  o["owners"] = std::move(owner_list);
  o["unprovisioned_user_id"] = unprovisioned_user_id;
  o["reassign_owner_id"] = reassign_owner_id;
  o["unprovisioned_owner_person_ids"] = strings(unprovisioned_owner_person_ids);
  o["unmapped_stage_deal_ids"] = strings(unmapped_stage_deal_ids);
  o["parent_queued_deal_ids"] = strings(parent_queued_deal_ids);
  o["deleted_person_ids"] = strings(deleted_person_ids);
  o["orphan_note_ids"] = strings(orphan_note_ids);
  o["parent_queued_note_ids"] = strings(parent_queued_note_ids);
  o["parent_queued_activity_ids"] = strings(parent_queued_activity_ids);
  o["parent_queued_notes"] = parent_queued_note_ids.size();
  o["parent_queued_activities"] = parent_queued_activity_ids.size();
  json::array pairs;
  for (const auto& p : duplicate_pairs)
    pairs.push_back(json::object{{"key", p.key}, {"original_id", p.original_id}, {"duplicate_id", p.duplicate_id}});
  o["duplicate_pairs"] = std::move(pairs);
  json::array pre;
  for (const auto& m : preexisting)
    pre.push_back(json::object{{"source_object", m.source_object},
                               {"source_id", m.source_id},
                               {"destination_object", m.destination_object},
                               {"destination_id", m.destination_id},
                               {"key", m.key}});
  o["preexisting"] = std::move(pre);
  o["switchboard_org_id"] = switchboard_org_id;
  o["switchboard_person_ids"] = strings(switchboard_person_ids);
  o["html_org_id"] = html_org_id;
  o["script_person_id"] = script_person_id;
  json::object exp, exp_act;
  for (const auto& [k, e] : expected) exp[k] = outcome_json(e);
  for (const auto& [k, e] : expected_activities) exp_act[k] = outcome_json(e);
  o["expected"] = std::move(exp);
  o["expected_activities"] = std::move(exp_act);
  return o;
}

Result<ReferenceManifest> seed_reference(const std::string& source_dir, const std::string& destination_dir,
                                         std::uint64_t seed) {
  Generator g(seed);
  return g.run(source_dir, destination_dir);
}

}  // namespace cmg::sandbox
