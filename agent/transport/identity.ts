import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const INSTANCE_ID = /^(?:i|mi)-[0-9a-f]{8,17}$/

/** Where a host's SSM identity is written, relative to `/`: a hybrid node's registration, then cloud-init's EC2 id. */
export const IDENTITY_FILES = ['var/lib/amazon/ssm/registration', 'var/lib/cloud/data/instance-id'] as const

/**
 * The SSM managed-instance id of this host (`mi-…` for a hybrid node, `i-…` on EC2), read from the files the SSM
 * Agent and cloud-init write; undefined when neither says. In the fleet a report must carry this id: the control
 * plane accepts a report only from the instance it is about (SQS's SenderId is the instance's role session).
 */
export const readInstanceId = (root = '/'): string | undefined => {
  for (const rel of IDENTITY_FILES) {
    let text: string
    try {
      text = readFileSync(join(root, rel), 'utf8').trim()
    } catch {
      continue
    }
    let id = text
    if (text.startsWith('{')) {
      try {
        id = String((JSON.parse(text) as { ManagedInstanceID?: unknown }).ManagedInstanceID ?? '')
      } catch {
        continue
      }
    }
    if (INSTANCE_ID.test(id)) return id
  }
  return undefined
}

/** `https://sqs.eu-west-1.amazonaws.com/123456789012/ansai-reports` → `eu-west-1`. */
export const regionOfQueueUrl = (url: string): string | undefined =>
  /^https:\/\/sqs[.-]([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?\//.exec(url)?.[1]
