import { TEST_TOOLS, toolPath } from './tools.js'

/** Fails the run up front, naming the install command, when a real tool is missing. */
export default function setup(): void {
  for (const tool of TEST_TOOLS) toolPath(tool)
  if (Number(process.versions.node.split('.')[0]) < 24) {
    throw new Error(
      `tests run on Node 24 (the action's runtime), this is ${process.version}: use \`npm test\`, which runs them on .tools/bin/node`,
    )
  }
}
