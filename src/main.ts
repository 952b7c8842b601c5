import { runMain, runPost } from './run.js'
import { isPost } from './state.js'

// One bundle for both steps of action.yml; saved state tells them apart.
await (isPost() ? runPost() : runMain())
