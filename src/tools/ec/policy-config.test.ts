import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { UserError } from '../../errors.js'
import { writePolicyWithRuleData } from './policy-config.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ec-policy-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const ruleData = {
  allowed_dataset_prefixes: ['registry.local:5000/datasets/', 'quay.io/mmortari/'],
  min_accuracy: 0.9,
}

async function config(name: string, text: string): Promise<string> {
  const file = path.join(dir, name)
  await writeFile(file, text)
  return file
}

describe('writePolicyWithRuleData', () => {
  it('adds the rule data, lists and numbers as they are, to every source of a bare spec', async () => {
    const yaml = [
      'sources:',
      '  - name: model',
      '    policy: [./policy/rules]',
      '    ruleData:',
      '      min_accuracy: 0.5',
      '      kept: yes',
      '  - policy: [./policy/more]',
      'publicKey: k8s://tekton-chains/signing-secrets',
      '',
    ].join('\n')
    const user = await config('config.yaml', yaml)

    const copy = await writePolicyWithRuleData(user, ruleData, dir)

    expect(copy).toBe(path.join(dir, 'config.rule-data.json'))
    expect(JSON.parse(await readFile(copy, 'utf8'))).toEqual({
      sources: [
        {
          name: 'model',
          policy: ['./policy/rules'],
          // Given entries win over the file's, as with ec's --extra-rule-data;
          // `yes` is read as ec reads it (YAML 1.1).
          ruleData: {
            min_accuracy: 0.9,
            kept: true,
            allowed_dataset_prefixes: ruleData.allowed_dataset_prefixes,
          },
        },
        { policy: ['./policy/more'], ruleData },
      ],
      publicKey: 'k8s://tekton-chains/signing-secrets',
    })
    expect(await readFile(user, 'utf8')).toBe(yaml) // the user's file is only read
  })

  it('adds it under spec in an EnterpriseContractPolicy resource, in JSON too', async () => {
    const resource = {
      apiVersion: 'appstudio.redhat.com/v1alpha1',
      kind: 'EnterpriseContractPolicy',
      metadata: { name: 'oml' },
      spec: { sources: [{ policy: ['./policy/rules'] }] },
    }
    const user = await config('policy.json', JSON.stringify(resource))

    const copy = await writePolicyWithRuleData(user, ruleData, dir)

    expect(copy).toBe(path.join(dir, 'policy.rule-data.json'))
    expect(JSON.parse(await readFile(copy, 'utf8'))).toEqual({
      ...resource,
      spec: { sources: [{ policy: ['./policy/rules'], ruleData }] },
    })
  })

  it('refuses a config without sources, or that is not an object, naming the file', async () => {
    const none = await config('none.yaml', 'publicKey: x\n')
    await expect(writePolicyWithRuleData(none, ruleData, dir)).rejects.toThrow(
      `policy config ${none} has no "sources" list: rule data is given to a policy source`,
    )
    const list = await config('list.yaml', '- a\n')
    await expect(writePolicyWithRuleData(list, ruleData, dir)).rejects.toThrow(
      `policy config ${list} is not a YAML/JSON object`,
    )
    const missing = path.join(dir, 'missing.yaml')
    await expect(writePolicyWithRuleData(missing, ruleData, dir)).rejects.toBeInstanceOf(UserError)
    await expect(writePolicyWithRuleData(missing, ruleData, dir)).rejects.toThrow(
      `policy config ${missing} cannot be read: ENOENT`,
    )
  })
})
