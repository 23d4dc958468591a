// Validation against the destination's schema (DESIGN §1 "validate"): required fields, picklist
// options, types, lengths, email format, owners. Nothing invalid is sent; every failure becomes a
// Problem with the field, the offending value, the rule and a suggestion where one exists.
#pragma once

#include <memory>
#include <vector>

#include <boost/json/object.hpp>

#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/core/schema.hpp"

namespace cmg {

/// A pluggable validator (DESIGN §3): adds problems for a record about to be written.
class RecordValidator {
 public:
  virtual ~RecordValidator() = default;
  /// `fields` are the destination fields to be sent; `is_create` is false for updates (merges),
  /// where only the fields present are checked.
  virtual void validate(const ObjectSchema& object, const Schema& schema, const boost::json::object& fields,
                        bool is_create, std::vector<Problem>& problems) const = 0;
};

/// The built-in schema validator.
class SchemaValidator final : public RecordValidator {
 public:
  void validate(const ObjectSchema& object, const Schema& schema, const boost::json::object& fields, bool is_create,
                std::vector<Problem>& problems) const override;
};

}  // namespace cmg
