/**
 * The real Tekton Pipelines release, made here from its Go module at the
 * version the action pins (test/harness/releases/tekton-pipeline.sh; how it
 * is made, cached, pushed and served: built-release.ts).
 */
import { tektonPipelinesVersion } from '../../../src/versions.js'
import { builtRelease, type BuiltRelease } from './built-release.js'

export { RELEASE_REGISTRY, type NamespacedName } from './built-release.js'
export type TektonPipelineRelease = BuiltRelease

/** Read, push and publish it (built-release.ts). */
export const tektonPipeline = builtRelease({
  name: 'tekton-pipeline',
  component: 'pipeline',
  info: { namespace: 'tekton-pipelines', name: 'pipelines-info' },
  check: (release) => {
    if (release.version !== tektonPipelinesVersion) {
      throw new Error(
        `the Tekton Pipelines release built here is ${release.version}, the action pins ${tektonPipelinesVersion}: run \`npm run test-tools\` (scripts/test-tools.sh)`,
      )
    }
  },
})

/** Where test-tools.sh links the release it made. */
export const TEKTON_PIPELINE_DIR = tektonPipeline.dir
export const readTektonPipelineRelease = tektonPipeline.read
export const pushTektonPipelineRelease = tektonPipeline.push
export const publishTektonPipelineRelease = tektonPipeline.publish
