import { chromiumPath } from './browser.js'
import { ensureDockerDaemon, loadTrainerBaseImage } from './docker.js'
import { TEST_TOOLS, toolPath } from './tools.js'

/**
 * Fails the run up front, naming the install command, when a real tool is
 * missing; starts a Docker daemon when none answers and loads the trainer
 * base image into it. The teardown stops the daemon it started.
 */
export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  for (const tool of TEST_TOOLS) toolPath(tool)
  // Draws the job summary's diagram (test/summary-diagram.test.ts).
  chromiumPath()
  if (Number(process.versions.node.split('.')[0]) < 24) {
    throw new Error(
      `tests run on Node 24 (the action's runtime), this is ${process.version}: use \`npm test\`, which runs them on .tools/bin/node`,
    )
  }
  const stopDocker = await ensureDockerDaemon()
  try {
    await loadTrainerBaseImage()
  } catch (err) {
    await stopDocker?.()
    throw err
  }
  return stopDocker
}
