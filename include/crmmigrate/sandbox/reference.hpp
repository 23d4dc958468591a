// The reference scenario (DESIGN intro, ../shared/seed/): a Pipedrive-shaped source sandbox and a
// HubSpot-shaped destination sandbox filled deterministically from a seed, plus a manifest of what
// the generator planted — counts, the records that must be queued and why, duplicate pairs,
// pre-existing matches and the expected outcome per object for a run with the reference config
// before any fixes. The manifest is the generator's own bookkeeping, never computed by running the
// pipeline, so tests can check the pipeline against it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "crmmigrate/core/status.hpp"

namespace cmg::sandbox {

/// Two source records of the same object that are the same person.
struct DuplicatePair {
  std::string key;           // "email" or "phone": the key they share once normalised
  std::string original_id;   // the record carrying the key in full (email and phone)
  std::string duplicate_id;  // the messier copy (different case/spacing/format, blanks)
};

/// A source record that already exists in the destination.
struct PreexistingMatch {
  std::string source_object;       // "organizations", "persons"
  std::string source_id;
  std::string destination_object;  // "companies", "contacts"
  std::string destination_id;
  std::string key;                 // "name", "email" or "phone"
};

/// How a source user maps to a destination owner.
struct OwnerMatch {
  std::string source_user_id;
  std::string destination_owner_id;  // "" when the user has no destination owner
  std::string match;                 // "email", "email_case" (same address, other letter case), "name", ""
};

/// Expected result of one source object in a run with the reference config, before any fixes.
struct ExpectedOutcome {
  std::string destination;  // destination object(s), e.g. "contacts" or "calls|meetings|tasks|emails"
  std::int64_t source = 0;
  std::int64_t written = 0;
  std::int64_t merged = 0;
  std::int64_t queued = 0;
  std::int64_t skipped = 0;
  std::map<std::string, std::int64_t> queued_by_reason;  // DESIGN §1 reason → records
};

struct ReferenceManifest {
  std::uint64_t seed = 0;
  std::map<std::string, std::int64_t> source_counts;       // Pipedrive object → records
  std::map<std::string, std::int64_t> destination_counts;  // HubSpot object → records already there
  std::vector<OwnerMatch> owners;                          // one per source user, in id order
  std::string unprovisioned_user_id;                       // the source user without an owner ("8")
  std::string reassign_owner_id;  // the HubSpot owner a reviewer assigns that user's contacts to

  std::vector<std::string> unprovisioned_owner_person_ids;  // the persons owned by that user
  std::vector<std::string> unmapped_stage_deal_ids;         // deals in pipeline 2 stage 9 "On Hold"
  std::vector<std::string> parent_queued_deal_ids;          // deals whose person is one of the above
  std::vector<std::string> deleted_person_ids;              // ids that existed and were deleted
  std::vector<std::string> orphan_note_ids;                 // notes whose person_id is a deleted id
  std::vector<std::string> parent_queued_note_ids;          // notes on a queued person or deal
  std::vector<std::string> parent_queued_activity_ids;      // activities on a queued person or deal
  std::vector<DuplicatePair> duplicate_pairs;               // persons duplicated inside the source
  std::vector<PreexistingMatch> preexisting;                // source records already in HubSpot
  std::string switchboard_org_id;                           // the org whose phone several persons share
  std::vector<std::string> switchboard_person_ids;          // same phone, different emails: not duplicates
  std::string html_org_id;                                  // name contains HTML
  std::string script_person_id;                             // last name contains a <script> tag

  std::map<std::string, ExpectedOutcome> expected;              // by source object
  std::map<std::string, ExpectedOutcome> expected_activities;   // by activity type: call, meeting, task, email

  boost::json::object to_json() const;
};

/// Creates a "pipedrive" sandbox in `source_dir` and a "hubspot" sandbox in `destination_dir`, fills
/// them with the reference scenario generated from `seed` (same seed → identical records), and writes
/// the manifest to `<source_dir>/manifest.json`. Both directories must not hold a sandbox yet.
///
/// Source: users 1–8; 600 organizations; 4,200 persons (120 duplicates by email, 30 by phone only,
/// 34 owned by user 8 "Morgan Blake", who has no HubSpot owner); 1,800 deals (140 in stage 9 "On
/// Hold", 20 on user 8's persons); 6,000 notes (12 on deleted persons); 400 activities (100 per
/// type). Destination: 9 owners (users 1–6 by email, one in another letter case; user 7 by name; 2
/// more), 70 companies (40 are source organizations in other case/spacing), 500 contacts (250
/// source persons by email in other case, 50 by phone only without email).
///
/// Errors: kAlreadyExists when a directory already holds a sandbox, kIO (manifest file),
/// kIO/kStorage (LMDB). Not thread-safe with other users of the same directories.
Result<ReferenceManifest> seed_reference(const std::string& source_dir, const std::string& destination_dir,
                                         std::uint64_t seed = 42);

}  // namespace cmg::sandbox
