import { toolPath, type TestTool } from './tools.js'

const required: TestTool[] = ['node', 'cosign', 'registry']

/** Fails the run up front, naming the install command, when a real tool is missing. */
export default function setup(): void {
  for (const tool of required) toolPath(tool)
  if (Number(process.versions.node.split('.')[0]) < 24) {
    throw new Error(
      `tests run on Node 24 (the action's runtime), this is ${process.version}: use \`npm test\`, which runs them on .tools/bin/node`,
    )
  }
}
