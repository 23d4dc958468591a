// Migration::state_env: read access to the state for tools running alongside (lib/web).
#include "crmmigrate/store/lmdb_env.hpp"
#include "pipeline_internal.hpp"

namespace cmg {

const store::Env& Migration::state_env() const { return *impl_->env; }

}  // namespace cmg
