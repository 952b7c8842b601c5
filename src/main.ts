import { runMain, runPost } from './run.js'
import { isPost } from './state.js'

// One bundle for both steps of action.yml; saved state tells them apart.
await (isPost() ? runPost() : runMain())
// The step is over: a download no longer needed (ec, when the run failed
// before the policy phase) must not hold the process until it gives up.
process.exit()
