/**
 * What the action builds the trainer image from when no `trainer-image` is
 * given: its own Containerfile and trainer/ folder (the action's checkout on
 * the runner, never the user's workspace), named by a hash of exactly those
 * bytes. The same inputs give the same tag, so a re-run on a kept cluster
 * finds the image in the embedded registry and skips the build.
 */
import { createHash } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises'
import path from 'node:path'

/** The Containerfile's build argument that swaps its base image. */
export const BASE_IMAGE_ARG = 'BASE_IMAGE'

export interface TrainerBuildContext {
  /** Files of the build, relative to the action's root, sorted: `Containerfile`, `trainer/...`. */
  files: string[]
  /** The image tag: `build-` and 16 hex digits of the inputs' sha256. */
  tag: string
  /** `--build-arg`s of the build (the base image, when one is given). */
  buildArgs: Record<string, string>
}

/** What is never part of the image: caches and dotfiles a checkout may hold. */
function isBuildInput(name: string): boolean {
  return !name.startsWith('.') && name !== '__pycache__' && !name.endsWith('.pyc')
}

async function filesUnder(root: string, dir: string): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(path.join(root, dir), { withFileTypes: true })) {
    if (!isBuildInput(entry.name)) continue
    const relative = path.posix.join(dir, entry.name)
    if (entry.isDirectory()) found.push(...(await filesUnder(root, relative)))
    else if (entry.isFile()) found.push(relative)
  }
  return found
}

/**
 * The build's inputs under `root` and their tag. The hash covers each file's
 * path and bytes and the base image override, so changing any of them, and
 * nothing else, names a new image.
 */
export async function trainerBuildContext(
  root: string,
  baseImage?: string,
): Promise<TrainerBuildContext> {
  const files = ['Containerfile', ...(await filesUnder(root, 'trainer'))].sort()
  const hash = createHash('sha256')
  for (const file of files) {
    const content = await readFile(path.join(root, file))
    hash.update(`${file}\0${content.length}\0`).update(content)
  }
  const buildArgs: Record<string, string> = baseImage ? { [BASE_IMAGE_ARG]: baseImage } : {}
  for (const [name, value] of Object.entries(buildArgs))
    hash.update(`--build-arg ${name}=${value}\0`)
  return { files, tag: `build-${hash.digest('hex').slice(0, 16)}`, buildArgs }
}

/**
 * Copies the build's files into a fresh folder under `workDir`: the build
 * context holds what the tag was computed from and nothing else (no
 * node_modules, no user files), which also keeps it small to send.
 */
export async function stageBuildContext(
  root: string,
  context: TrainerBuildContext,
  workDir: string,
): Promise<string> {
  const dir = await mkdtemp(path.join(workDir, 'trainer-build-'))
  for (const file of context.files) {
    const target = path.join(dir, file)
    await mkdir(path.dirname(target), { recursive: true })
    await copyFile(path.join(root, file), target)
  }
  return dir
}
