// Adapters from the C connector vtables (sys/source.h, sys/destination.h) to cmg::Source and
// cmg::Destination.
#pragma once

#include <memory>

#include "capi/capi_internal.hpp"
#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/sys/destination.h"
#include "crmmigrate/sys/source.h"

namespace cmg::capi {

/// Adapts `vt` (copied) with its user data. Errors: kInvalidArgument for an unknown vtable version
/// or a missing method; `user_data` is released (destroy called) in that case too.
Result<std::shared_ptr<Source>> make_c_source(const cmg_source_vtable* vt, std::unique_ptr<UserData> user_data);
Result<std::shared_ptr<Destination>> make_c_destination(const cmg_destination_vtable* vt,
                                                        std::unique_ptr<UserData> user_data);

}  // namespace cmg::capi
